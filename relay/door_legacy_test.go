//go:build !minimal

package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"roomrelay/relay/config"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
	"roomrelay/relay/internal/testkit"
)

// tutorialClient behaves on the wire as messenger_client.py does: every
// message on a connection of its own, shutdown then close; its receiver
// reads each delivery with recv(16) until EOF and keeps it whole.
type tutorialClient struct {
	t    *testing.T
	name string
	door string
	ln   net.Listener

	mu  sync.Mutex
	got []string
}

// newTutorialClient registers name with the legacy door, and only then
// starts listening, as the tutorial client does.
func newTutorialClient(t *testing.T, s *Server, name string) *tutorialClient {
	t.Helper()
	// Reserve a port, but do not listen on it yet.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tc := &tutorialClient{t: t, name: name, door: s.Addr("legacy").String()}
	tc.send(fmt.Sprintf("connect_request|%s|localhost|%d", name, port))
	if tc.ln, err = net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.ln.Close() })
	go tc.receive()
	return tc
}

// send writes one message on a new connection, then shutdown and close.
func (tc *tutorialClient) send(msg string) {
	tc.t.Helper()
	c, err := net.DialTimeout("tcp", tc.door, 5*time.Second)
	if err != nil {
		tc.t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		tc.t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	c.Close()
}

func (tc *tutorialClient) receive() {
	for {
		c, err := tc.ln.Accept()
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var msg []byte
		buf := make([]byte, 16)
		for {
			n, err := c.Read(buf)
			msg = append(msg, buf[:n]...)
			if err != nil {
				break
			}
		}
		c.Close()
		tc.mu.Lock()
		tc.got = append(tc.got, strings.TrimSpace(string(msg)))
		tc.mu.Unlock()
	}
}

func (tc *tutorialClient) messages() []string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return append([]string(nil), tc.got...)
}

func (tc *tutorialClient) waitFor(n int) []string {
	tc.t.Helper()
	waitFor(tc.t, 10*time.Second, fmt.Sprintf("%s to get %d messages", tc.name, n), func() bool { return len(tc.messages()) >= n })
	return tc.messages()
}

func TestLegacyDoor(t *testing.T) {
	s := startServer(t, testConfig())
	nc := join(t, s, "nc")
	a := newTutorialClient(t, s, "first")
	b := newTutorialClient(t, s, "second")
	nc.until("second's join", func(l string) bool { return l == "--- second joined lobby" })

	// In order, with | and non-ASCII text; a 16-byte recv boundary falls
	// inside "é" of the third message as delivered.
	a.send("from:first|one")
	a.send("from:first|two | with pipes")
	a.send("from:first|xxxxxxxxé ünïcödé")
	a.send("  from:first|  padded  \n")
	want := []string{"first: one", "first: two | with pipes", "first: xxxxxxxxé ünïcödé", "first:   padded", "nc: hello tutorial"}
	if diff := cmp.Diff(want[:4], nc.messages(4)); diff != "" {
		t.Errorf("nc got (-want +got):\n%s", diff)
	}
	nc.send("hello tutorial")
	if diff := cmp.Diff(want, b.waitFor(5)); diff != "" {
		t.Errorf("second got (-want +got):\n%s", diff)
	}
	if got := a.waitFor(1); !cmp.Equal(got, []string{"nc: hello tutorial"}) {
		t.Errorf("first got %q; it must not get its own messages", got)
	}

	// Actions and private messages reach it as the line door shows them;
	// joins, parts and notices do not.
	join(t, s, "late").c.Close()
	nc.until("late's part", func(l string) bool { return strings.HasPrefix(l, "--- late left") })
	nc.send("/me waves", "/msg first psst")
	want = []string{"nc: hello tutorial", "* nc waves", "[private] nc: psst"}
	if diff := cmp.Diff(want, a.waitFor(3)); diff != "" {
		t.Errorf("first got (-want +got):\n%s", diff)
	}

	// A name is posted only from its own address, and the names are shared.
	a.send("from:nc|impostor")
	a.send("from:nobody|who")
	a.send("connect_request|nc|localhost|9")
	b.send("from:second|still in order")
	if got := nc.messages(1); got[0] != "second: still in order" {
		t.Errorf("nc got %q", got)
	}
}

func TestLegacySilentSenderDelaysNobody(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Message = config.Duration(time.Hour) // only the test's end cuts it
	s := startServer(t, cfg)
	nc := join(t, s, "nc")
	a := newTutorialClient(t, s, "first")
	silent, err := net.Dial("tcp", s.Addr("legacy").String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	trickle, err := net.Dial("tcp", s.Addr("legacy").String())
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	trickle.Write([]byte("from:fir"))
	a.send("from:first|not delayed")
	if got := nc.messages(1); got[0] != "first: not delayed" {
		t.Errorf("nc got %q", got)
	}
}

func TestLegacyMessageDeadline(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Message = config.Duration(50 * time.Millisecond)
	s := startServer(t, cfg)
	c, err := net.Dial("tcp", s.Addr("legacy").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("from:x|never closed"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read = %v, want EOF once the relay cuts the connection", err)
	}
}

// TestLegacyShutdownMidMessage: the relay shutting down drops a legacy
// message still being read at once, without waiting out
// Timeouts.Message.
func TestLegacyShutdownMidMessage(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Message = config.Duration(time.Hour)
	s := startServer(t, cfg)
	c, err := net.Dial("tcp", s.Addr("legacy").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // ends the read, if nothing else does
	c.Write([]byte("from:x|half a mess"))
	waitFor(t, 10*time.Second, "the message to be read", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, info := range s.conns {
			if info.slot {
				return true
			}
		}
		return false
	})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown still waits for the legacy message after 30s")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read = %v, want the connection closed by the relay", err)
	}
	if st := s.Stats(); st.LegacyDropped != 1 {
		t.Errorf("legacy_dropped %d, want 1", st.LegacyDropped)
	}
}

// A registration naming a host other than the sender's is refused: the
// relay never dials a third party.
func TestLegacyThirdPartyHost(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg := testConfig()
	s := New(cfg, func(f string, a ...any) { mu.Lock(); fmt.Fprintf(&logs, f+"\n", a...); mu.Unlock() })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNow(t, s)
	tc := &tutorialClient{t: t, door: s.Addr("legacy").String()}
	tc.send("connect_request|mallory|192.0.2.7|80")
	waitFor(t, 10*time.Second, "the refusal in the log", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "connect_request for mallory refused: host 192.0.2.7 is not the address 127.0.0.1 it was sent from")
	})
	if s.lookup("mallory") != nil {
		t.Error("mallory registered")
	}
}

// An unreachable member is dropped after its failures and holds nobody up.
func TestLegacyUnreachable(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Retry = config.Duration(20 * time.Millisecond)
	cfg.Limits.LegacyFailures = 2
	var log testkit.Buffer
	s := startServerLog(t, cfg, log.Logf)
	nc := join(t, s, "nc")
	listener := join(t, s, "other")
	gone := &tutorialClient{t: t, door: s.Addr("legacy").String()}
	gone.send("connect_request|gone|127.0.0.1|9") // nothing listens on port 9
	nc.until("gone's join", func(l string) bool { return l == "--- gone joined lobby" })
	for k := range 5 {
		nc.send(fmt.Sprint(k))
	}
	if got := listener.messages(5); got[4] != "nc: 4" {
		t.Errorf("got %q", got)
	}
	if l := nc.until("gone's part", func(l string) bool { return strings.HasPrefix(l, "--- gone left") }); l != "--- gone left lobby (unreachable)" {
		t.Errorf("part = %q", l)
	}
	// The log names the address it registered from.
	waitFor(t, 5*time.Second, "gone's leave logged", func() bool { return log.Has("legacy 127.0.0.1: gone left: unreachable") })
}

// dialUDP is a UDP socket that sends to s's UDP door.
func dialUDP(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", s.Addr("udp").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestUDPDoor(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Rate = 1
	cfg.Limits.Burst = 2
	s := startServer(t, cfg)
	nc := join(t, s, "nc")
	c := dialUDP(t, s)
	for _, d := range []string{
		"from:thermo|kitchen is 31 °C | hot",
		"from:nc|not yours",
		"hello",
		"from:thermo|  ",
		"from:thermo|third: over the burst",
	} {
		c.Write([]byte(d))
	}
	waitFor(t, 10*time.Second, "four drops", func() bool { return s.Stats().UDPDropped == 4 })
	if got := nc.messages(1); got[0] != "thermo@udp: kitchen is 31 °C | hot" {
		t.Errorf("nc got %q", got)
	}
	// Only allowed networks.
	cfg.UDPAllow = []string{"10.0.0.0/8"}
	s2 := startServer(t, cfg)
	c2 := dialUDP(t, s2)
	c2.Write([]byte("from:thermo|hi"))
	waitFor(t, 10*time.Second, "the drop", func() bool { return s2.Stats().UDPDropped == 1 })
	// A network given with host bits is its network, as the other lists
	// read it (allowed); an entry no network is passed over.
	cfg.UDPAllow = []string{"not a network", "127.9.9.9/8"}
	s3 := startServer(t, cfg)
	nc3 := join(t, s3, "nc")
	c3 := dialUDP(t, s3)
	c3.Write([]byte("from:thermo|in 127.0.0.0/8"))
	if got := nc3.messages(1); got[0] != "thermo@udp: in 127.0.0.0/8" {
		t.Errorf("nc got %q", got)
	}
}

// TestLegacyPostWhileJoining: a post may come in a name as soon as its
// registration has published it, while the registration is still entering
// the room; the post reads the member's room under the member's lock (go
// test -race fails otherwise) and reaches the room either way.
func TestLegacyPostWhileJoining(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0") // takes the deliveries
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // after the relay's shutdown, which flushes to it
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	s := startServer(t, testConfig())
	nc := join(t, s, "nc")
	port := ln.Addr().(*net.TCPAddr).Port
	from := netip.MustParseAddr("127.0.0.1")
	const n = 10
	var want []string
	for i := range n {
		name := fmt.Sprintf("racer%d", i)
		done := make(chan error, 1)
		go func() {
			done <- legacyOf(s).register(from, proto.Legacy{Kind: proto.LegacyRegister, Name: name, Host: "127.0.0.1", Port: port})
		}()
		// Post the moment the name is published: a spin, bounded in time.
		deadline := time.Now().Add(10 * time.Second)
		for s.lookup(name) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s not registered within 10s", name)
			}
			runtime.Gosched()
		}
		if err := s.postAs(from, name, "hi", true); err != nil {
			t.Fatalf("post as %s: %v", name, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		want = append(want, name+": hi")
	}
	if diff := cmp.Diff(want, nc.messages(n)); diff != "" {
		t.Errorf("nc got (-want +got):\n%s", diff)
	}
}

// legacyConn opens a legacy-door connection that sends nothing yet.
func legacyConn(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr("legacy").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readNothing checks that the relay wrote nothing on a legacy connection
// before closing it.
func readNothing(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 64)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read %d bytes, %v; want the connection closed with nothing written", n, err)
	}
}

// A burst of one-message connections over the address's limit waits for
// slots and is posted whole, in order.
func TestLegacyBurstWaits(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxClientsPerIP = 3
	s := startServer(t, cfg)
	nc := join(t, s, "nc") // holds one of the three slots
	a := newTutorialClient(t, s, "first")
	silent := []net.Conn{legacyConn(t, s), legacyConn(t, s)}
	waitFor(t, 10*time.Second, "the silent connections to hold the slots", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.perIP[netip.MustParseAddr("127.0.0.1")] == 3
	})
	const n = 10
	var want []string
	for k := range n {
		a.send(fmt.Sprintf("from:first|%d", k))
		want = append(want, fmt.Sprintf("first: %d", k))
	}
	waitFor(t, 10*time.Second, "the burst to queue", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.waiting[netip.MustParseAddr("127.0.0.1")]) == n
	})
	for _, c := range silent {
		c.Close()
	}
	if diff := cmp.Diff(want, nc.messages(n)); diff != "" {
		t.Errorf("nc got (-want +got):\n%s", diff)
	}
	if st := s.Stats(); st.LegacyDropped != 0 || st.Refused != 0 {
		t.Errorf("stats %+v; want nothing dropped or refused", st)
	}
}

// A connection waits for a slot of its address for at most
// timeouts.message, and is then dropped, counted, and told nothing.
func TestLegacyWaitBounded(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxClientsPerIP = 1
	cfg.Timeouts.Message = config.Duration(200 * time.Millisecond)
	var logs strings.Builder
	var mu sync.Mutex
	s := New(cfg, func(f string, a ...any) { mu.Lock(); fmt.Fprintf(&logs, f+"\n", a...); mu.Unlock() })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNow(t, s)
	dial(t, s) // the address's only slot
	c := legacyConn(t, s)
	c.Write([]byte("from:x|waits in vain"))
	readNothing(t, c)
	waitFor(t, 10*time.Second, "the drop in the log", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "dropped: waited relay.timeouts.message for a slot of its address")
	})
	if n := s.Stats().LegacyDropped; n != 1 {
		t.Errorf("%d messages dropped, want 1", n)
	}
}

// While the relay is full the legacy door stops accepting, and takes the
// message once there is room; past timeouts.message it drops messages,
// each counted, until there is room again.
func TestLegacyRelayFull(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxClients = 1
	cfg.Timeouts.Message = config.Duration(time.Second)
	s := startServer(t, cfg)
	first := newTutorialClient(t, s, "first")
	second := newTutorialClient(t, s, "second")
	waitFor(t, 10*time.Second, "both registrations", func() bool { return s.lookup("second") != nil })
	conns := func(n int) func() bool {
		return func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.conns) == n
		}
	}
	full := func() net.Conn {
		waitFor(t, 10*time.Second, "room", conns(0))       // the registrations' connections are done
		c, err := net.Dial("tcp", s.Addr("line").String()) // in its handshake: the relay's only connection
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		waitFor(t, 10*time.Second, "the relay to be full", conns(1))
		return c
	}
	waiting := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !s.full.IsZero()
	}

	line := full()
	second.send("from:second|patient")
	waitFor(t, 10*time.Second, "the door to wait", waiting)
	line.Close()
	if got := first.waitFor(1); got[0] != "second: patient" {
		t.Errorf("first got %q", got)
	}

	line = full()
	second.send("from:second|too patient")
	waitFor(t, 10*time.Second, "the message to be dropped", func() bool { return s.Stats().LegacyDropped == 1 })
	second.send("from:second|dropped at once")
	waitFor(t, 10*time.Second, "the next to be dropped", func() bool { return s.Stats().LegacyDropped == 2 })
	if got := first.messages(); len(got) != 1 {
		t.Errorf("first got %q", got)
	}

	// Once there was room, the next time the relay is full is a new wait.
	line.Close()
	line = full()
	second.send("from:second|patient again")
	waitFor(t, 10*time.Second, "the door to wait", waiting)
	line.Close()
	if got := first.waitFor(2); got[1] != "second: patient again" {
		t.Errorf("first got %q", got)
	}
	if st := s.Stats(); st.Refused != 0 {
		t.Errorf("%d connections refused; the legacy door waits instead", st.Refused)
	}
}

// register registers name from addr at port directly, as a
// connect_request from addr would.
func register(s *Server, addr, name string, port int) error {
	return legacyOf(s).register(netip.MustParseAddr(addr), proto.Legacy{Kind: proto.LegacyRegister, Name: name, Host: addr, Port: port})
}

// One address holds at most max_legacy_per_ip registrations; another
// address is not held up by it, and a registration already held may be
// renewed.
func TestLegacyPerIPLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxLegacyPerIP = 2
	s := startServer(t, cfg)
	for i, name := range []string{"a", "b"} {
		if err := register(s, "127.0.0.1", name, 9001+i); err != nil {
			t.Fatal(err)
		}
	}
	err := register(s, "127.0.0.1", "c", 9003)
	if want := "127.0.0.1 holds 2 legacy registrations already (relay.limits.max_legacy_per_ip)"; err == nil || err.Error() != want {
		t.Errorf("third registration: %v, want %q", err, want)
	}
	if err := register(s, "127.0.0.1", "a", 9004); err != nil {
		t.Errorf("renewing a: %v", err)
	}
	if err := register(s, "127.0.0.2", "c", 9003); err != nil {
		t.Errorf("c from another address: %v", err)
	}
	// Through the door, the refusal is counted and nothing is written back.
	c := legacyConn(t, s)
	c.Write([]byte("connect_request|d|127.0.0.1|9005"))
	c.(*net.TCPConn).CloseWrite()
	readNothing(t, c)
	waitFor(t, 10*time.Second, "the refusal to be counted", func() bool { return s.Stats().LegacyRefused == 1 })
	if s.lookup("d") != nil {
		t.Error("d registered")
	}
}

// A registration at the endpoint of another name of the same address
// replaces it.
func TestLegacyEndpointReplaced(t *testing.T) {
	s := startServer(t, testConfig())
	nc := join(t, s, "nc")
	if err := register(s, "127.0.0.1", "old", 9001); err != nil {
		t.Fatal(err)
	}
	if err := register(s, "127.0.0.1", "new", 9001); err != nil {
		t.Fatal(err)
	}
	if l := nc.until("old's part", func(l string) bool { return strings.HasPrefix(l, "--- old left") }); l != "--- old left lobby (replaced)" {
		t.Errorf("part = %q", l)
	}
	waitFor(t, 10*time.Second, "old's name to be free", func() bool { return s.lookup("old") == nil })
	if s.lookup("new") == nil {
		t.Error("new is not registered")
	}
}

// A registration lapses after legacy_lapse without a delivery or a post.
func TestLegacyLapse(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.LegacyLapse = config.Duration(100 * time.Millisecond)
	s := startServer(t, cfg)
	nc := join(t, s, "nc")
	if err := register(s, "127.0.0.1", "quiet", 9); err != nil {
		t.Fatal(err)
	}
	if l := nc.until("quiet's part", func(l string) bool { return strings.HasPrefix(l, "--- quiet left") }); l != "--- quiet left lobby (lapsed)" {
		t.Errorf("part = %q", l)
	}
	if n := s.Stats().Disconnects["lapsed"]; n != 1 {
		t.Errorf("%d lapsed, want 1", n)
	}
}

// The lapse counts from the member's last registration, post or delivery
// (its session's lastIn): a session rule, checked with made-up times.
func TestLegacyLapseCheck(t *testing.T) {
	s := New(testConfig(), t.Logf) // legacy_lapse 168h
	m := s.newMember(nil, "legacy", &legacyPeer{wakeC: make(chan struct{}, 1)})
	m.named.Store(true)
	t0 := time.Unix(0, m.lastIn.Load())
	if why, ok := m.expired(t0.Add(167 * time.Hour)); ok {
		t.Errorf("lapsed (%v) within its lapse", why)
	}
	if why, ok := m.expired(t0.Add(169 * time.Hour)); !ok || why != byLapsed {
		t.Errorf("after its lapse: %v, %v; want lapsed", why, ok)
	}
	m.lastIn.Store(t0.Add(100 * time.Hour).UnixNano()) // a delivery
	if why, ok := m.expired(t0.Add(169 * time.Hour)); ok {
		t.Errorf("lapsed (%v) although it took a delivery since", why)
	}
}

// legacyOf returns s's legacy door.
func legacyOf(s *Server) *legacyDoor {
	for _, d := range s.doors {
		if l, ok := d.(*legacyDoor); ok {
			return l
		}
	}
	panic("no legacy door in this build")
}

// TestLegacyKickedWhileRegistering: a legacy member kicked as soon as its
// name is published, before it enters its room (a shutdown, a
// registration replacing it), is not left in the room after it ended.
func TestLegacyKickedWhileRegistering(t *testing.T) {
	registeredHook = func(m *member) { m.kick(byReplaced) }
	t.Cleanup(func() { registeredHook = nil })
	s := startServer(t, testConfig())
	watcher := join(t, s, "watcher")
	if err := legacyOf(s).register(netip.MustParseAddr("127.0.0.1"),
		proto.Legacy{Kind: proto.LegacyRegister, Name: "ghost", Host: "127.0.0.1", Port: 9}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "its end", func() bool { return s.lookup("ghost") == nil })
	watcher.until("its part", func(l string) bool { return strings.HasPrefix(l, "--- ghost left") })
	r, err := s.room(s.conf().DefaultRoom)
	if err != nil {
		t.Fatal(err)
	}
	if names := r.names(); slices.Contains(names, "ghost") {
		t.Errorf("ended, but still in %s: %v", r.name, names)
	}
}

// An empty post (Enter on an empty line in the tutorial client) is no
// message, as at the other doors: dropped, counted and logged, but a sign
// of life of its member.
func TestLegacyEmptyPost(t *testing.T) {
	log := testkit.NewLog(t)
	s := startServerLog(t, testConfig(), log.Logf)
	nc := join(t, s, "nc")
	a := newTutorialClient(t, s, "first client")
	nc.until("its join", func(l string) bool { return l == "--- first client joined lobby" })
	m := s.lookup("first client")
	old := time.Now().Add(-time.Hour).UnixNano()
	m.lastIn.Store(old)
	a.send("from:first client|")
	a.send("from:first client|  \t ")
	waitFor(t, 10*time.Second, "two drops", func() bool { return s.Stats().LegacyDropped == 2 })
	a.send("from:first client|after")
	if got := nc.messages(1); got[0] != "first client: after" {
		t.Errorf("nc got %q, want only the message that has text", got)
	}
	if m.lastIn.Load() == old {
		t.Error("an empty post is not a sign of life of its member")
	}
	if !log.Has("legacy message from 127.0.0.1:") || !log.Has("dropped: empty message") {
		t.Errorf("log:\n%s", log)
	}
	if st := s.Stats(); st.LegacyRefused != 0 || st.Posted != 1 {
		t.Errorf("refused %d, posted %d; want 0 and 1", st.LegacyRefused, st.Posted)
	}
}
