package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak is the soak that scripts/soak.sh runs: the built relay, many
// clients over every door (line text and JSON, IRC, legacy, UDP, HTTP
// POST /api/post) that connect, send, disconnect at random (by /quit, by
// closing their half, by a reset once all they sent was taken) and
// resume, for ROOMRELAY_SOAK (a duration; the test is skipped without
// it). It then prints an account and fails unless it adds up exactly:
// every message sent is posted or dropped for a counted reason; the two
// members that stay get every message posted; every legacy member every
// message posted after it registered but its own; every JSON resume
// continues the sequence with no gap and no duplicate; the relay's fds
// and goroutines are back where they started.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("ROOMRELAY_SOAK"))
	if err != nil {
		t.Skip("set ROOMRELAY_SOAK=DURATION (or run scripts/soak.sh DURATION)")
	}
	bin := tutBuild(t)
	ports := map[string]int{}
	for _, door := range []string{"line", "legacy", "udp", "irc", "http"} {
		ports[door] = tutFreePort(t)
	}
	addr := func(door string) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[door])) }
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":%q,"legacy":%q,"udp":%q,"irc":%q,"http":%q},
		"log_level":"warn","limits":{"rate":0,"history":4096,"queue":2048,"max_clients":300,"max_clients_per_ip":300,"max_legacy_per_ip":8}}}`,
		addr("line"), addr("legacy"), addr("udp"), addr("irc"), addr("http")))
	relay := tutStart(t, "roomrelay relay", "", bin, "-config", config, "relay")
	tutWaitPort(t, relay, ports["line"])
	pid := relay.cmd.Process.Pid

	sk := &soak{t: t, addr: addr, byDoor: map[string]*atomic.Int64{}}
	for _, door := range []string{"line", "json", "irc", "legacy", "udp", "http"} {
		sk.byDoor[door] = &atomic.Int64{}
	}
	// The members that stay: they read everything, from before any post.
	watchers := []*watcher{sk.watch("watcher", false), sk.watch("watchj", true)}
	legacies := []*legacyMember{sk.legacy("L0"), sk.legacy("L1")}
	for _, w := range watchers {
		w.waitJoined(t, "L1")
	}
	start := sk.relayState(pid)

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	run := func(f func(ctx context.Context, id int), n int) {
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); f(ctx, i) }()
		}
	}
	run(sk.textChurner, 4)
	run(sk.jsonChurner, 4)
	run(sk.ircChurner, 2)
	run(func(ctx context.Context, i int) { sk.legacySender(ctx, legacies[i]) }, 2)
	run(sk.udpSender, 2)
	run(sk.httpSender, 1)
	wg.Wait()

	// The account.
	sent := sk.sent()
	var st relayStats
	tutEventually(t, 30*time.Second, "every message sent to be posted or dropped", func() bool {
		st = sk.stats()
		return st.Posted+st.UDPDropped+st.LegacyDropped+st.LegacyRefused >= sent
	})
	for _, w := range watchers {
		tutEventually(t, 30*time.Second, w.name+" to get every message posted", func() bool { return w.msgs.Load() >= st.Posted })
	}
	for _, l := range legacies {
		want := st.Posted - l.postsBefore.Load() - l.sent.Load()
		tutEventually(t, 60*time.Second, l.name+" to get every message posted after it registered", func() bool { return l.got.Load() >= want })
	}
	tutEventually(t, 30*time.Second, "the churners to be gone", func() bool {
		st = sk.stats()
		return st.Doors["line"] == 2 && st.Doors["irc"] == 0 && st.Doors["legacy"] == 2
	})
	var end state
	tutEventually(t, 30*time.Second, "the relay's fds and goroutines back where they started", func() bool {
		end = sk.relayState(pid)
		return end.fds <= start.fds && end.goroutines <= start.goroutines
	})
	st = sk.stats()

	var b strings.Builder
	fmt.Fprintf(&b, "soak %v: %d clients over 6 doors, %d sessions (%d JSON resumes)\n", d, 4+4+2+2+2+1+2, sk.sessions.Load(), sk.resumes.Load())
	fmt.Fprintf(&b, "  sent       %d = line %d + JSON %d + IRC %d + legacy %d + UDP %d + HTTP %d\n",
		sent, sk.byDoor["line"].Load(), sk.byDoor["json"].Load(), sk.byDoor["irc"].Load(), sk.byDoor["legacy"].Load(), sk.byDoor["udp"].Load(), sk.byDoor["http"].Load())
	fmt.Fprintf(&b, "  posted     %d\n", st.Posted)
	fmt.Fprintf(&b, "  dropped    %d = UDP %d (malformed, sent on purpose: %d) + legacy %d (refused, sent on purpose: %d) + legacy dropped %d\n",
		st.UDPDropped+st.LegacyRefused+st.LegacyDropped, st.UDPDropped, sk.badUDP.Load(), st.LegacyRefused, sk.badLegacy.Load(), st.LegacyDropped)
	fmt.Fprintf(&b, "  delivered  watcher %d, watchj %d (each: every message posted); legacy L0 %d, L1 %d (every message posted after it registered, not its own); relay's legacy_sent %d\n",
		watchers[0].msgs.Load(), watchers[1].msgs.Load(), legacies[0].got.Load(), legacies[1].got.Load(), st.LegacySent)
	fmt.Fprintf(&b, "  resumed    %d JSON resumes replayed %d events; %d gaps, %d duplicates\n", sk.resumes.Load(), sk.replayed.Load(), sk.gaps.Load(), sk.dups.Load())
	fmt.Fprintf(&b, "  relay      RSS %.1f -> %.1f MB, fds %d -> %d, goroutines %d -> %d; disconnects %v\n",
		float64(start.rssKB)/1024, float64(end.rssKB)/1024, start.fds, end.fds, start.goroutines, end.goroutines, st.Disconnects)
	t.Log("\n" + b.String())
	if out := os.Getenv("ROOMRELAY_SOAK_REPORT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}

	if sent != st.Posted+st.UDPDropped+st.LegacyDropped+st.LegacyRefused {
		t.Errorf("sent %d != posted %d + dropped %d", sent, st.Posted, st.UDPDropped+st.LegacyDropped+st.LegacyRefused)
	}
	if st.UDPDropped != sk.badUDP.Load() || st.LegacyRefused != sk.badLegacy.Load() || st.LegacyDropped != 0 {
		t.Errorf("drops: UDP %d (want %d), legacy refused %d (want %d), legacy dropped %d (want 0)",
			st.UDPDropped, sk.badUDP.Load(), st.LegacyRefused, sk.badLegacy.Load(), st.LegacyDropped)
	}
	for _, w := range watchers {
		if n := w.msgs.Load(); n != st.Posted {
			t.Errorf("%s got %d messages of %d posted", w.name, n, st.Posted)
		}
	}
	var legacyGot int64
	for _, l := range legacies {
		legacyGot += l.got.Load()
		if want := st.Posted - l.postsBefore.Load() - l.sent.Load(); l.got.Load() != want {
			t.Errorf("%s got %d deliveries, want %d", l.name, l.got.Load(), want)
		}
	}
	if legacyGot != st.LegacySent || st.LegacyFailed != 0 {
		t.Errorf("legacy members got %d deliveries; the relay counts %d sent, %d failed", legacyGot, st.LegacySent, st.LegacyFailed)
	}
	if sk.gaps.Load() != 0 || sk.dups.Load() != 0 || sk.errs.Load() != 0 {
		t.Errorf("%d gaps, %d duplicates, %d client errors", sk.gaps.Load(), sk.dups.Load(), sk.errs.Load())
	}
	if n := st.Disconnects["too slow"] + st.Disconnects["internal error"] + st.Disconnects["unreachable"] + st.Disconnects["flooding"]; n != 0 {
		t.Errorf("members cut by the relay: %v", st.Disconnects)
	}
}

// tutEventually is testkit.WaitFor for the main package.
func tutEventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// soak is the clients' shared account.
type soak struct {
	t    *testing.T
	addr func(door string) string

	byDoor            map[string]*atomic.Int64 // messages sent, by door; set once
	badUDP, badLegacy atomic.Int64
	sessions, resumes atomic.Int64
	replayed          atomic.Int64
	gaps, dups, errs  atomic.Int64
}

func (sk *soak) count(door string) { sk.byDoor[door].Add(1) }

func (sk *soak) sent() int64 {
	var n int64
	for _, c := range sk.byDoor {
		n += c.Load()
	}
	return n
}

func (sk *soak) fail(format string, args ...any) {
	sk.errs.Add(1)
	sk.t.Logf(format, args...)
}

// relayStats is what /stats answers that the soak reads.
type relayStats struct {
	Posted        int64            `json:"posted"`
	UDPDropped    int64            `json:"udp_dropped"`
	LegacyDropped int64            `json:"legacy_dropped"`
	LegacyRefused int64            `json:"legacy_refused"`
	LegacySent    int64            `json:"legacy_sent"`
	LegacyFailed  int64            `json:"legacy_failed"`
	Disconnects   map[string]int64 `json:"disconnects"`
	Doors         map[string]int   `json:"doors"`
	Goroutines    int              `json:"goroutines"`
}

// stats asks the relay for its counters, as `roomrelay stats` does.
func (sk *soak) stats() relayStats {
	sk.t.Helper()
	var b strings.Builder
	if err := askStats(context.Background(), sk.addr("line"), 10*time.Second, &b); err != nil {
		sk.t.Fatal(err)
	}
	var st relayStats
	if err := json.Unmarshal([]byte(b.String()), &st); err != nil {
		sk.t.Fatal(err)
	}
	return st
}

// state is the relay process's resources.
type state struct {
	rssKB, fds, goroutines int
}

func (sk *soak) relayState(pid int) state {
	var s state
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			s.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	s.fds = len(fds)
	s.goroutines = sk.stats().Goroutines
	return s
}

// conn is a line-oriented client connection whose lines a goroutine reads
// into a channel, until the connection ends (then the channel is closed).
type conn struct {
	c     net.Conn
	lines chan string
}

func (sk *soak) dial(door string) (*conn, error) {
	c, err := net.DialTimeout("tcp", sk.addr(door), 5*time.Second)
	if err != nil {
		return nil, err
	}
	cn := &conn{c: c, lines: make(chan string, 64)}
	go func() {
		defer close(cn.lines)
		r := bufio.NewReaderSize(c, 4096)
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Minute)) // a bound, far past any pause of the soak
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cn.lines <- strings.TrimRight(l, "\r\n")
		}
	}()
	return cn, nil
}

func (cn *conn) send(lines ...string) error {
	cn.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(cn.c, strings.Join(lines, "\n")+"\n")
	return err
}

// until reads lines, each given to seen when not nil, until one
// satisfies ok; false when the connection ended or 30 s passed first.
func (cn *conn) until(ok func(string) bool, seen func(string)) bool {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l, open := <-cn.lines:
			if !open {
				return false
			}
			if seen != nil {
				seen(l)
			}
			if ok(l) {
				return true
			}
		case <-timeout.C:
			return false
		}
	}
}

// drain reads lines until the connection ends (or its reader gives up:
// see dial).
func (cn *conn) drain(seen func(string)) {
	for l := range cn.lines {
		if seen != nil {
			seen(l)
		}
	}
}

// skim reads the lines that have come, without waiting.
func (cn *conn) skim(seen func(string)) {
	for {
		select {
		case l, ok := <-cn.lines:
			if !ok {
				return
			}
			if seen != nil {
				seen(l)
			}
		default:
			return
		}
	}
}

// enter sends hello until the relay takes it (is says welcome):
// the name may still be held by the session before, ending meanwhile.
func (sk *soak) enter(ctx context.Context, cn *conn, hello func() []string, welcome, taken string, seen func(string)) bool {
	for ctx.Err() == nil {
		cn.send(hello()...)
		again := false
		if !cn.until(func(l string) bool { again = strings.Contains(l, taken); return again || strings.Contains(l, welcome) }, seen) {
			return false
		}
		if !again {
			return true
		}
		pause(ctx, 20*time.Millisecond)
	}
	return false
}

// session opens one of a churner's sessions at door.
func (sk *soak) session(who, door string) *conn {
	cn, err := sk.dial(door)
	if err != nil {
		sk.fail("%s: %v", who, err)
		return nil
	}
	sk.sessions.Add(1)
	return cn
}

// chat sends 1 to 20 lines, line(0), line(1)..., paced, counted as sent
// at door, and reads what came meanwhile (each line to seen) without
// waiting.
func (sk *soak) chat(ctx context.Context, cn *conn, door string, line func(i int) string, seen func(string)) {
	for i := range rand.N(20) + 1 {
		if !pause(ctx, 40*time.Millisecond) {
			return
		}
		if cn.send(line(i)) == nil {
			sk.count(door)
		}
		cn.skim(seen)
	}
}

func has(sub string) func(string) bool {
	return func(l string) bool { return strings.Contains(l, sub) }
}

// pause waits up to max, or until ctx ends; it reports whether ctx is
// still going. It paces the senders: no synchronisation rests on it.
func pause(ctx context.Context, max time.Duration) bool {
	t := time.NewTimer(rand.N(max) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watcher is a member that stays, counting the messages it gets.
type watcher struct {
	name string
	json bool
	cn   *conn
	msgs atomic.Int64

	mu     sync.Mutex
	joined map[string]bool
}

func (sk *soak) watch(name string, json bool) *watcher {
	w := &watcher{name: name, json: json, joined: map[string]bool{}}
	cn, err := sk.dial("line")
	if err != nil {
		sk.t.Fatal(err)
	}
	w.cn = cn
	hello := name
	if json {
		hello = `{"name":"` + name + `","mode":"json","replay":0}`
	}
	cn.send(hello)
	if !cn.until(has("you are "+name), nil) {
		sk.t.Fatalf("%s: no welcome", name)
	}
	go cn.drain(func(l string) {
		var e struct{ Type, From string }
		switch {
		case json && strings.HasPrefix(l, "{"):
			if err := jsonUnmarshal(l, &e); err == nil && e.Type == "msg" {
				w.msgs.Add(1)
			}
			if e.Type == "join" {
				w.mu.Lock()
				w.joined[e.From] = true
				w.mu.Unlock()
			}
		case !json && !strings.HasPrefix(l, "--- ") && !strings.HasPrefix(l, "!!! "):
			w.msgs.Add(1)
		case !json && strings.HasSuffix(l, " joined lobby"):
			w.mu.Lock()
			w.joined[strings.TrimSuffix(strings.TrimPrefix(l, "--- "), " joined lobby")] = true
			w.mu.Unlock()
		}
	})
	return w
}

func jsonUnmarshal(l string, v any) error { return json.Unmarshal([]byte(l), v) }

func (w *watcher) waitJoined(t *testing.T, name string) {
	tutEventually(t, 10*time.Second, w.name+" to see "+name+" join", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.joined[name]
	})
}

// bye ends a session at random: /quit, a half-close, or, once a ping's
// pong shows the relay took all it sent, a close that may reset.
func (sk *soak) bye(cn *conn, quit string, ping func() bool) {
	defer cn.c.Close()
	switch rand.N(3) {
	case 0:
		cn.send(quit)
	case 1:
		cn.c.(*net.TCPConn).CloseWrite()
	case 2:
		if !ping() {
			sk.fail("no pong")
		}
		return
	}
	cn.drain(nil)
}

// textChurner chats in text mode: connect, a few messages, leave, again.
func (sk *soak) textChurner(ctx context.Context, id int) {
	name := fmt.Sprintf("t%d", id)
	for ctx.Err() == nil {
		cn := sk.session(name, "line")
		if cn == nil {
			return
		}
		if !sk.enter(ctx, cn, func() []string { return []string{name} }, "you are "+name, "send another name", nil) {
			cn.c.Close()
			continue
		}
		sk.chat(ctx, cn, "line", func(i int) string { return fmt.Sprintf("%s says %d", name, i) }, nil)
		sk.bye(cn, "/quit", func() bool {
			cn.send("/ping done")
			return cn.until(has("--- pong done"), nil)
		})
	}
}

// jsonChurner chats in JSON mode and resumes where it left off each time
// it comes back, checking that the sequence goes on with no gap and no
// duplicate.
func (sk *soak) jsonChurner(ctx context.Context, id int) {
	name := fmt.Sprintf("j%d", id)
	var last uint64
	for ctx.Err() == nil {
		cn := sk.session(name, "line")
		if cn == nil {
			return
		}
		resume := last > 0
		if resume {
			sk.resumes.Add(1)
		}
		hello := func() []string {
			if last > 0 {
				return []string{fmt.Sprintf(`{"name":%q,"mode":"json","since":%d}`, name, last)}
			}
			return []string{fmt.Sprintf(`{"name":%q,"mode":"json","replay":0}`, name)}
		}
		replaying := resume
		var pongs atomic.Int64
		seen := func(l string) {
			var e struct {
				Type, Text string
				Seq        uint64
			}
			if jsonUnmarshal(l, &e) != nil {
				return
			}
			switch {
			case e.Type == "notice" && strings.HasPrefix(e.Text, "end of earlier events"):
				replaying = false
			case e.Type == "notice" && strings.HasPrefix(e.Text, "pong"):
				pongs.Add(1)
			case e.Seq == 0:
			case last == 0 || e.Seq == last+1:
				if replaying {
					sk.replayed.Add(1)
				}
				last = e.Seq
			case e.Seq <= last:
				sk.dups.Add(1)
			default:
				sk.gaps.Add(1)
				sk.t.Logf("%s: event %d after %d", name, e.Seq, last)
				last = e.Seq
			}
		}
		if !sk.enter(ctx, cn, hello, "you are "+name, "send another name", seen) {
			cn.c.Close()
			continue
		}
		sk.chat(ctx, cn, "json", func(i int) string { return fmt.Sprintf("%s says %d", name, i) }, seen)
		sk.bye(cn, "/quit", func() bool {
			cn.send("/ping done")
			return cn.until(func(string) bool { return pongs.Load() > 0 }, seen)
		})
		// What the drain of bye read is not checked: the next resume
		// starts from the last event checked, and replays the rest.
	}
}

// ircChurner chats over the IRC door: register, a few messages, QUIT.
func (sk *soak) ircChurner(ctx context.Context, id int) {
	nick := fmt.Sprintf("i%d", id)
	for ctx.Err() == nil {
		cn := sk.session(nick, "irc")
		if cn == nil {
			return
		}
		user := false
		hello := func() []string {
			if user {
				return []string{"NICK " + nick}
			}
			user = true
			return []string{"NICK " + nick, "USER " + nick + " 0 * :" + nick}
		}
		if !sk.enter(ctx, cn, hello, " 366 ", " 433 ", nil) {
			cn.c.Close()
			continue
		}
		sk.chat(ctx, cn, "irc", func(i int) string { return fmt.Sprintf("PRIVMSG #lobby :%s says %d", nick, i) }, nil)
		cn.send("QUIT :bye")
		cn.drain(nil) // until the relay closes it
		cn.c.Close()
	}
}

// legacyMember is a tutorial-protocol member: it registers, then counts
// the deliveries dialled to it.
type legacyMember struct {
	name        string
	sk          *soak
	got, sent   atomic.Int64
	postsBefore atomic.Int64 // messages posted before it registered
}

func (sk *soak) legacy(name string) *legacyMember {
	l := &legacyMember{name: name, sk: sk}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		sk.t.Fatal(err)
	}
	sk.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				if b, _ := io.ReadAll(c); len(b) > 0 {
					l.got.Add(1)
				}
			}()
		}
	}()
	if err := sk.legacySend(fmt.Sprintf("connect_request|%s|127.0.0.1|%d", name, ln.Addr().(*net.TCPAddr).Port)); err != nil {
		sk.t.Fatal(err)
	}
	return l
}

// legacySend sends one tutorial-protocol message on a connection of its
// own.
func (sk *soak) legacySend(msg string) error {
	c, err := net.DialTimeout("tcp", sk.addr("legacy"), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	return c.(*net.TCPConn).CloseWrite()
}

// legacySender posts as l, and now and then in a name nobody registered
// (refused and counted on purpose).
func (sk *soak) legacySender(ctx context.Context, l *legacyMember) {
	for i := 0; pause(ctx, 60*time.Millisecond); i++ {
		msg, bad := fmt.Sprintf("from:%s|%s says %d", l.name, l.name, i), i%10 == 9
		if bad {
			msg = fmt.Sprintf("from:ghost|%d", i)
		}
		if err := sk.legacySend(msg); err != nil {
			sk.fail("%s: %v", l.name, err)
			continue
		}
		sk.count("legacy")
		if bad {
			sk.badLegacy.Add(1)
		} else {
			l.sent.Add(1)
		}
	}
}

// udpSender posts datagrams, and now and then a malformed one (dropped
// and counted on purpose).
func (sk *soak) udpSender(ctx context.Context, id int) {
	c, err := net.Dial("udp", sk.addr("udp"))
	if err != nil {
		sk.fail("udp: %v", err)
		return
	}
	defer c.Close()
	for i := 0; pause(ctx, 40*time.Millisecond); i++ {
		msg, bad := fmt.Sprintf("from:u%d|reading %d", id, i), i%10 == 9
		if bad {
			msg = fmt.Sprintf("no sender %d", i)
		}
		if _, err := c.Write([]byte(msg)); err != nil {
			sk.fail("udp: %v", err)
			continue
		}
		sk.count("udp")
		if bad {
			sk.badUDP.Add(1)
		}
	}
}

// httpSender posts with POST /api/post.
func (sk *soak) httpSender(ctx context.Context, id int) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; pause(ctx, 60*time.Millisecond); i++ {
		resp, err := c.PostForm("http://"+sk.addr("http")+"/api/post", url.Values{"name": {fmt.Sprintf("web%d", id)}, "text": {fmt.Sprint("post ", i)}})
		if err != nil {
			sk.fail("http: %v", err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			sk.fail("http: %s", resp.Status)
			continue
		}
		sk.count("http")
	}
}
