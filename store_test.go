package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
)

// TestKillRestore kills the built relay with SIGKILL at random points
// while members post over the line door, at each sync policy, and
// restarts it on the same store each time. After each restart every door
// that resumes does: a watcher in JSON mode resumes by epoch and seq from
// the last event it got; a browser joins again and resumes its stream
// with Last-Event-ID; a phone on the line door, in text mode, resumes
// with /since from the point its last welcome gave; a newcomer reads all
// the room keeps. The room keeps its epoch. Each of them gets, in order,
// no duplicate and no number given twice, the events it missed that were
// kept (each the same as when it was first delivered), and where events
// were lost, a notice of which; never a silent gap. With "always" and
// "off" nothing delivered is lost (a process killed loses no write), and
// with "always" there is no notice at all.
func TestKillRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	bin := tutBuild(t)
	for _, policy := range []string{"always", "1s", "off"} {
		t.Run(policy, func(t *testing.T) { killRestore(t, bin, policy) })
	}
}

// follower is a member that reads the room as it goes and resumes after
// each restart.
type follower struct {
	name     string
	last     uint64 // the last room event it got
	lastID   string // the browser's: its last event's id
	holes    int    // hole notices it got
	mayJump  bool   // a hole notice came: the next event may skip numbers
	messages int    // messages it got in this run
}

// lostRe reads a hole's notice: the numbers it says are lost.
var lostRe = regexp.MustCompile(`events (\d+) to (\d+) were lost when the relay stopped`)

// fellRe is the notice of a member that resumes below the history's
// window, with the oldest number the window holds.
var fellRe = regexp.MustCompile(`fell out of the history window: \d+ to \d+ are lost; replaying from (\d+)`)

// history is what the relay delivered over all runs: each number's
// event, the same wherever it is read.
type history struct {
	t      *testing.T
	policy string
	mu     sync.Mutex
	events map[uint64]proto.Event
	top    uint64 // the highest number delivered
}

// check takes the next event f got: it fails on a gap without a notice,
// a duplicate, an event out of order, or a number that names two events.
func (h *history) check(f *follower, e proto.Event) {
	h.t.Helper()
	if e.Seq == 0 {
		switch {
		case lostRe.MatchString(e.Text):
			if h.policy == "always" {
				h.t.Errorf("%s: with sync always: %q", f.name, e.Text)
			}
			f.holes++
			f.mayJump = true
		case strings.Contains(e.Text, "restarted") || strings.Contains(e.Text, "past") || strings.Contains(e.Text, "fell out"):
			h.t.Errorf("%s was told %q", f.name, e.Text)
		}
		return
	}
	switch {
	case e.Seq <= f.last:
		h.t.Errorf("%s: event %d after %d", f.name, e.Seq, f.last)
	case e.Seq > f.last+1 && f.last > 0 && !f.mayJump:
		h.t.Errorf("%s: event %d after %d with no notice between", f.name, e.Seq, f.last)
	}
	f.last, f.mayJump = e.Seq, false
	if e.Kind == proto.KindMsg {
		f.messages++
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if was, ok := h.events[e.Seq]; ok && (was.Kind != e.Kind || was.From != e.From || was.Text != e.Text || !was.Time.Equal(e.Time)) {
		h.t.Errorf("%s: event %d is %s %s %q, and was %s %s %q", f.name, e.Seq, e.Kind, e.From, e.Text, was.Kind, was.From, was.Text)
	}
	h.events[e.Seq] = e
	h.top = max(h.top, e.Seq)
}

func killRestore(t *testing.T, bin, policy string) {
	line := net.JoinHostPort("127.0.0.1", strconv.Itoa(tutFreePort(t)))
	web := net.JoinHostPort("127.0.0.1", strconv.Itoa(tutFreePort(t)))
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":%q,"http":%q,"legacy":"","udp":"","irc":""},
		"limits":{"rate":0,"history":4096,"queue":4096,"replay":0},
		"store":{"path":%q,"sync":%q}}}`, line, web, t.TempDir(), policy))
	h := &history{t: t, policy: policy, events: map[uint64]proto.Event{}}
	watcher, browser := &follower{name: "watcher"}, &follower{name: "web"}
	var epoch string
	var phoneAt proto.Point // the phone's resume point: its last welcome's
	const runs = 4
	for run := range runs {
		relay := tutStart(t, fmt.Sprintf("roomrelay relay (%s, run %d)", policy, run), "", bin, "-config", config, "relay")
		relay.waitErr(t, `info: line door listening on`)
		relay.waitErr(t, `info: http door listening on`)
		topBefore := h.top

		// The watcher resumes.
		hello := `{"name":"watcher","mode":"json"}`
		if run > 0 {
			hello = fmt.Sprintf(`{"name":"watcher","mode":"json","epoch":%q,"since":%d}`, epoch, watcher.last)
		}
		w := lineDial(t, line)
		w.send(t, hello)
		welcome := w.event(t)
		if run > 0 && welcome.Epoch != epoch {
			t.Fatalf("run %d: the room's epoch went from %s to %s: %+v", run, epoch, welcome.Epoch, welcome)
		}
		epoch = welcome.Epoch
		watcher.messages = 0

		// A newcomer reads all that is kept.
		n := lineDial(t, line)
		n.send(t, fmt.Sprintf(`{"name":"n%d","mode":"json","epoch":%q,"since":0}`, run, epoch))
		n.send(t, "/ping kept")
		newcomer := &follower{name: fmt.Sprintf("newcomer %d", run)}
		var kept []uint64
		var lost [][2]uint64
		var floor uint64 // the window's oldest number, once the numbers (holes among them) outgrew the history
		for {
			e := n.event(t)
			if e.Seq == 0 && e.Text == "pong kept" {
				break
			}
			if m := fellRe.FindStringSubmatch(e.Text); m != nil && len(kept) == 0 {
				// From 0, a newcomer starts at the window's oldest number.
				from, _ := strconv.ParseUint(m[1], 10, 64)
				floor, newcomer.mayJump = max(floor, from), true
				continue
			}
			if m := lostRe.FindStringSubmatch(e.Text); m != nil {
				a, _ := strconv.ParseUint(m[1], 10, 64)
				b, _ := strconv.ParseUint(m[2], 10, 64)
				lost = append(lost, [2]uint64{a, b})
			}
			if e.Seq != 0 {
				kept = append(kept, e.Seq)
			}
			h.check(newcomer, e)
		}
		n.c.Close()
		// Every number delivered before the kill is kept or said lost;
		// with "always" and "off" it is kept.
		if run > 0 {
			missing := 0
			defer func() { t.Logf("run %d: %d delivered events not kept; lost numbers told: %v", run, missing, lost) }()
			isKept := map[uint64]bool{}
			for _, s := range kept {
				isKept[s] = true
			}
			for s := range topBefore + 1 {
				if _, was := h.events[s]; !was || isKept[s] || s < floor {
					continue
				}
				missing++
				said := false
				for _, l := range lost {
					said = said || l[0] <= s && s <= l[1]
				}
				if !said || policy != "1s" {
					t.Errorf("run %d: event %d was delivered, and is not kept (lost: %v)", run, s, lost)
				}
			}
		}

		// The phone resumes from its last welcome's point, in text mode.
		p := lineDial(t, line)
		p.send(t, "phone")
		pw := string(p.line(t))
		at := regexp.MustCompile(`last event (\S+)\)`).FindStringSubmatch(pw)
		if at == nil {
			t.Fatalf("run %d: the phone's welcome: %q", run, pw)
		}
		if run > 0 {
			p.send(t, "/since "+phoneAt.String())
			var got, want []string
			for {
				l := string(p.line(t))
				if strings.HasPrefix(l, "--- end of earlier events") || strings.HasPrefix(l, "--- nothing in") {
					break
				}
				if lostRe.MatchString(l) || !strings.HasPrefix(l, "---") {
					got = append(got, l)
				}
			}
			h.mu.Lock()
			for _, s := range kept {
				if e := h.events[s]; s > phoneAt.Seq && e.Kind == proto.KindMsg {
					want = append(want, e.From+": "+e.Text)
				}
			}
			h.mu.Unlock()
			for _, l := range lost {
				if l[1] > phoneAt.Seq {
					want = append(want, fmt.Sprintf("--- lobby's events %d to %d were lost when the relay stopped (some of these numbers were never used); continuing from %d", l[0], l[1], l[1]+1))
				}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("run %d: the phone resumed from %s: (-want +got)\n%s", run, phoneAt, d)
			}
		}
		pt, err := proto.ParsePoint(at[1])
		if err != nil {
			t.Fatal(err)
		}
		phoneAt = pt
		p.c.Close() // it sleeps until the next restart

		// The browser joins again and resumes its stream: its replay ends
		// with its own join.
		stream := sseOpen(t, "http://"+web, "web", browser.lastID)
		for {
			e, id, ok := stream.next(t)
			if !ok {
				t.Fatalf("run %d: the browser's stream ended", run)
			}
			browser.see(h, e, id)
			if e.Kind == proto.KindJoin && e.From == "web" {
				break
			}
		}
		if run == runs-1 {
			break // the last run only reads back
		}
		// Then it follows, until the kill.
		bdone := make(chan struct{})
		var bevents []proto.Event
		var bids []string
		go func() {
			defer close(bdone)
			for {
				e, id, ok := stream.next(t)
				if !ok {
					return
				}
				bevents, bids = append(bevents, e), append(bids, id)
			}
		}()
		// Posters write until the relay is killed under them.
		var wg sync.WaitGroup
		for i := range 3 {
			c := lineDial(t, line)
			c.send(t, fmt.Sprintf("p%d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 300 {
					c.c.SetWriteDeadline(time.Now().Add(tutWait))
					if _, err := fmt.Fprintf(c.c, "run %d line %d\n", run, k); err != nil {
						return
					}
				}
			}()
		}
		kill := 5 + rand.IntN(60)
		for watcher.messages < kill {
			h.check(watcher, w.event(t))
		}
		relay.cmd.Process.Signal(syscall.SIGKILL)
		<-relay.done
		// What the watcher was sent before the kill, it gets whole.
		for {
			w.c.SetReadDeadline(time.Now().Add(tutWait))
			l, err := w.lr.ReadLine()
			if err != nil {
				break
			}
			e, err := proto.DecodeJSON(l)
			if err != nil {
				break // a line cut by the kill
			}
			h.check(watcher, e)
		}
		wg.Wait()
		<-bdone
		for i, e := range bevents {
			browser.see(h, e, bids[i])
		}
		stream.close()
		t.Logf("run %d: killed after %d messages; the watcher has event %d, the browser %s; holes told: %d, %d",
			run, watcher.messages, watcher.last, browser.lastID, watcher.holes, browser.holes)
	}
}

// see is check for a browser, which also keeps its last event's id.
func (f *follower) see(h *history, e proto.Event, id string) {
	h.t.Helper()
	h.check(f, e)
	if id != "" {
		f.lastID = id
	}
}

// sseStream is a browser's event stream.
type sseStream struct {
	r     *proto.SSEReader
	close func()
}

// next reads the next event of the room, and its id; ok is false at the
// end of the stream. Named events (caught-up) are skipped.
func (st *sseStream) next(t *testing.T) (e proto.Event, id string, ok bool) {
	for {
		ev, err := st.r.Read()
		if err != nil {
			return e, "", false
		}
		if ev.Event != "" {
			continue
		}
		e, err := proto.DecodeJSON(ev.Data)
		if err != nil {
			return e, "", false // cut by the kill
		}
		return e, ev.ID, true
	}
}

// sseOpen joins the relay's HTTP door at base as name and opens its
// event stream, resuming after lastID when it is not "".
func sseOpen(t *testing.T, base, name, lastID string) *sseStream {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	c := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 5*tutWait)
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/join", strings.NewReader(url.Values{"name": {name}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var j proto.Joined
	err = json.NewDecoder(resp.Body).Decode(&j)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("join: %s %v", resp.Status, err)
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/api/events?token="+url.QueryEscape(j.Token), nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err = c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("events: %v %v", resp, err)
	}
	st := &sseStream{r: proto.NewSSEReader(resp.Body, 1<<16), close: func() { cancel(); resp.Body.Close() }}
	t.Cleanup(st.close)
	return st
}

// lineConn is a client of the line door.
type lineConn struct {
	c  net.Conn
	lr *proto.LineReader
}

func lineDial(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, tutWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lc := &lineConn{c: c, lr: proto.NewLineReader(c, 1<<16)}
	lc.line(t) // the greeting
	return lc
}

func (lc *lineConn) send(t *testing.T, line string) {
	t.Helper()
	lc.c.SetWriteDeadline(time.Now().Add(tutWait))
	if _, err := fmt.Fprintf(lc.c, "%s\n", line); err != nil {
		t.Fatal(err)
	}
}

func (lc *lineConn) line(t *testing.T) []byte {
	t.Helper()
	lc.c.SetReadDeadline(time.Now().Add(tutWait))
	l, err := lc.lr.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// event reads one JSON-mode event.
func (lc *lineConn) event(t *testing.T) proto.Event {
	t.Helper()
	return decodeEvent(t, lc.line(t))
}

func decodeEvent(t *testing.T, l []byte) proto.Event {
	t.Helper()
	e, err := proto.DecodeJSON(l)
	if err != nil {
		t.Fatalf("%q: %v", l, err)
	}
	return e
}

// TestStoreFull runs the built relay with a file size limit (RLIMIT_FSIZE,
// as a full disk would): a segment cannot grow past a few KB. See
// storeFull.
func TestStoreFull(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	// ulimit -f counts blocks of 512 bytes (POSIX sh) or 1 KiB (bash).
	storeFull(t, t.TempDir(), "file too large", "/bin/sh", "-c", `ulimit -f 4 && exec "$0" "$@"`)
}

// storeFull runs the built relay (through the command before, if any)
// with its store in dir, which fills, and posts long lines: the relay
// says once in its log that the store failed (an error with want in it)
// and it goes on from memory, /api/stats says so, and the chat goes on.
func storeFull(t *testing.T, dir, want string, before ...string) {
	bin := tutBuild(t)
	line := net.JoinHostPort("127.0.0.1", strconv.Itoa(tutFreePort(t)))
	web := net.JoinHostPort("127.0.0.1", strconv.Itoa(tutFreePort(t)))
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":%q,"http":%q,"legacy":"","udp":"","irc":""},
		"limits":{"rate":0},"store":{"path":%q,"sync":"1s"}}}`, line, web, dir))
	args := append(append(before, bin), "-config", config, "relay")
	relay := tutStart(t, "roomrelay relay ("+strings.Join(before, " ")+")", "", args...)
	relay.waitErr(t, `info: line door listening on`)
	relay.waitErr(t, `info: http door listening on`)
	a, b := lineDial(t, line), lineDial(t, line)
	a.send(t, "alice")
	b.send(t, "bob")
	for i := range 200 {
		a.send(t, fmt.Sprintf("line %d %s", i, strings.Repeat("x", 900)))
	}
	a.send(t, "the end")
	for {
		if l := string(b.line(t)); l == "alice: the end" {
			break
		}
	}
	relay.waitErr(t, `error: store: room lobby: .*`+want+`.*: rooms are kept in memory only until the relay restarts`)
	resp, err := http.Get("http://" + web + "/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Posted      int64  `json:"posted"`
		StoreFailed string `json:"store_failed"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || !strings.Contains(st.StoreFailed, want) || st.Posted < 201 {
		t.Errorf("stats: %+v, %v", st, err)
	}
	lines, _ := relay.stderr.snapshot()
	if n := strings.Count(strings.Join(lines, "\n"), "error: store"); n != 1 {
		t.Errorf("the store's failure logged %d times", n)
	}
}
