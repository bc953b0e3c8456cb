package main

import (
	"fmt"
	"math/rand/v2"
	"net"
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
// while members post over the line door, with relay.store.sync "always",
// and restarts it on the same store each time. A watcher in JSON mode
// resumes after each restart from the last event it got, by epoch and
// seq: over all the runs it gets every room event once, in order, with no
// gap and no notice of one, and the history a newcomer reads at the end
// is exactly what the watcher got.
func TestKillRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	bin := tutBuild(t)
	port := tutFreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":%q,"legacy":"","udp":""},
		"limits":{"rate":0,"history":4096,"queue":4096,"replay":0},
		"store":{"path":%q,"sync":"always"}}}`, addr, t.TempDir()))

	var got []proto.Event // every room event the watcher was sent, in order
	var epoch string
	const runs = 4
	for run := range runs {
		relay := tutStart(t, fmt.Sprintf("roomrelay relay (run %d)", run), "", bin, "-config", config, "relay")
		relay.waitErr(t, `info: line door listening on`)
		hello := `{"name":"watcher","mode":"json"}`
		if len(got) > 0 {
			hello = fmt.Sprintf(`{"name":"watcher","mode":"json","epoch":%q,"since":%d}`, epoch, got[len(got)-1].Seq)
		}
		w := lineDial(t, addr)
		w.send(t, hello)
		welcome := w.event(t)
		if run > 0 && welcome.Epoch != epoch {
			t.Fatalf("run %d: the room's epoch went from %s to %s: %+v", run, epoch, welcome.Epoch, welcome)
		}
		epoch = welcome.Epoch
		if run == runs-1 {
			break // the last run only reads back
		}
		// Posters write flat out until the relay is killed under them.
		var wg sync.WaitGroup
		for p := range 3 {
			c := lineDial(t, addr)
			c.send(t, fmt.Sprintf("p%d", p))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 5000 {
					c.c.SetWriteDeadline(time.Now().Add(tutWait))
					if _, err := fmt.Fprintf(c.c, "run %d line %d\n", run, k); err != nil {
						return
					}
				}
			}()
		}
		// Kill after a random number of messages, while they come.
		kill := 5 + rand.IntN(60)
		for msgs := 0; msgs < kill; {
			e := w.event(t)
			if e.Seq == 0 {
				if strings.Contains(e.Text, "lost") || strings.Contains(e.Text, "restarted") || strings.Contains(e.Text, "past") {
					t.Fatalf("run %d: the watcher was told %q", run, e.Text)
				}
				continue
			}
			got = append(got, e)
			if e.Kind == proto.KindMsg {
				msgs++
			}
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
			if e.Seq != 0 {
				got = append(got, e)
			}
		}
		wg.Wait()
		t.Logf("run %d: killed after %d messages; the watcher has events 1 to %d", run, kill, len(got))
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Fatalf("the watcher's event %d has seq %d: a gap or a duplicate", i+1, e.Seq)
		}
	}
	// A newcomer replays the room from its first event.
	n := lineDial(t, addr)
	n.send(t, fmt.Sprintf(`{"name":"newcomer","mode":"json","epoch":%q,"since":0}`, epoch))
	var kept []proto.Event
	for len(kept) < len(got) {
		if e := n.event(t); e.Seq != 0 && e.From != "newcomer" {
			kept = append(kept, e)
		}
	}
	if d := cmp.Diff(got, kept); d != "" {
		t.Errorf("history read back (-watcher +newcomer)\n%s", d)
	}
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
