//go:build !minimal

package relay

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
)

// countConn counts the bytes read from its connection.
type countConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countedDial is dial, counting the bytes and lines read.
func countedDial(t *testing.T, s *Server) (*tconn, *countConn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr("line").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cc := &countConn{Conn: c}
	return &tconn{t: t, c: cc, lr: proto.NewLineReader(cc, 1<<16)}, cc
}

// lines counts what a test client reads, a line at a time.
type lines struct{ n int }

func (l *lines) until(tc *tconn, what string, ok func(string) bool) {
	tc.t.Helper()
	tc.until(what, func(s string) bool { l.n++; return ok(s) })
}

// TestStatsMatchTraffic: known traffic over the line door (text and
// JSON), the legacy door, the UDP door and the HTTP door's POST
// /api/post, and every counter matches it exactly.
func TestStatsMatchTraffic(t *testing.T) {
	cfg := httpConfig()
	cfg.Limits.MaxClientsPerIP = 3
	s := startServer(t, cfg)
	var bytesIn int64
	sent := func(tc *tconn, line string) { tc.send(line); bytesIn += int64(len(line)) + 1 }
	has := func(sub string) func(string) bool { return func(l string) bool { return strings.Contains(l, sub) } }

	alice, aliceN := countedDial(t, s)
	var aliceL, bobL lines
	aliceL.until(alice, "greeting", has("welcome"))
	sent(alice, "alice")
	aliceL.until(alice, "welcome", has("you are alice"))
	bob, bobN := countedDial(t, s)
	bobL.until(bob, "greeting", has("welcome"))
	sent(bob, `{"name":"bob","mode":"json"}`)
	bobL.until(bob, "welcome", has("you are bob"))
	aliceL.until(alice, "bob's join", has("bob"))

	// carol, a legacy member, counting the bytes delivered to her.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var carolMu sync.Mutex
	var carolGot []string
	var carolBytes int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			carolMu.Lock()
			carolGot = append(carolGot, string(b))
			carolBytes += int64(len(b))
			carolMu.Unlock()
		}
	}()
	carolHas := func(n int) {
		t.Helper()
		waitFor(t, 10*time.Second, fmt.Sprintf("carol to get %d messages", n), func() bool {
			carolMu.Lock()
			defer carolMu.Unlock()
			return len(carolGot) >= n
		})
	}
	legacy := func(msg string) {
		t.Helper()
		c := legacyConn(t, s)
		c.Write([]byte(msg))
		c.(*net.TCPConn).CloseWrite()
		bytesIn += int64(len(msg))
	}
	legacy(fmt.Sprintf("connect_request|carol|127.0.0.1|%d", ln.Addr().(*net.TCPAddr).Port))
	aliceL.until(alice, "carol's join", has("carol"))
	bobL.until(bob, "carol's join", has("carol"))

	for _, m := range []string{"one", "two", "three"} {
		sent(alice, m)
	}
	bobL.until(bob, "three", has(`"text":"three"`))
	carolHas(3)
	sent(bob, "from bob")
	aliceL.until(alice, "bob's message", has("bob: from bob"))
	bobL.until(bob, "its own message", has(`"text":"from bob"`))
	carolHas(4)
	sent(alice, "/msg bob psst")
	bobL.until(bob, "the private message", has("psst"))
	aliceL.until(alice, "sent privately", has("sent privately"))

	udp, err := net.Dial("udp", s.Addr("udp").String())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for _, d := range []string{"hello", "from:nas|hi there"} {
		udp.Write([]byte(d))
		bytesIn += int64(len(d))
	}
	aliceL.until(alice, "the datagram", has("nas@udp: hi there"))
	bobL.until(bob, "the datagram", has(`"from":"nas@udp"`))
	carolHas(5)
	legacy("from:carol|hi all")
	aliceL.until(alice, "carol's post", has("carol: hi all"))
	bobL.until(bob, "carol's post", has("hi all"))

	legacyGone := func() {
		t.Helper()
		waitFor(t, 10*time.Second, "the legacy connections to end", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.conns) == 2
		})
	}
	legacyGone() // the address's third slot: the HTTP post's connection takes it
	code, body := newBrowser(t, s).postForm("/api/post", url.Values{"name": {"nas"}, "text": {"done"}})
	if code != 204 {
		t.Fatalf("POST /api/post: %d %s", code, body)
	}
	bytesIn += int64(len("done")) + 1
	aliceL.until(alice, "the HTTP post", has("nas@http: done"))
	bobL.until(bob, "the HTTP post", has(`"from":"nas@http"`))
	carolHas(6)
	sent(alice, "/since 0")
	aliceL.until(alice, "the replay", has("end of earlier events"))

	// A third connection of the address takes its last slot; a fourth is
	// refused.
	legacyGone() // and the HTTP post's
	third, thirdN := countedDial(t, s)
	var thirdL lines
	thirdL.until(third, "greeting", has("welcome"))
	c4, err := net.Dial("tcp", s.Addr("line").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	c4.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(c4); !strings.Contains(string(b), "too many connections") {
		t.Fatalf("fourth connection read %q", b)
	}

	carolMu.Lock()
	carolOut := carolBytes
	carolMu.Unlock()
	// The relay counts a legacy delivery once its connection is closed,
	// which may be after carol read to its end.
	waitFor(t, 10*time.Second, "the relay to count carol's 6 deliveries", func() bool { return s.Stats().LegacySent == 6 })
	got := s.Stats()
	want := Stats{
		Accepted: 7, // alice, bob, two legacy messages, the HTTP post, the third and the fourth
		Refused:  1, Refusals: map[string]int64{"address full": 1},
		Posted: 7, MessagesIn: 8, // 3 alice, 1 bob, 1 UDP, 1 carol, 1 HTTP; and the private message
		// carol was handed her welcome and 6 messages.
		Delivered: int64(aliceL.n+bobL.n+thirdL.n) + 7,
		// alice: bob's, the UDP and HTTP posts, carol's, live and again
		// in the replay; bob: alice's 3, his own, the private one, the
		// UDP and HTTP posts, carol's; carol: 6.
		MessagesOut: 8 + 8 + 6,
		BytesIn:     bytesIn,
		BytesOut:    aliceN.n.Load() + bobN.n.Load() + thirdN.n.Load() + carolOut,
		// bob's welcome replays alice's join; alice's /since 0 the 3 joins
		// and 7 messages.
		Replays: 2, Replayed: 11,
		LegacySent: 6, UDPDropped: 1, Disconnects: map[string]int64{},
		Doors: map[string]int64{"line": 2, "legacy": 1}, Rooms: map[string]int64{"lobby": 3},
		Goroutines: got.Goroutines, // the process's: not the traffic's
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	// Leaving is counted by reason; the goodbye is bytes out.
	aliceBefore, bobBefore := aliceN.n.Load(), bobN.n.Load()
	alice.send("/quit")
	alice.until("the goodbye", has("bye"))
	bob.until("alice's leaving", has(`"from":"alice"`))
	if d, read := s.Stats().BytesOut-got.BytesOut, aliceN.n.Load()-aliceBefore+bobN.n.Load()-bobBefore; d != read {
		t.Errorf("bytes out grew by %d as alice left; alice and bob read %d", d, read)
	}
	bob.c.(*countConn).Conn.(*net.TCPConn).CloseWrite()
	waitFor(t, 10*time.Second, "both to leave", func() bool { return len(s.Stats().Disconnects) == 2 })
	if diff := cmp.Diff(map[string]int64{"quit": 1, "closed": 1}, s.Stats().Disconnects); diff != "" {
		t.Errorf("disconnects (-want +got):\n%s", diff)
	}
}

// TestStatsCommand: /stats on the line door answers the counters as one
// line of JSON, before a name (as `roomrelay stats` asks) and after,
// from relay.stats_allow only.
func TestStatsCommand(t *testing.T) {
	s := startServer(t, testConfig())
	tc := dial(t, s)
	tc.send("/stats")
	var st Stats
	if err := json.Unmarshal([]byte(tc.line()), &st); err != nil {
		t.Fatalf("/stats before a name: %v", err)
	}
	if st.Accepted != 1 {
		t.Errorf("accepted %d, want 1", st.Accepted)
	}
	tc.enter("alice")
	tc.send("/stats")
	if err := json.Unmarshal([]byte(tc.line()), &st); err != nil || st.Doors["line"] != 1 {
		t.Fatalf("/stats after a name: %+v, %v", st, err)
	}

	cfg := testConfig()
	cfg.StatsAllow = []string{"10.0.0.0/8"}
	s2 := startServer(t, cfg)
	tc2 := dial(t, s2)
	if l := tc2.send1("/stats"); !strings.Contains(l, "relay.stats_allow only") {
		t.Errorf("/stats from outside relay.stats_allow before a name: %q", l)
	}
	tc2.enter("bob")
	if l := tc2.send1("/stats"); !strings.Contains(l, "relay.stats_allow only") {
		t.Errorf("/stats from outside relay.stats_allow: %q", l)
	}
}

// TestStatsInterval: every relay.stats_interval the log has a one-line
// summary of the counters; "0s" logs none.
func TestStatsInterval(t *testing.T) {
	logs := testkit.NewLog(t)
	cfg := testConfig()
	cfg.StatsInterval = config.Duration(50 * time.Millisecond)
	testkit.NoLeaks(t)
	s := New(cfg, logs.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNow(t, s)
	join(t, s, "alice").send("hi")
	waitFor(t, 10*time.Second, "a summary with the message", func() bool {
		return logs.Has("info: stats: 1 members in 1 rooms; messages 1 in")
	})
	cfg.StatsInterval = 0
	s.Reload(cfg)
	n := strings.Count(logs.String(), "info: stats:")
	join(t, s, "bob").sync("later")
	if m := strings.Count(logs.String(), "info: stats:"); m > n+1 { // one may have been under way
		t.Errorf("%d summaries logged after stats_interval 0s", m-n)
	}
}

// TestStatsStore: with relay.store.path, every event posted is a store
// write (with sync "always", written before anyone gets it); an unwritable
// store is one store error, and writes nothing more.
func TestStatsStore(t *testing.T) {
	cfg := testConfig()
	cfg.Store.Path = t.TempDir()
	cfg.Store.Sync = "always"
	s := startServer(t, cfg)
	alice := join(t, s, "alice")
	alice.send("one", "two", "three")
	alice.sync("stored")
	// alice's join and her 3 messages.
	if st := s.Stats(); st.StoreWrites != 4 || st.StoreErrors != 0 {
		t.Errorf("store writes %d, errors %d; want 4, 0", st.StoreWrites, st.StoreErrors)
	}

	cfg.Store.Path = filepath.Join(t.TempDir(), "file")
	os.WriteFile(cfg.Store.Path, nil, 0o644) // a file where the directory should be
	s2 := startServer(t, cfg)
	join(t, s2, "bob").send("lost on restart")
	if st := s2.Stats(); st.StoreWrites != 0 || st.StoreErrors != 1 || st.StoreFailed == "" {
		t.Errorf("unwritable store: writes %d, errors %d, failed %q", st.StoreWrites, st.StoreErrors, st.StoreFailed)
	}
}

// TestAdmitRefusals: each refusal admit gives carries the kind it is
// counted by, whatever its text says.
func TestAdmitRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxClients, cfg.Limits.MaxClientsPerIP = 2, 1
	s := startServer(t, cfg)
	pipe := func() net.Conn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return a
	}
	c := pipe() // net.Pipe's connections share one (invalid) address
	if r := s.admit(c); r != (refusal{}) {
		t.Fatalf("the first connection refused: %+v", r)
	}
	defer s.release(c)
	check := func(what string, r refusal, kind refusalKind, prefix string) {
		t.Helper()
		if r.kind != kind || !strings.HasPrefix(r.why, prefix) {
			t.Errorf("%s: %+v, want kind %s and %q", what, r, refusalText[kind], prefix)
		}
	}
	check("a second from its address", s.admit(pipe()), refusedAddress, "too many connections from ")
	cfg.Limits.MaxClients = 1
	s.Reload(cfg)
	check("past max_clients", s.admit(pipe()), refusedFull, "relay full (1 clients)")
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	check("closing", s.admit(pipe()), refusedShutdown, "relay shutting down")
	s.mu.Lock()
	s.closing = false
	s.mu.Unlock()
}
