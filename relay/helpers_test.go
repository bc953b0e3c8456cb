package relay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"roomrelay/relay/internal/testkit"
	"runtime"
	"strings"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// testConfig is the default relay config on a loopback port, with limits
// that tests change as they need.
func testConfig() config.Config {
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0", Legacy: "127.0.0.1:0", UDP: "127.0.0.1:0"}
	cfg.Limits.Rate = 0
	return cfg
}

// startServer starts a relay and stops it, checking that no goroutine
// outlives it, when the test ends.
func startServer(t testing.TB, cfg config.Config, set ...func(*Server)) *Server {
	t.Helper()
	return startServerLog(t, cfg, t.Logf, set...)
}

// startServerLog is startServer with its log to logf. Each of set is
// called on the server before it starts.
func startServerLog(t testing.TB, cfg config.Config, logf config.Logf, set ...func(*Server)) *Server {
	t.Helper()
	testkit.NoLeaks(t) // checked after the shutdown below: cleanups run last first
	s := New(cfg, logf)
	for _, f := range set {
		f(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// waitFor is testkit.WaitFor.
var waitFor = testkit.WaitFor

// tconn is a test client of the line door.
type tconn struct {
	t    testing.TB
	name string
	c    net.Conn
	lr   *proto.LineReader
}

func dial(t testing.TB, s *Server) *tconn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr("line").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := &tconn{t: t, c: c, lr: proto.NewLineReader(c, 1<<16)}
	if g := tc.line(); !strings.HasPrefix(g, "--- welcome") {
		t.Fatalf("greeting %q", g)
	}
	return tc
}

// dialPipe connects to the line door over net.Pipe, which is no socket:
// a connDriver serves it whatever the build. A peer that stops reading
// blocks the relay's writes at once (a pipe buffers nothing).
func dialPipe(t testing.TB, s *Server) *tconn {
	t.Helper()
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	lineDoor{s}.serve(srv, nil)
	tc := &tconn{t: t, c: cli, lr: proto.NewLineReader(cli, 1<<16)}
	if g := tc.line(); !strings.HasPrefix(g, "--- welcome") {
		t.Fatalf("greeting %q", g)
	}
	return tc
}

// dialers are the ways a test reaches the line door: a socket (served by
// the build's driver: the loop on Linux, a connDriver with -tags noepoll)
// and a pipe (always a connDriver).
var dialers = []struct {
	name string
	dial func(testing.TB, *Server) *tconn
}{{"socket", dial}, {"pipe", dialPipe}}

// enter has tc enter as name, waiting for the welcome.
func (tc *tconn) enter(name string) *tconn {
	tc.t.Helper()
	tc.send(name)
	tc.name = name
	tc.until("the welcome", func(l string) bool { return strings.Contains(l, "you are ") })
	return tc
}

// join dials and enters as name (a plain name or a JSON hello), waiting
// for the welcome.
func join(t testing.TB, s *Server, hello string) *tconn {
	t.Helper()
	return dial(t, s).enter(hello)
}

func (tc *tconn) send(lines ...string) {
	tc.t.Helper()
	tc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(tc.c, strings.Join(lines, "\n")+"\n"); err != nil {
		tc.t.Fatalf("%s: send: %v", tc.name, err)
	}
}

// line reads one line within 10 seconds.
func (tc *tconn) line() string {
	tc.t.Helper()
	l, err := tc.read(10 * time.Second)
	if err != nil {
		buf := make([]byte, 1<<20)
		tc.t.Fatalf("%s: read: %v\n%s", tc.name, err, buf[:runtime.Stack(buf, true)])
	}
	return l
}

func (tc *tconn) read(d time.Duration) (string, error) {
	tc.c.SetReadDeadline(time.Now().Add(d))
	l, err := tc.lr.ReadLine()
	return string(bytes.Clone(l)), err
}

// until reads lines until one satisfies ok and returns it.
func (tc *tconn) until(what string, ok func(string) bool) string {
	tc.t.Helper()
	for {
		l, err := tc.read(10 * time.Second)
		if err != nil {
			tc.t.Fatalf("%s: waiting for %s: %v", tc.name, what, err)
		}
		if ok(l) {
			return l
		}
	}
}

// messages reads until n "name: text" lines have come and returns them.
func (tc *tconn) messages(n int) []string {
	tc.t.Helper()
	var out []string
	for len(out) < n {
		l := tc.line()
		if !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "!!!") {
			out = append(out, l)
		}
	}
	return out
}

func shutdownNow(t testing.TB, s *Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// testDriver is the driver of a member without a connection: it keeps
// the wake-ups, and space for collecting batches.
type testDriver struct {
	wakeC chan struct{} // capacity 1
	batch []*event
	bufs  net.Buffers
}

func newTestDriver() *testDriver { return &testDriver{wakeC: make(chan struct{}, 1)} }

func (d *testDriver) wake(*member) {
	select {
	case d.wakeC <- struct{}{}:
	default:
	}
}

func (d *testDriver) stop(m *member) { d.wake(m) }

// epochOf returns the epoch of the room called name, which must exist.
func epochOf(t testing.TB, s *Server, name string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[proto.Fold(name)]
	if r == nil {
		t.Fatalf("no room %s", name)
	}
	return r.epoch
}

// upTo reads lines until one satisfies ok and returns them all, that one
// last.
func (tc *tconn) upTo(what string, ok func(string) bool) []string {
	tc.t.Helper()
	var got []string
	tc.until(what, func(l string) bool {
		got = append(got, l)
		return ok(l)
	})
	return got
}

// sync sends a ping and waits for its pong: everything the relay had for
// tc before it has been read.
func (tc *tconn) sync(token string) []string {
	tc.t.Helper()
	tc.send("/ping " + token)
	return tc.upTo("the pong", func(l string) bool {
		return l == "--- pong "+token || strings.Contains(l, `"text":"pong `+token+`"`)
	})
}

// send1 sends one line and returns the next line read.
func (tc *tconn) send1(line string) string {
	tc.t.Helper()
	tc.send(line)
	return tc.line()
}
