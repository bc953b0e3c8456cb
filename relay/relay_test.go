package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

func TestChat(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	alice.until("bob's join", func(l string) bool { return l == "--- bob joined lobby" })

	alice.send("hello bob", "/me waves", "/msg bob psst", "//slash")
	got := bob.messages(4)
	want := []string{"alice: hello bob", "* alice waves", "[private] alice: psst", "alice: /slash"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bob got (-want +got):\n%s", diff)
	}
	bob.send("/who")
	who := bob.until("who", func(l string) bool { return strings.HasPrefix(l, "--- in lobby:") })
	if !strings.Contains(who, "alice") || !strings.Contains(who, "bob") {
		t.Errorf("who = %q", who)
	}
	bob.send("/nosuch")
	if l := bob.line(); !strings.HasPrefix(l, "!!! unknown command /nosuch") {
		t.Errorf("unknown command answer %q", l)
	}
	alice.send("/quit")
	alice.until("bye", func(l string) bool { return l == "--- bye" })
	if l := bob.until("part", func(l string) bool { return strings.Contains(l, "left") }); l != "--- alice left lobby (quit)" {
		t.Errorf("part = %q", l)
	}
}

func TestRooms(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxRooms = 2
	s := startServer(t, cfg)
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	alice.send("/join #Kitchen")
	alice.until("join", func(l string) bool { return strings.HasPrefix(l, "--- you are alice in Kitchen") })
	bob.send("in the lobby", "/join kitchen", "in the kitchen")
	if l := alice.messages(1)[0]; l != "bob: in the kitchen" {
		t.Errorf("alice got %q; messages of another room leak in", l)
	}
	bob.send("/join garage")
	if l := bob.until("refusal", func(l string) bool { return strings.HasPrefix(l, "!!!") }); !strings.Contains(l, "room limit reached") {
		t.Errorf("third room: %q", l)
	}
	bob.send("/rooms")
	if l := bob.until("rooms", func(l string) bool { return strings.HasPrefix(l, "--- rooms:") }); l != "--- rooms: Kitchen (2), lobby (0)" {
		t.Errorf("rooms = %q", l)
	}
}

// TestFanout: every member gets every other member's messages exactly
// once and in each sender's order.
func TestFanout(t *testing.T) {
	const members, perMember = 50, 100
	cfg := testConfig()
	cfg.Limits.History = members*perMember + 2*members
	cfg.Limits.Queue = cfg.Limits.History
	cfg.Limits.MaxClientsPerIP = members
	s := startServer(t, cfg)
	conns := make([]*tconn, members)
	for i := range conns {
		conns[i] = join(t, s, fmt.Sprintf("m%02d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*members)
	for i, tc := range conns {
		wg.Add(2)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for k := range perMember {
				fmt.Fprintf(&b, "%d\n", k)
			}
			tc.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(tc.c, b.String()); err != nil {
				errs <- err
			}
		}()
		go func() {
			defer wg.Done()
			next := map[string]int{}
			for got := 0; got < (members-1)*perMember; {
				l, err := tc.read(20 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("m%02d after %d messages: %w", i, got, err)
					return
				}
				from, text, ok := strings.Cut(l, ": ")
				if !ok || strings.HasPrefix(l, "---") {
					continue
				}
				if from == tc.name {
					errs <- fmt.Errorf("m%02d got its own message %q", i, l)
					return
				}
				if want := fmt.Sprint(next[from]); text != want {
					errs <- fmt.Errorf("m%02d: from %s got %s, want %s", i, from, text, want)
					return
				}
				next[from]++
				got++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.Stats(); st.Posted != members*perMember || len(st.Disconnects) != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFrozenMember: a member that never reads is disconnected as too
// slow, and the others keep receiving everything meanwhile.
func TestFrozenMember(t *testing.T) {
	const n, chunk = 20000, 1000
	cfg := testConfig()
	cfg.Limits.History = 4096
	cfg.Limits.HistoryBytes = 0 // a chunk is 500 KB
	cfg.Limits.Queue = 4096
	s := startServer(t, cfg)
	frozen := join(t, s, "frozen")
	// Once it is dropped, it reads what its socket holds at once: what it
	// is told comes after that, within a second.
	told := make(chan string, 1)
	go func() {
		last := ""
		defer func() { told <- last }()
		deadline := time.Now().Add(60 * time.Second)
		for s.Stats().Disconnects["too slow"] == 0 {
			if time.Now().After(deadline) {
				return
			}
			time.Sleep(time.Millisecond) // polling interval, not synchronisation
		}
		for {
			l, err := frozen.read(10 * time.Second)
			if err != nil {
				return
			}
			last = l
		}
	}()
	reader := join(t, s, "reader")
	sender := join(t, s, "sender")
	text := strings.Repeat("x", 500)
	// The sender sends a chunk only once the reader has the one before, so
	// the reader is never more than a chunk (well within the queue) behind,
	// however slowly it is scheduled: only the frozen member falls behind.
	for k0 := 0; k0 < n; k0 += chunk {
		var b strings.Builder
		for k := k0; k < k0+chunk; k++ {
			fmt.Fprintf(&b, "%d %s\n", k, text)
		}
		sender.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(sender.c, b.String()); err != nil {
			t.Fatalf("send: %v", err)
		}
		for i, l := range reader.messages(chunk) {
			if want := fmt.Sprintf("sender: %d %s", k0+i, text); l != want {
				t.Fatalf("message %d = %.40q, want %.40q", k0+i, l, want)
			}
		}
	}
	waitFor(t, 10*time.Second, "the frozen member to be dropped", func() bool {
		return s.Stats().Disconnects["too slow"] == 1
	})
	if s.lookup("frozen") != nil {
		t.Error("frozen still holds its name")
	}
	last := <-told
	if !strings.HasPrefix(last, "!!! disconnected: too slow") {
		t.Errorf("frozen member's last line %.60q, want it told why", last)
	}
	t.Logf("%d messages of %d bytes: the reader got all; the frozen member told %q", n, len(text), last)
}

// TestFrozenPipe runs a member over net.Pipe, which buffers nothing: it
// must be dropped without stalling the room.
func TestFrozenPipe(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Queue = 64
	cfg.Limits.History = 64
	s := startServer(t, cfg)
	srvEnd, cliEnd := net.Pipe()
	defer cliEnd.Close()
	if s.admit(srvEnd).why != "" {
		t.Fatal("not admitted")
	}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.serveConn(srvEnd, "line", greeting, nil) }()
	lr := proto.NewLineReader(cliEnd, 4096)
	cliEnd.SetDeadline(time.Now().Add(10 * time.Second))
	lr.ReadLine()
	io.WriteString(cliEnd, "piped\n") // and never read again
	waitFor(t, 10*time.Second, "piped to join", func() bool { return s.lookup("piped") != nil })
	talker := join(t, s, "talker")
	listener := join(t, s, "listener")
	// Bursts well within the queue. After each, the talker's pong and the
	// listener's lines show both caught up, however late their writers
	// ran: only the piped member can fall behind. Its writer takes at most
	// one batch (batchMax events) before it blocks for good, so more than
	// batchMax + queue events must follow, whenever it took it.
	for k := range 200 {
		talker.send(fmt.Sprint(k))
		if k%20 == 19 {
			talker.send("/ping " + fmt.Sprint(k))
			talker.until("the pong", func(l string) bool { return l == "--- pong "+fmt.Sprint(k) })
			if got := listener.messages(20); got[19] != fmt.Sprintf("talker: %d", k) {
				t.Fatalf("listener got %q", got)
			}
		}
	}
	waitFor(t, 10*time.Second, "piped to be dropped", func() bool { return s.lookup("piped") == nil })
}

// TestJoinOwed: a member that moves to another room before its writes
// caught up (its name and a /join in one packet) still gets everything it
// was owed in the room it left, in order: its replay there, and in JSON
// mode its own join.
func TestJoinOwed(t *testing.T) {
	s := startServer(t, testConfig())
	talker := join(t, s, "talker")
	for k := range 5 {
		talker.send(fmt.Sprint("earlier ", k))
	}
	talker.send("/ping sync")
	talker.until("the pong", func(l string) bool { return l == "--- pong sync" })
	for _, tc := range []struct{ hello, first, last string }{
		{"quick", "talker: earlier 0", "talker: earlier 4"},
		{`{"name":"prog","mode":"json","replay":5}`, `"text":"earlier 2"`, `"type":"join","room":"lobby","seq":9,"from":"prog"`},
	} {
		c := dial(t, s)
		c.name = tc.hello
		c.send(tc.hello, "/join kitchen")
		got := c.upTo("the kitchen welcome", func(l string) bool { return strings.Contains(l, "in kitchen") })
		text := strings.Join(got, "\n")
		if i, j := strings.Index(text, tc.first), strings.Index(text, tc.last); i < 0 || j < i {
			t.Errorf("%s got, before its kitchen welcome (want %q, then %q):\n%s", tc.hello, tc.first, tc.last, text)
		}
	}
}

// TestBlankLines: an empty or blank line is no message.
func TestBlankLines(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	alice.send("", "   ", "real")
	if got := bob.messages(1)[0]; got != "alice: real" {
		t.Errorf("bob got %q, want alice: real", got)
	}
}

func TestResume(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.History = 16
	cfg.Limits.Queue = 16
	s := startServer(t, cfg)
	talker := join(t, s, "talker")
	prog := join(t, s, `{"name":"prog","mode":"json","replay":0}`)
	talker.send("one")
	e := jsonEvent(t, prog.until("one", isMsg))
	if e.Text != "one" || e.From != "talker" || e.Room != "lobby" || e.Seq == 0 || e.Time.IsZero() {
		t.Fatalf("event %+v", e)
	}
	last := e.Seq
	prog.c.Close()
	waitFor(t, 5*time.Second, "prog to leave", func() bool { return s.lookup("prog") == nil })
	talker.send("two", "three")
	talker.send("/ping sync")
	talker.until("pong", func(l string) bool { return l == "--- pong sync" })

	prog = join(t, s, fmt.Sprintf(`{"name":"prog","mode":"json","since":%d}`, last))
	var got []string
	for len(got) < 2 {
		if e := jsonEvent(t, prog.until("a message", isMsg)); e.From == "talker" {
			got = append(got, e.Text)
		}
	}
	if diff := cmp.Diff([]string{"two", "three"}, got); diff != "" {
		t.Errorf("resumed (-want +got):\n%s", diff)
	}

	// Resuming from too far back says how much is lost.
	for k := range 20 {
		talker.send(fmt.Sprint(k))
		if k%5 == 4 { // stay within the queue
			talker.send("/ping sync2")
			talker.until("pong", func(l string) bool { return l == "--- pong sync2" })
		}
	}
	late := join(t, s, "late")
	// A replay is marked off from what is live.
	replay := []string{late.line(), late.line()}
	if !strings.HasPrefix(replay[0], "--- earlier in lobby, events ") || !strings.HasPrefix(replay[1], "talker: ") {
		t.Errorf("replay starts %q", replay)
	}
	late.until("the end of the replay", func(l string) bool { return l == "--- end of earlier events" })
	late.send("/since 1")
	l := late.until("gap notice", func(l string) bool { return strings.Contains(l, "fell out") })
	if !strings.HasPrefix(l, "--- ") || !strings.Contains(l, "events of lobby fell out of the history window") {
		t.Errorf("gap notice %q", l)
	}
	// A resume point past the last event (the relay restarted) replays
	// all that is kept, and says so.
	late.send("/since 9999")
	l = late.until("restart notice", func(l string) bool { return strings.Contains(l, "resume point") })
	if !strings.Contains(l, "resume point 9999 is past lobby's last event") {
		t.Errorf("notice %q", l)
	}
	late.until("a replayed message", func(l string) bool { return strings.HasPrefix(l, "talker: ") })
}

func isMsg(l string) bool { return strings.Contains(l, `"type":"msg"`) }

func jsonEvent(t *testing.T, l string) proto.Event {
	t.Helper()
	e, err := proto.DecodeJSON([]byte(l))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestHandshakeTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Handshake = config.Duration(100 * time.Millisecond)
	s := startServer(t, cfg)
	silent := dial(t, s)
	if l := silent.line(); l != "!!! no name within 100ms; bye" {
		t.Errorf("silent client told %q", l)
	}
	if _, err := silent.read(10 * time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("silent client: read = %v, want EOF when the relay hangs up", err)
	}
	// Answering with bad names buys no more time.
	stubborn := dial(t, s)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("still in the handshake after 10 s of bad names")
		}
		stubborn.send("not a name!")
		if l := stubborn.line(); strings.HasPrefix(l, "!!! no name within") {
			break
		}
	}
	// A name that comes in time is welcome.
	join(t, s, "quick")
}

func TestLongLine(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxLineBytes = 128
	s := startServer(t, cfg)
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	alice.send(strings.Repeat("a", 200), "after", strings.Repeat("b", 124))
	if l := alice.until("error", func(l string) bool { return strings.HasPrefix(l, "!!!") }); !strings.Contains(l, "line too long") {
		t.Errorf("alice told %q", l)
	}
	if l := alice.until("error", func(l string) bool { return strings.HasPrefix(l, "!!!") }); !strings.Contains(l, "message too long") {
		t.Errorf("alice told %q", l)
	}
	if got := bob.messages(1); got[0] != "alice: after" {
		t.Errorf("bob got %q: the stream lost sync", got)
	}
}

func TestNames(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	c := dial(t, s)
	for _, tc := range []struct{ send, want string }{
		{"ALICE", "!!! name taken: ALICE is in use; send another name"},
		{"bad  name", "!!! invalid name: name has two spaces in a row; send another name"},
		{"-x", "!!! invalid name: name must start with a letter or digit (not '-'); send another name"},
		{"x!", "!!! invalid name: name may hold only letters, digits, spaces, _ - and . (not '!'); send another name"},
		// Cyrillic а, then Latin: refused whoever is here.
		{"\u0430lice", "!!! invalid name: name mixes Latin and Cyrillic letters ('а' at character 1 is Cyrillic); send another name"},
		// All Cyrillic (а ӏ і с е): a valid name, but it folds to alice's.
		{"\u0430\u04cf\u0456\u0441\u0435", "!!! name taken: \u0430\u04cf\u0456\u0441\u0435 is in use; send another name"},
		{"e\u0301lodie", "!!! invalid name: name \"e\u0301\" must be written as one character, not \"e\" + a combining mark (U+0301 at character 2); send another name"},
		{"al\u200bice", "!!! invalid name: name holds an invisible or formatting character (U+200B) at character 3; send another name"},
		{"carol", "--- you are carol in lobby with 1 other (last event " + epochOf(t, s, "lobby") + "-1); /help lists the commands"},
	} {
		c.send(tc.send)
		if got := c.line(); got != tc.want {
			t.Errorf("name %q: got %q, want %q", tc.send, got, tc.want)
		}
	}
	alice.send("still here")
	if got := c.messages(1); got[0] != "alice: still here" {
		t.Errorf("holder of the name was disturbed: %q", got)
	}
}

func TestControlCharacters(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	alice.send("red \x1b[31malert\x07 \xff\ttab")
	if got := bob.messages(1)[0]; got != "alice: red \uFFFD[31malert\uFFFD \uFFFD tab" {
		t.Errorf("got %q", got)
	}
}

func TestShutdown(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Shutdown = config.Duration(time.Second)
	cfg.Timeouts.Write = config.Duration(time.Second)
	s := New(cfg, t.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	alice := join(t, s, "alice")
	frozen := join(t, s, "frozen")
	half := dial(t, s) // still in its handshake
	alice.send("bye all")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish within its bound")
	}
	if l := alice.until("notice", func(l string) bool { return strings.HasPrefix(l, "!!!") || strings.Contains(l, " left ") }); l != "!!! disconnected: relay shutting down" {
		t.Errorf("alice told %q; at shutdown each member is told once, not of the others", l)
	}
	for _, c := range []*tconn{alice, frozen, half} {
		for {
			if _, err := c.read(5 * time.Second); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s: %v, want EOF", c.name, err)
				}
				break
			}
		}
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", alice.c.RemoteAddr().String()); err == nil {
		t.Error("still accepting")
	}
}

func TestLimits(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxClientsPerIP = 2
	s := startServer(t, cfg)
	join(t, s, "a")
	join(t, s, "b")
	c, err := net.Dial("tcp", s.Addr("line").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, _ := proto.NewLineReader(c, 1024).ReadLine()
	if want := "!!! refused: too many connections from 127.0.0.1 (2)"; string(l) != want {
		t.Errorf("got %q, want %q", l, want)
	}
}

// TestIdleMembersHoldNoGoroutines: once joined, a member of the line door
// is served by the loop and has no goroutine of its own.
func TestIdleMembersHoldNoGoroutines(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxClientsPerIP = 100
	s := startServer(t, cfg)
	if s.loop == nil {
		t.Skip("no poller on this system")
	}
	base := runtime.NumGoroutine()
	var ms []*tconn
	for i := range 50 {
		ms = append(ms, join(t, s, fmt.Sprintf("m%d", i)))
	}
	ms[0].send("hello all")
	for _, m := range ms[1:] {
		if got := m.messages(1); got[0] != "m0: hello all" {
			t.Fatalf("%s got %q", m.name, got)
		}
	}
	// The handshake goroutines end once the loop has the members.
	waitFor(t, 5*time.Second, "the handshake goroutines to end", func() bool {
		return runtime.NumGoroutine() <= base+5
	})
}

// TestIdleTimeout: a member that sends nothing for timeouts.idle is told
// and disconnected.
func TestIdleTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Idle = config.Duration(time.Second)
	s := startServer(t, cfg)
	quiet := join(t, s, "quiet")
	if l := quiet.until("the notice", func(l string) bool { return strings.HasPrefix(l, "!!!") }); l != "!!! disconnected: idle too long" {
		t.Errorf("told %q", l)
	}
	waitFor(t, 5*time.Second, "the member to leave", func() bool { return s.Stats().Disconnects["idle too long"] == 1 })
}

// TestStalledWrite: a member whose socket takes nothing for
// timeouts.write is disconnected as too slow even while it is within the
// history.
func TestStalledWrite(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Write = config.Duration(time.Second)
	cfg.Limits.History = 8192
	cfg.Limits.Queue = 8192
	cfg.Limits.HistoryBytes = 0 // judged by its socket, not by the history
	s := startServer(t, cfg)
	stalled := join(t, s, "stalled")
	stalled.c.(*net.TCPConn).SetReadBuffer(4096)
	// Small kernel buffers on the relay's side too, so that what they take
	// does not depend on how far the kernel grows them.
	s.lookup("stalled").conn.(interface{ SetWriteBuffer(int) error }).SetWriteBuffer(4096)
	sender := join(t, s, "sender")
	text := strings.Repeat("y", 1000)
	for k := range 4000 { // 4 MB: more than both socket buffers hold
		sender.send(fmt.Sprint(k, text))
		if s.Stats().Disconnects["too slow"] == 1 {
			break
		}
	}
	waitFor(t, 10*time.Second, "the stalled member to be dropped", func() bool {
		return s.Stats().Disconnects["too slow"] == 1
	})
	if s.Stats().Disconnects["write failed"] != 0 {
		t.Error("dropped as a failed write, not as too slow")
	}
}

// TestCollectBeforeJoin: what is queued for a member before it is in a
// room (its socket may be writable before its join is done) is written.
func TestCollectBeforeJoin(t *testing.T) {
	s := New(testConfig(), t.Logf)
	d := newTestDriver()
	m := s.newMember(nil, "test", d)
	m.notify(proto.KindNotice, "not in a room yet")
	bufs, ok := m.collect(&d.batch, nil)
	if !ok || len(bufs) != 1 || string(bufs[0]) != "--- not in a room yet\n" {
		t.Errorf("collected %q, %v", bufs, ok)
	}
	if bufs, _ = m.collect(&d.batch, nil); len(bufs) != 0 {
		t.Errorf("then %q", bufs)
	}
}

// TestCollectCounts: messages_out and bytes_out grow by exactly the
// messages and bytes collect hands the driver to write, in text mode
// (time stamps on and off) and JSON mode.
func TestCollectCounts(t *testing.T) {
	for _, mode := range []string{"text", "stamps", "json"} {
		t.Run(mode, func(t *testing.T) {
			checkCollectCounts(t, func(m *member) {
				m.stamps.Store(mode == "stamps")
				m.json = mode == "json"
			})
		})
	}
}

// checkCollectCounts has a member, set up by setup, collect known events
// (a join, a message, an action, its own message, a private message, a
// notice) and checks what the counters grew by against what it collected.
func checkCollectCounts(t *testing.T, setup func(*member)) net.Buffers {
	t.Helper()
	s := New(testConfig(), t.Logf)
	r := newRoom("lobby", s.conf().Limits.History)
	d := newTestDriver()
	m := s.newMember(nil, "test", d)
	m.id, m.name = 1, "m"
	setup(m)
	m.mu.Lock()
	r.add(m, nil, 0)
	m.room = r
	m.mu.Unlock()
	t0 := now()
	r.post(&proto.Event{Kind: proto.KindJoin, From: "other", Time: t0}, 2, 1<<20)
	r.post(&proto.Event{Kind: proto.KindMsg, From: "other", Text: "hello", Time: t0}, 2, 1<<20)
	r.post(&proto.Event{Kind: proto.KindAction, From: "other", Text: "waves", Time: t0}, 2, 1<<20)
	r.post(&proto.Event{Kind: proto.KindMsg, From: "m", Text: "mine", Time: t0}, 1, 1<<20)
	m.deliver(newEvent(&proto.Event{Kind: proto.KindPrivate, From: "other", To: "m", Text: "psst", Time: t0}, 2))
	m.notify(proto.KindNotice, "a notice")
	before := s.Stats()
	bufs, ok := m.collect(&d.batch, nil)
	after := s.Stats()
	events, msgs := 5, 3 // text mode: not its own message
	if m.json {
		events, msgs = 6, 4
	}
	if !ok || len(bufs) < events {
		t.Fatalf("collected %q, %v; want %d events at least", bufs, ok, events)
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	if got := after.MessagesOut - before.MessagesOut; got != int64(msgs) {
		t.Errorf("messages_out grew by %d, want %d", got, msgs)
	}
	if got := after.BytesOut - before.BytesOut; got != int64(n) {
		t.Errorf("bytes_out grew by %d for %d bytes collected: %q", got, n, bufs)
	}
	if got := after.Delivered - before.Delivered; got != int64(events) {
		t.Errorf("delivered grew by %d, want %d", got, events)
	}
	if m.stamps.Load() && len(bufs) != events+4 {
		t.Errorf("stamps on: collected %q, want a stamp before each of the 4 events with a time", bufs)
	}
	if more, _ := m.collect(&d.batch, nil); len(more) != 0 {
		t.Errorf("then collected %q", more)
	}
	later := s.Stats()
	later.Goroutines = after.Goroutines // the process's
	if diff := cmp.Diff(after, later); diff != "" {
		t.Errorf("collecting nothing moved the counters (-before +after):\n%s", diff)
	}
	return bufs
}

// TestRoomRingGrows: a room's ring starts small and grows to its history
// without losing or misplacing an event on the way.
func TestRoomRingGrows(t *testing.T) {
	r := newRoom("lobby", 100)
	check := func(posted int) {
		t.Helper()
		oldest := max(1, posted-100+1)
		if got := r.oldest(); got != uint64(oldest) {
			t.Fatalf("after %d events oldest = %d, want %d", posted, got, oldest)
		}
		for seq := oldest; seq <= posted; seq++ {
			if ev := r.ring[uint64(seq)%uint64(len(r.ring))]; ev == nil || ev.seq != uint64(seq) {
				t.Fatalf("after %d events, event %d is %+v", posted, seq, ev)
			}
		}
	}
	for k := 1; k <= 250; k++ {
		r.post(&proto.Event{Kind: proto.KindMsg, From: "a", Text: fmt.Sprint(k)}, 0, 1000)
		check(k)
		if k < 16 && len(r.ring) != 16 || k > 64 && len(r.ring) != 100 {
			t.Fatalf("after %d events the ring holds %d", k, len(r.ring))
		}
	}
}

// TestChurn: members come and go in quick succession, some mid-handshake,
// some mid-message, while another keeps talking: nobody is lost or served
// another's socket, and everything is released.
func TestChurn(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxClientsPerIP = 100
	s := startServer(t, cfg)
	talker := join(t, s, "talker")
	listener := join(t, s, "listener")
	for round := range 10 {
		var cs []net.Conn
		for k := range 30 {
			c, err := net.DialTimeout("tcp", s.Addr("line").String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
			switch k % 3 {
			case 0: // hangs up before its name
			case 1:
				fmt.Fprintf(c, "c%d-%d\nhello from %d\n", round, k, k)
			case 2:
				fmt.Fprintf(c, "c%d-%d\nhalf a li", round, k)
			}
		}
		talker.send(fmt.Sprint("round ", round))
		for _, c := range cs {
			c.Close()
		}
		if got := listener.until("the round", func(l string) bool { return strings.HasPrefix(l, "talker: round") }); got != fmt.Sprint("talker: round ", round) {
			t.Fatalf("listener got %q", got)
		}
	}
	waitFor(t, 10*time.Second, "the others to leave", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.names) == 2 && len(s.conns) == 2
	})
	if s.loop != nil {
		waitFor(t, 10*time.Second, "the loop to forget them", func() bool {
			s.loop.mu.Lock()
			defer s.loop.mu.Unlock()
			n := 0
			for _, lc := range s.loop.members {
				if lc != nil {
					n++
				}
			}
			return n == 2
		})
	}
}

// TestEpoch: the welcome names the room's epoch; a resume point of that
// epoch resumes, one of another epoch (a restart, a room made anew) gets
// the restart notice and all that is kept, and no resume point wraps.
func TestEpoch(t *testing.T) {
	s := startServer(t, testConfig())
	talker := join(t, s, "talker")
	epoch := epochOf(t, s, "lobby")
	if err := proto.CheckEpoch(epoch); err != nil || len(epoch) != 6 {
		t.Fatalf("epoch %q: %v", epoch, err)
	}
	for k := range 3 {
		talker.send(fmt.Sprint("msg ", k)) // events 2 to 4
	}
	talker.sync("sent")

	// Text mode: the welcome gives EPOCH-SEQ, and /since takes it back.
	late := dial(t, s)
	late.name = "late"
	late.send(`{"name":"late","replay":0}`)
	if l := late.line(); l != fmt.Sprintf("--- you are late in lobby with 1 other (last event %s-4); /help lists the commands", epoch) {
		t.Errorf("welcome %q", l)
	}
	late.sync("joined")
	late.send(fmt.Sprintf("/since %s-2", epoch))
	got := late.upTo("the replay", func(l string) bool { return l == "--- end of earlier events" })
	// Event 5 is late's own join, which text mode leaves out.
	want := []string{"--- earlier in lobby, events 3 to 5:", "talker: msg 1", "talker: msg 2", "--- end of earlier events"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/since %s-2 (-want +got):\n%s", epoch, diff)
	}
	late.send("/since 5")
	if l := late.line(); l != fmt.Sprintf("--- nothing in lobby after %s-5", epoch) {
		t.Errorf("/since 5: %q", l)
	}
	late.send("/since zzzzzz-3")
	got = late.upTo("the replay", func(l string) bool { return l == "--- end of earlier events" })
	if got[0] != "--- the relay restarted (or lobby was made anew) since resume point zzzzzz-3: replaying all lobby keeps" ||
		got[1] != "--- earlier in lobby, events 1 to 5:" || len(got) != 7 {
		t.Errorf("/since of another epoch:\n%s", strings.Join(got, "\n"))
	}
	late.send("/since 18446744073709551615")
	if l := late.line(); l != fmt.Sprintf("--- resume point 18446744073709551615 is past lobby's last event %s-5: the relay restarted or the room is new; replaying all it keeps", epoch) {
		t.Errorf("/since of the largest number: %q", l)
	}

	// JSON mode: the welcome carries room and epoch; the hello resumes by both.
	for _, tc := range []struct {
		hello string
		first string // the first message replayed
		stale bool
	}{
		{fmt.Sprintf(`{"name":"p1","mode":"json","epoch":%q,"since":3}`, epoch), "msg 2", false},
		{`{"name":"p2","mode":"json","epoch":"zzzzzz","since":3}`, "msg 0", true},
		{`{"name":"p3","mode":"json","since":3}`, "msg 2", false},
	} {
		p := join(t, s, tc.hello)
		lines := p.upTo("the first message", isMsg)
		e := jsonEvent(t, lines[len(lines)-1])
		if e.Text != tc.first {
			t.Errorf("%s: first message %q, want %q", tc.hello, e.Text, tc.first)
		}
		restarted := strings.Contains(strings.Join(lines, "\n"), "the relay restarted")
		if restarted != tc.stale {
			t.Errorf("%s: restart notice %v, want %v:\n%s", tc.hello, restarted, tc.stale, strings.Join(lines, "\n"))
		}
	}
	c := dial(t, s)
	c.send(`{"name":"p4","mode":"json","replay":0}`)
	e := jsonEvent(t, c.line())
	if e.Kind != proto.KindNotice || e.Room != "lobby" || e.Epoch != epoch || !strings.Contains(e.Text, "(last event "+epoch+"-") {
		t.Errorf("JSON welcome %+v", e)
	}
}

// TestRoomAdd: where a cursor starts for each kind of resume point.
func TestRoomAdd(t *testing.T) {
	s := New(testConfig(), t.Logf)
	r := newRoom("lobby", 16)
	for k := range 20 {
		r.post(&proto.Event{Kind: proto.KindMsg, From: "a", Text: fmt.Sprint(k)}, 0, 1000)
	}
	if r2 := newRoom("lobby", 16); r2.epoch == r.epoch {
		t.Errorf("two rooms drew the same epoch %q", r.epoch) // once in 2^30 runs
	}
	for _, tc := range []struct {
		since *proto.Point
		want  entry
	}{
		// bytes: the replay's text lines, "a: 5\n" to "a: 19\n". The ring
		// holds 5 to 20, and the member's own join (posted after add)
		// pushes out 5: a replay from the oldest starts at 6.
		{nil, entry{next: 19, head: 21, bytes: 12}},
		{&proto.Point{Seq: 10}, entry{next: 11, head: 21, bytes: 60}},
		{&proto.Point{Epoch: r.epoch, Seq: 20}, entry{next: 21, head: 21}},
		{&proto.Point{Epoch: r.epoch, Seq: 1}, entry{next: 6, head: 21, missed: 4, bytes: 85}},
		{&proto.Point{Seq: 0}, entry{next: 6, head: 21, missed: 5, bytes: 85}},
		{&proto.Point{Seq: 21}, entry{next: 6, head: 21, ahead: true, bytes: 85}},
		{&proto.Point{Epoch: r.epoch, Seq: 1<<64 - 1}, entry{next: 6, head: 21, ahead: true, bytes: 85}},
		{&proto.Point{Epoch: "other", Seq: 10}, entry{next: 6, head: 21, stale: true, bytes: 85}},
	} {
		m := s.newMember(nil, "test", newTestDriver())
		m.mu.Lock()
		got := r.add(m, tc.since, 2)
		m.mu.Unlock()
		r.remove(m)
		if got != tc.want {
			t.Errorf("since %+v: %+v, want %+v", tc.since, got, tc.want)
		}
	}
}

// TestPart: /join leaves with a reason, /part goes back to the default
// room (and does nothing there), /quit and /exit disconnect.
func TestPart(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	prog := join(t, s, `{"name":"prog","mode":"json","replay":0}`)
	bob := join(t, s, "bob")
	alice.until("bob's join", func(l string) bool { return l == "--- bob joined lobby" })
	prog.until("bob's join", func(l string) bool {
		return strings.Contains(l, `"type":"join"`) && strings.Contains(l, `"from":"bob"`)
	})

	bob.send("/join kitchen")
	bob.until("the kitchen welcome", func(l string) bool { return strings.HasPrefix(l, "--- you are bob in kitchen") })
	if l := alice.line(); l != "--- bob left lobby (joined kitchen)" {
		t.Errorf("alice saw %q", l)
	}
	if e := jsonEvent(t, prog.line()); e.Kind != proto.KindPart || e.From != "bob" || e.Text != "joined kitchen" {
		t.Errorf("prog saw %+v", e)
	}

	alice.send("/join kitchen")
	alice.until("the kitchen welcome", func(l string) bool { return strings.HasPrefix(l, "--- you are alice in kitchen") })
	bob.until("alice's join", func(l string) bool { return l == "--- alice joined kitchen" })
	bob.send("/part lobby")
	if l := bob.line(); l != "!!! you are in kitchen, not in lobby" {
		t.Errorf("/part of another room: %q", l)
	}
	bob.send("/part")
	if l := bob.line(); !strings.HasPrefix(l, "--- you are bob in lobby with 1 other") {
		t.Errorf("/part: %q", l)
	}
	if l := alice.until("bob's part", func(l string) bool { return strings.Contains(l, "bob left") }); l != "--- bob left kitchen (joined lobby)" {
		t.Errorf("alice saw %q", l)
	}
	bob.sync("in the lobby")
	bob.send("/part")
	if l := bob.line(); l != "--- lobby is the default room: /part leaves other rooms for it; /quit disconnects" {
		t.Errorf("/part in the default room: %q", l)
	}
	if got := bob.sync("still here"); len(got) != 1 {
		t.Errorf("/part in the default room did more: %q", got)
	}

	for _, cmd := range []string{"/quit", "/exit"} {
		c := join(t, s, "leaver")
		c.send(cmd)
		c.until("bye", func(l string) bool { return l == "--- bye" })
		if _, err := c.read(10 * time.Second); !errors.Is(err, io.EOF) {
			t.Errorf("%s: read %v, want EOF", cmd, err)
		}
		waitFor(t, 5*time.Second, "the name to be free", func() bool { return s.lookup("leaver") == nil })
	}
}

// TestLineCommands: /join with a spaced room name, /since without a second
// welcome, and /msg to oneself in JSON mode.
func TestLineCommands(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	alice.send("/join bad room")
	if l := alice.line(); l != `!!! cannot join bad: it has no key, and room names have no spaces (/join ROOM [KEY] [SINCE])` {
		t.Errorf("/join bad room: %q", l)
	}
	alice.send("/join kitchen", "one", "two")
	alice.until("the kitchen welcome", func(l string) bool { return strings.HasPrefix(l, "--- you are alice in kitchen") })
	alice.sync("posted")
	alice.send("/since 0")
	got := alice.upTo("the end of the replay", func(l string) bool { return l == "--- end of earlier events" })
	if want := []string{"--- earlier in kitchen, events 1 to 3:", "--- end of earlier events"}; !cmp.Equal(want, got) {
		t.Errorf("/since 0 (its own events left out) got %q, want %q", got, want)
	}

	prog := join(t, s, `{"name":"prog","mode":"json","replay":0}`)
	prog.send("/msg PROG note to self", "/msg alice hi")
	var mine []string
	for _, l := range prog.sync("sent") {
		if e := jsonEvent(t, l); e.Kind == proto.KindPrivate {
			mine = append(mine, e.To+": "+e.Text)
		}
	}
	if want := []string{"prog: note to self", "alice: hi"}; !cmp.Equal(want, mine) {
		t.Errorf("prog's private events %q, want %q", mine, want)
	}
	if l := alice.until("the private message", func(l string) bool { return strings.HasPrefix(l, "[private]") }); l != "[private] prog: hi" {
		t.Errorf("alice got %q", l)
	}
}

// TestTimeStamps: /time on puts the local [HH:MM] of each event before
// the lines that carry a time, replayed ones too; /time off ends it.
func TestTimeStamps(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	bob.sync("joined")
	if l := bob.send1("/time"); l != "--- time stamps off" {
		t.Errorf("/time: %q", l)
	}
	zone, _ := time.Now().Zone()
	if l := bob.send1("/time ON"); l != "--- time stamps on: [HH:MM] before messages, in the relay's time zone ("+zone+")" {
		t.Errorf("/time on: %q", l)
	}
	before := time.Now()
	alice.send("hi", "/me waves", "/msg bob psst")
	got := bob.messages(3)
	bob.send("/since 0")
	got = append(got, bob.upTo("the replay", func(l string) bool { return l == "--- end of earlier events" })...)
	after := time.Now()
	stamps := map[string]bool{before.Format("[15:04] "): true, after.Format("[15:04] "): true}
	want := []string{"alice: hi", "* alice waves", "[private] alice: psst",
		"--- earlier in lobby, events 1 to 4:", "--- alice joined lobby", "alice: hi", "* alice waves", "--- end of earlier events"}
	for i, l := range got {
		if strings.HasPrefix(want[i], "--- ") && want[i] != "--- alice joined lobby" {
			if l != want[i] {
				t.Errorf("line %d: %q, want %q unstamped", i, l, want[i])
			}
			continue
		}
		if len(l) < 8 || !stamps[l[:8]] || l[8:] != want[i] {
			t.Errorf("line %d: %q, want %q after a stamp of %v", i, l, want[i], slices.Sorted(maps.Keys(stamps)))
		}
	}
	bob.send1("/time off")
	alice.send("plain")
	if l := bob.messages(1)[0]; l != "alice: plain" {
		t.Errorf("after /time off: %q", l)
	}

	prog := join(t, s, `{"name":"prog","mode":"json","replay":0}`)
	prog.sync("joined")
	if l := prog.send1("/time on"); l != `{"type":"error","text":"in JSON mode every event carries its \"time\"; /time is for text mode"}` {
		t.Errorf("/time in JSON mode: %s", l)
	}
}

// TestStamped: an event's stamp is found once, shared by the events of
// its minute, and nil for an event without a time.
func TestStamped(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 3, 10, 54, 0, time.UTC)
	a := newEvent(&proto.Event{Kind: proto.KindMsg, Time: t0}, 0)
	b := newEvent(&proto.Event{Kind: proto.KindMsg, Time: t0.Add(5 * time.Second)}, 0)
	c := newEvent(&proto.Event{Kind: proto.KindMsg, Time: t0.Add(time.Minute)}, 0)
	if want := t0.Local().Format("[15:04] "); string(a.stamped()) != want {
		t.Errorf("stamp %q, want %q", a.stamped(), want)
	}
	if &a.stamped()[0] != &b.stamped()[0] {
		t.Error("two events of one minute do not share their stamp")
	}
	if want := t0.Add(time.Minute).Local().Format("[15:04] "); string(c.stamped()) != want {
		t.Errorf("next minute's stamp %q, want %q", c.stamped(), want)
	}
	if &a.stamped()[0] == &c.stamped()[0] {
		t.Error("the stamp of another minute is shared")
	}
	if st := newEvent(&proto.Event{Kind: proto.KindNotice, Text: "x"}, 0).stamped(); st != nil {
		t.Errorf("a notice's stamp %q", st)
	}
}

// TestQuitBeforeName: /quit at the name prompt leaves cleanly, told "bye".
func TestQuitBeforeName(t *testing.T) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			s := startServer(t, testConfig())
			c := d.dial(t, s)
			c.send("/QUIT")
			if l := c.line(); l != "--- bye" {
				t.Errorf("told %q", l)
			}
			if _, err := c.read(5 * time.Second); !errors.Is(err, io.EOF) {
				t.Errorf("after bye: %v, want EOF", err)
			}
		})
	}
}

// TestTakeWelcomeBeforeGap: a member still replaying whose cursor the
// room passed (its own join dropped the oldest event) gets what was
// queued for it before the cursor (its welcome, its replay's header)
// first, then the notice of the gap, then the events from the oldest on;
// when the batch cannot hold the notice too, it comes in the next one.
func TestTakeWelcomeBeforeGap(t *testing.T) {
	for _, limit := range []int{64, 3} {
		r := newRoom("lobby", 4)
		for k := 1; k <= 4; k++ {
			r.post(&proto.Event{Kind: proto.KindMsg, From: "a", Text: fmt.Sprint(k)}, 0, 1000)
		}
		m := &member{srv: New(testConfig(), t.Logf), id: 7, name: "n", room: r}
		m.next.Store(1)
		m.base.Store(6)
		m.priv = []queued{{ev: lineEvent([]byte("welcome\n")), at: 0}, {ev: lineEvent([]byte("header\n")), at: 0}}
		r.post(&proto.Event{Kind: proto.KindJoin, From: "n"}, 0, 1000) // drops event 1
		var got []string
		for range 4 {
			batch, ok := m.take(r, nil, limit)
			if !ok {
				t.Fatalf("limit %d: cut", limit)
			}
			for _, ev := range batch {
				got = append(got, strings.TrimSpace(string(ev.text)))
			}
		}
		want := []string{"welcome", "header", "--- 1 events of lobby fell out of the history window: 1 to 1 are lost; replaying from 2",
			"a: 2", "a: 3", "a: 4", "--- n joined lobby"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("limit %d (-want +got):\n%s", limit, diff)
		}
	}
}
