//go:build !minimal

package relay

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"roomrelay/proto"

	"roomrelay/relay/config"
)

// TestLegacyBudget: a legacy name posting over its budget waits its turn
// rather than being dropped, and its messages come in order (15 sent at
// once at a rate of 20 a second with a burst of 5: all 15 delivered, none
// dropped); a message whose turn would come later than timeouts.message
// is dropped and counted (6 sent at once at a rate of 1 in 10 s with a
// burst of 2: 2 delivered, 4 dropped). Its registration is held to its
// address's budget, not its name's.
func TestLegacyBudget(t *testing.T) {
	for _, tc := range []struct {
		name             string
		rate             float64
		burst, n         int
		message          time.Duration
		delivered, drops int
	}{
		{"paced", 20, 5, 15, 5 * time.Second, 15, 0},
		{"dropped", 0.1, 2, 6, time.Second, 2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.Rate, cfg.Limits.Burst = tc.rate, tc.burst // posts are held to their name's budget, the registration to its address's
			cfg.Timeouts.Message = config.Duration(tc.message)
			s := startServer(t, cfg)
			watch := join(t, s, "watch")
			carol := newTutorialClient(t, s, "carol")
			watch.until("carol's join", func(l string) bool { return l == "--- carol joined lobby" })
			var want []string
			for i := range tc.n {
				carol.send(fmt.Sprintf("from:carol|%d", i))
				if i < tc.delivered {
					want = append(want, fmt.Sprintf("carol: %d", i))
				}
			}
			waitFor(t, 10*time.Second, "every message handled", func() bool {
				st := s.Stats()
				return st.Posted+st.LegacyDropped == int64(tc.n)
			})
			if diff := cmp.Diff(want, watch.messages(tc.delivered)); diff != "" {
				t.Errorf("watch got (-want +got):\n%s", diff)
			}
			if st := s.Stats(); st.LegacyDropped != int64(tc.drops) || st.Posted != int64(tc.delivered) {
				t.Errorf("%d posted, %d dropped; want %d, %d", st.Posted, st.LegacyDropped, tc.delivered, tc.drops)
			}
		})
	}
}

// trickle writes first, then a byte every 20 ms, never ending a line or
// a request, until the relay closes c or 10 s have passed; it reports
// whether the relay closed it.
func trickle(c net.Conn, first string) bool {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(first))
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // until the relay closes it (or the deadline)
	}()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		select {
		case <-closed:
			// Closed by the relay, unless it was the read deadline.
			return c.SetReadDeadline(time.Time{}) == nil && time.Now().Before(end)
		case <-time.After(20 * time.Millisecond): // the trickle's pace
		}
		if _, err := c.Write([]byte("a")); err != nil {
			<-closed
			return true
		}
	}
	return false
}

// TestSlowloris: connections that send their greeting, request or
// message a byte at a time and never finish are cut at the handshake
// deadline (timeouts.handshake; timeouts.message at the legacy door), on
// every door, while a member chats meanwhile: 10 per door, 40 in all,
// every one closed by the relay, and the 10 legacy ones counted as
// dropped.
func TestSlowloris(t *testing.T) {
	cfg := httpConfig()
	cfg.Listen.IRC = "127.0.0.1:0"
	cfg.Timeouts.Handshake = config.Duration(300 * time.Millisecond)
	cfg.Timeouts.Message = config.Duration(300 * time.Millisecond)
	cfg.Limits.MaxClientsPerIP = 100
	s := startServer(t, cfg)
	alice := join(t, s, "alice")
	doors := map[string]string{"line": "alic", "irc": "NICK bo", "http": "GET /api/stats HTTP/1.1\r\nX-Slow: ", "legacy": "from:alice|"}
	const per = 10
	var wg sync.WaitGroup
	var closed atomic.Int64
	for door, first := range doors {
		for range per {
			c, err := net.DialTimeout("tcp", s.Addr(door).String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if trickle(c, first) {
					closed.Add(1)
				}
			}()
		}
	}
	alice.send("still here")
	alice.sync("meanwhile")
	wg.Wait()
	if n := closed.Load(); n != int64(per*len(doors)) {
		t.Errorf("%d of %d trickling connections closed by the relay", n, per*len(doors))
	}
	waitFor(t, 10*time.Second, "only alice's connection left", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	})
	if st := s.Stats(); st.LegacyDropped != per || len(st.Disconnects) != 0 {
		t.Errorf("legacy dropped %d (want %d), disconnects %v (want none: alice stays)", st.LegacyDropped, per, st.Disconnects)
	}
}

// TestHalfClosed: a member that closes its half of the connection is seen
// off (counted "closed") and its connection closed; so is one still in
// its handshake, which is not counted as a member.
func TestHalfClosed(t *testing.T) {
	s := startServer(t, testConfig())
	watch := join(t, s, "watch")
	half := join(t, s, "half")
	shy := dial(t, s)
	for _, tc := range []*tconn{half, shy} {
		tc.c.(*net.TCPConn).CloseWrite()
		if _, err := io.ReadAll(tc.c); err != nil {
			t.Errorf("reading to the end: %v", err)
		}
	}
	watch.until("half leaving", func(l string) bool { return l == "--- half left lobby (closed)" })
	waitFor(t, 10*time.Second, "only watch's connection left", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	})
	if d := s.Stats().Disconnects; d["closed"] != 1 || len(d) != 1 {
		t.Errorf("disconnects %v, want closed: 1", d)
	}
}

// TestConnectionFlood: connections past relay.limits.max_clients, then
// past max_clients_per_ip, are refused with a line saying why, each
// counted by reason (20 of 30, then 5 of 10), and a client is served again
// once the flood is gone.
func TestConnectionFlood(t *testing.T) {
	for _, tc := range []struct {
		name              string
		clients, perIP, n int
		reason            string
	}{
		{"max_clients", 10, 100, 30, "relay full"},
		{"max_clients_per_ip", 100, 5, 10, "address full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Listen.IRC = "127.0.0.1:0"
			cfg.Limits.MaxClients, cfg.Limits.MaxClientsPerIP = tc.clients, tc.perIP
			s := startServer(t, cfg)
			limit := min(tc.clients, tc.perIP)
			var conns []net.Conn
			refused := 0
			for i := range tc.n {
				door := []string{"line", "irc"}[i%2]
				c, err := net.DialTimeout("tcp", s.Addr(door).String(), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				l, err := proto.NewLineReader(c, 4096).ReadLine()
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				if strings.Contains(string(l), "refused") {
					refused++
				}
			}
			if want := tc.n - limit; refused != want {
				t.Errorf("%d refused, want %d", refused, want)
			}
			if diff := cmp.Diff(map[string]int64{tc.reason: int64(tc.n - limit)}, s.Stats().Refusals); diff != "" {
				t.Errorf("refusals (-want +got):\n%s", diff)
			}
			for _, c := range conns {
				c.Close()
			}
			waitFor(t, 10*time.Second, "the flood's connections to end", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return len(s.conns) == 0
			})
			join(t, s, "after")
		})
	}
}

// TestEndlessLine: 8 MB with no end of line is discarded as it comes, the
// sender told once, and the line after it, and the others, unaffected;
// the heap holds none of it (the most it grew, sampled while the line
// came, is logged: it stays within the reader's fixed buffer and the
// garbage collector's slack, far below the 8 MB).
func TestEndlessLine(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	runtime.GC()
	base := heap()
	var peak atomic.Uint64
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	sent := make(chan error, 1)
	go func() {
		alice.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for i := range 128 { // 8 MB
			if _, err := alice.c.Write(chunk); err != nil {
				sent <- err
				return
			}
			if i%16 == 15 {
				if h := heap(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
		_, err := alice.c.Write([]byte("\nafter\n"))
		sent <- err
	}()
	told := alice.until("the error", func(l string) bool { return strings.HasPrefix(l, "!!!") })
	if !strings.Contains(told, "line too long") {
		t.Errorf("alice told %q", told)
	}
	if err := <-sent; err != nil {
		t.Fatalf("alice's write: %v", err)
	}
	if got := bob.messages(1); got[0] != "alice: after" {
		t.Errorf("bob got %q", got)
	}
	if got := alice.sync("end"); len(got) != 1 {
		t.Errorf("alice got %q after the error, want only the pong: one error for one long line", got)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("heap grew by at most %d KB (sampled 8 times) while 8 MB came in one line", grew>>10)
	if grew > 4<<20 {
		t.Errorf("heap grew by %d KB while an 8 MB line came: it is being kept", grew>>10)
	}
}

// TestBadBytesEveryDoor: NUL, escape sequences and invalid UTF-8 sent
// through the line, IRC, legacy and UDP doors reach the others cleaned
// (each control character and bad byte U+FFFD), and nobody is cut.
func TestBadBytesEveryDoor(t *testing.T) {
	cfg := ircConfig()
	s := startServer(t, cfg)
	watch := join(t, s, "watch")
	alice := join(t, s, "alice")
	irc := dialIRC(t, s)
	irc.register("ivan", false)
	carol := newTutorialClient(t, s, "carol")
	watch.until("carol's join", func(l string) bool { return l == "--- carol joined lobby" })
	udp, err := net.Dial("udp", s.Addr("udp").String())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	const bad = "a\x00b\x1b[2Jc\xffd"
	const clean = "a\uFFFDb\uFFFD[2Jc\uFFFDd"
	alice.send(bad)
	watch.until("alice's", func(l string) bool { return strings.HasPrefix(l, "alice: ") })
	irc.send("PRIVMSG #lobby :" + bad)
	carol.send("from:carol|" + bad)
	udp.Write([]byte("from:nas|" + bad))
	var got []string
	for _, l := range watch.messages(3) {
		got = append(got, l)
	}
	want := []string{"ivan: " + clean, "carol: " + clean, "nas@udp: " + clean}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("watch got (-want +got):\n%s", diff)
	}
	if d := s.Stats().Disconnects; len(d) != 0 {
		t.Errorf("disconnects %v", d)
	}
}

// listenNoAccept returns a loopback address whose listener never accepts
// and has no room in its backlog after the first connection: later
// connections' SYNs go unanswered, so dialling them times out.
func listenNoAccept(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// TestLegacyStuckEndpoints: a legacy member whose endpoint accepts and
// never reads, and one whose endpoint never accepts, while 50 messages
// flow: a line member and a healthy legacy member get all 50, in order;
// the one that never accepts is dropped as unreachable after
// limits.legacy_failures deliveries time out.
func TestLegacyStuckEndpoints(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Dial = config.Duration(300 * time.Millisecond)
	cfg.Timeouts.Retry = 0
	s := startServer(t, cfg)
	watch := join(t, s, "watch")
	alice := join(t, s, "alice")
	carol := newTutorialClient(t, s, "carol")
	watch.until("carol's join", func(l string) bool { return l == "--- carol joined lobby" })

	deaf, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	go func() {
		var conns []net.Conn // held open, never read
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := deaf.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	register := func(name string, port int) {
		c := legacyConn(t, s)
		fmt.Fprintf(c, "connect_request|%s|127.0.0.1|%d", name, port)
		c.(*net.TCPConn).CloseWrite()
		watch.until(name+"'s join", func(l string) bool { return l == "--- "+name+" joined lobby" })
	}
	register("deaf", deaf.Addr().(*net.TCPAddr).Port)
	register("stuck", listenNoAccept(t))

	const n = 50
	var want []string
	for i := range n {
		alice.send(fmt.Sprint("message ", i))
		want = append(want, fmt.Sprint("alice: message ", i))
	}
	if diff := cmp.Diff(want, watch.messages(n)); diff != "" {
		t.Errorf("watch got (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, carol.waitFor(n)); diff != "" {
		t.Errorf("carol got (-want +got):\n%s", diff)
	}
	watch.until("stuck dropped", func(l string) bool { return l == "--- stuck left lobby (unreachable)" })
	st := s.Stats()
	if st.Disconnects["unreachable"] != 1 || len(st.Disconnects) != 1 {
		t.Errorf("disconnects %v, want unreachable: 1 (stuck)", st.Disconnects)
	}
	if st.LegacyFailed != int64(cfg.Limits.LegacyFailures) {
		t.Errorf("%d legacy deliveries failed, want %d (stuck's, before it was dropped)", st.LegacyFailed, cfg.Limits.LegacyFailures)
	}
	t.Logf("deliveries: %d sent (carol %d, deaf the rest), %d failed", st.LegacySent, n, st.LegacyFailed)
}
