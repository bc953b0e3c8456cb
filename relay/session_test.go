package relay

import (
	"net"
	"strings"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// TestSessionDeadlines checks the session's deadlines with made-up times:
// the handshake, the idle time, a write that makes no progress, and the
// relay closing.
func TestSessionDeadlines(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Handshake = config.Duration(10 * time.Second)
	cfg.Timeouts.Idle = config.Duration(time.Minute)
	cfg.Timeouts.Write = config.Duration(5 * time.Second)
	s := New(cfg, t.Logf)
	conn, peer := net.Pipe() // a line member has a connection; nothing is read or written here
	defer conn.Close()
	defer peer.Close()
	m := s.newMember(conn, "test", newTestDriver())
	t0 := time.Unix(0, m.lastIn.Load())
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	check := func(when time.Duration, want reason, wantOK bool) {
		t.Helper()
		if why, ok := m.expired(at(when)); ok != wantOK || ok && why != want {
			t.Errorf("at +%v: expired = %v, %v; want %v, %v", when, why, ok, want, wantOK)
		}
	}
	check(9*time.Second, 0, false)
	check(11*time.Second, byNoName, true)

	// Named at +5s, then a line at +30s: idle from then on.
	m.line([]byte("alice"), nil, at(5*time.Second))
	if !m.named.Load() {
		t.Fatal("not named")
	}
	m.line([]byte("hi"), nil, at(30*time.Second))
	check(11*time.Second, 0, false)
	check(89*time.Second, 0, false)
	check(91*time.Second, byIdle, true)

	// A write stuck from +40s: the write deadline passes at +45s; progress
	// at +44s moves it to +49s.
	m.blocked(true, at(40*time.Second))
	m.blocked(true, at(42*time.Second)) // still the same stuck write
	check(44*time.Second, 0, false)
	check(46*time.Second, bySlow, true)
	m.blocked(false, at(44*time.Second))
	m.blocked(true, at(44*time.Second))
	check(46*time.Second, 0, false)
	check(50*time.Second, bySlow, true)
	m.blocked(false, at(50*time.Second))
	check(50*time.Second, 0, false)

	// A Reload moves the deadlines of members already there.
	cfg.Timeouts.Idle = config.Duration(10 * time.Second)
	s.setConf(cfg)
	check(41*time.Second, byIdle, true)

	// A leaving member owes a flush for some reasons only, within its time.
	m.kick(byQuit)
	by := time.Unix(0, m.flushBy)
	if m.flushOver(by.Add(-time.Millisecond)) || !m.flushOver(by.Add(time.Millisecond)) {
		t.Error("a member that quit is flushed until flushBy, and no longer")
	}
	check(time.Hour, 0, false) // a kicked member's deadlines are over
	n := s.newMember(nil, "test", newTestDriver())
	n.kick(byWrite)
	if !n.flushOver(time.Unix(0, n.lastIn.Load())) {
		t.Error("a member whose writes failed is owed no flush")
	}

	// Once the relay is closing, every deadline has passed.
	o := s.newMember(nil, "test", newTestDriver())
	close(s.quit)
	if why, ok := o.expired(time.Unix(0, o.lastIn.Load())); !ok || why != byShutdown {
		t.Errorf("closing: expired = %v, %v", why, ok)
	}
	if !o.readBy().Before(time.Unix(0, o.lastIn.Load())) {
		t.Error("closing: the read deadline is not in the past")
	}
}

// TestReloadReachesMembers: a Reload that shortens the idle and handshake
// timeouts applies to members already connected, on every driver.
func TestReloadReachesMembers(t *testing.T) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Timeouts.Idle = config.Duration(time.Hour)
			cfg.Timeouts.Handshake = config.Duration(time.Hour)
			s := startServer(t, cfg)
			quiet := d.dial(t, s).enter("quiet")
			nameless := d.dial(t, s)
			cfg.Timeouts.Idle = config.Duration(time.Second)
			cfg.Timeouts.Handshake = config.Duration(time.Second)
			s.Reload(cfg)
			if l := quiet.until("the notice", func(l string) bool { return strings.HasPrefix(l, "!!!") }); l != "!!! disconnected: idle too long" {
				t.Errorf("quiet told %q", l)
			}
			if l := nameless.until("the notice", func(l string) bool { return strings.HasPrefix(l, "!!!") }); l != "!!! no name within 1s; bye" {
				t.Errorf("nameless told %q", l)
			}
			waitFor(t, 5*time.Second, "the idle member to be counted", func() bool {
				return s.Stats().Disconnects["idle too long"] == 1
			})
		})
	}
}

// TestPanicEndsMember: a panic while handling a member's line ends that
// member as any other end does (told, its name freed, gone from the room),
// on every driver, and the relay goes on.
func TestPanicEndsMember(t *testing.T) {
	handleHook = func(m *member, req proto.Request) {
		if req.Op == proto.Say && req.Text == "boom" {
			panic("boom")
		}
	}
	t.Cleanup(func() { handleHook = nil })
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			s := startServer(t, testConfig())
			watcher := join(t, s, "watcher")
			victim := d.dial(t, s).enter("victim")
			victim.send("boom")
			if l := victim.until("the notice", func(l string) bool { return strings.HasPrefix(l, "!!!") }); l != "!!! disconnected: internal error" {
				t.Errorf("victim told %q", l)
			}
			if l := watcher.until("the part", func(l string) bool { return strings.Contains(l, " left ") }); l != "--- victim left lobby (internal error)" {
				t.Errorf("watcher saw %q", l)
			}
			again := d.dial(t, s).enter("victim") // the name is free again
			again.send("still here")
			if got := watcher.messages(1); got[0] != "victim: still here" {
				t.Errorf("watcher got %q", got)
			}
		})
	}
}
