package relay

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// TestPaste: a paste of 500 lines in one write, past the member's burst,
// arrives whole and in order at the member's rate: the relay paces the
// paster (reads nothing more from it until its budget refills) instead
// of refusing or cutting it.
func TestPaste(t *testing.T) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.Rate = 1000 // to keep the test short; the default is 5
			cfg.Limits.Burst = 50
			s := startServer(t, cfg)
			paster := d.dial(t, s).enter("paster")
			calm := d.dial(t, s).enter("calm")
			const n = 500
			go paster.paste("line", n)
			got := calm.messages(n)
			for k, l := range got {
				if want := fmt.Sprintf("paster: line %d", k); l != want {
					t.Fatalf("message %d is %q, want %q", k, l, want)
				}
			}
			paster.sync("done") // still there, and told nothing but its pong
			st := s.Stats()
			if len(st.Disconnects) != 0 {
				t.Errorf("disconnects %v, want none", st.Disconnects)
			}
			// At least one pause per refill past the burst; each pause waits
			// for one more line's budget at most.
			if st.Paced == 0 {
				t.Error("the paster was never paced")
			}
			t.Logf("%d lines past a burst of %d: paced %d times", n, cfg.Limits.Burst, st.Paced)
		})
	}
}

// paste writes "what 0" to "what n-1" to tc in one write, within 30
// seconds; a test runs it in a goroutine of its own.
func (tc *tconn) paste(what string, n int) {
	var b strings.Builder
	for k := range n {
		fmt.Fprintf(&b, "%s %d\n", what, k)
	}
	tc.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(tc.c, b.String())
}

// TestFlooder: with the shipped limits (but a short timeouts.flood), a
// member that writes endlessly without reading gets its burst through,
// then its rate, and is disconnected as flooding once it has held more
// than limits.flood_bytes unread for timeouts.flood; the others keep
// chatting.
func TestFlooder(t *testing.T) {
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0"}
	cfg.Timeouts.Flood = config.Duration(time.Second)
	s := startServer(t, cfg)
	flooder := join(t, s, "flooder")
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	start := time.Now()
	go flooder.paste("flood", 20000) // 230 KB: more than the kernel buffers take
	waitFor(t, 20*time.Second, "the flooder to be dropped", func() bool { return s.Stats().Disconnects["flooding"] == 1 })
	took := time.Since(start)
	got := 0
	part := bob.until("the flooder's part", func(l string) bool {
		if strings.HasPrefix(l, "flooder: ") {
			if want := fmt.Sprintf("flooder: flood %d", got); l != want {
				t.Fatalf("bob got %q, want %q", l, want)
			}
			got++
		}
		return strings.HasPrefix(l, "--- flooder left")
	})
	if part != "--- flooder left lobby (flooding)" {
		t.Errorf("part = %q", part)
	}
	// Its burst at once, then its rate while it was paced.
	if most := cfg.Limits.Burst + int(cfg.Limits.Rate*took.Seconds()) + 1; got < cfg.Limits.Burst || got > most {
		t.Errorf("bob got %d of the flood in %v, want from the burst of %d to %d", got, took, cfg.Limits.Burst, most)
	}
	t.Logf("flooder cut after %v, %d lines in", took, got)
	alice.send("still here")
	if l := bob.messages(1)[0]; l != "alice: still here" {
		t.Errorf("bob got %q", l)
	}
}

// TestBurstCutsNobody: ten members each paste 45 lines at once (within
// their burst), 450 events in all, more than limits.queue, while 100
// others read: everyone who reads gets all 450, in each paster's order,
// and nobody is cut. A member is too slow only when it does not take its
// data, never because its writer has not had its turn yet.
func TestBurstCutsNobody(t *testing.T) {
	const pasters, lines, readers = 10, 45, 100
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0"}
	cfg.Limits.MaxClientsPerIP = pasters + readers
	if pasters*lines <= cfg.Limits.Queue {
		t.Fatalf("the burst (%d) is to be larger than the queue (%d)", pasters*lines, cfg.Limits.Queue)
	}
	s := startServer(t, cfg)
	var all []*tconn
	for k := range pasters + readers {
		all = append(all, join(t, s, fmt.Sprintf("m%d", k)))
	}
	s.stats.delivered.Store(0)
	// Every member reads until it has every paster's lines but its own.
	var wg sync.WaitGroup
	errs := make(chan error, len(all))
	for k, tc := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := pasters * lines
			if k < pasters {
				want -= lines // its own lines are not echoed in text mode
			}
			next := make([]int, pasters)
			for n := 0; n < want; {
				l, err := tc.read(20 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("%s after %d messages: %v", tc.name, n, err)
					return
				}
				var p, i int
				if _, err := fmt.Sscanf(l, "m%d: paste %d", &p, &i); err != nil {
					continue // a join or a notice
				}
				if p >= pasters || i != next[p] {
					errs <- fmt.Errorf("%s: %q, want line %d of m%d", tc.name, l, next[p], p)
					return
				}
				next[p]++
				n++
			}
		}()
	}
	var b strings.Builder
	for k := range lines {
		fmt.Fprintf(&b, "paste %d\n", k)
	}
	for _, tc := range all[:pasters] {
		go io.WriteString(tc.c, b.String())
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := s.Stats().Disconnects; len(d) != 0 {
		t.Errorf("disconnects %v, want none", d)
	}
	t.Logf("%d pasters × %d lines = %d events at once (queue %d) to %d members: %d events delivered, disconnects %v",
		pasters, lines, pasters*lines, cfg.Limits.Queue, pasters+readers, s.Stats().Delivered, s.Stats().Disconnects)
}

// TestSinceFlood: 2 000 "/since 1" in one write leave the member's queue
// bounded (its private queue holds the one replay's notices, not 2 000
// copies of what it is owed), and what it is written stays in order: each
// replay's header, events in sequence, and the last replay whole.
func TestSinceFlood(t *testing.T) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			cfg := testConfig() // pacing off: the bound holds without it
			cfg.Limits.ReplayBytesPerMinute = 0
			// The private queue and the lag of bob, each time one of its
			// requests is handled.
			var mu sync.Mutex
			var mostPriv, mostLag, handled int
			handleHook = func(m *member, req proto.Request) {
				if m.name != "bob" {
					return
				}
				m.mu.Lock()
				n := len(m.priv)
				m.room.mu.RLock()
				lag := int(m.room.seq + 1 - m.next.Load())
				m.room.mu.RUnlock()
				m.mu.Unlock()
				mu.Lock()
				mostPriv, mostLag = max(mostPriv, n), max(mostLag, lag)
				handled++
				mu.Unlock()
			}
			t.Cleanup(func() { handleHook = nil }) // after the relay has stopped
			s := startServer(t, cfg)
			bob := d.dial(t, s).enter("bob")     // event 1, its own: not written to it
			alice := d.dial(t, s).enter("alice") // event 2
			const events = 100                   // events 3 to 102
			for k := range events {
				alice.send(fmt.Sprint("m", k))
			}
			bob.messages(events)
			mu.Lock()
			handled = 0
			mu.Unlock()
			const n = 2000
			go func() {
				bob.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				io.WriteString(bob.c, strings.Repeat("/since 1\n", n)+"/ping end\n")
			}()
			got := bob.upTo("the pong", func(l string) bool { return l == "--- pong end" })
			mu.Lock()
			defer mu.Unlock()
			if handled != n+1 {
				t.Errorf("%d requests handled, want %d", handled, n+1)
			}
			// The queue never grows past one replay's notices and the
			// events of one history.
			if mostPriv > 4 {
				t.Errorf("bob's private queue reached %d entries, want at most 4", mostPriv)
			}
			if mostLag > cfg.Limits.History {
				t.Errorf("bob's cursor was %d events behind, want at most the history %d", mostLag, cfg.Limits.History)
			}
			t.Logf("%d lines written for %d /since; private queue at most %d, lag at most %d", len(got), n, mostPriv, mostLag)
			checkReplays(t, got, 2, events+2, 3)
		})
	}
}

// checkReplays checks lines written for repeated "/since": each replay
// starts with its header, its events follow in sequence (a later replay
// may cut it short), no event is outside a replay, and the last replay
// is whole, from first to last, then ends. alice's message "mK" is event
// m0+K; any other room event is a join.
func checkReplays(t *testing.T, got []string, first, last, m0 int) {
	t.Helper()
	header := regexp.MustCompile(`^--- earlier in lobby, events (\d+) to (\d+):$`)
	msg := regexp.MustCompile(`^alice: m(\d+)$`)
	from, next, end := -1, -1, -1
	complete := false
	for _, l := range got {
		if h := header.FindStringSubmatch(l); h != nil {
			from, _ = strconv.Atoi(h[1])
			end, _ = strconv.Atoi(h[2])
			next, complete = from, false
			if from != first || end != last {
				t.Fatalf("replay of %d to %d, want %d to %d", from, end, first, last)
			}
			continue
		}
		if m := msg.FindStringSubmatch(l); m != nil {
			k, _ := strconv.Atoi(m[1])
			if seq := k + m0; from < 0 || seq != next {
				t.Fatalf("event %d (%q) out of place, want %d", seq, l, next)
			}
			next++
			continue
		}
		switch {
		case strings.HasSuffix(l, " joined lobby"):
			next++
		case l == "--- end of earlier events":
			if next != end+1 {
				t.Fatalf("end of a replay at %d, want %d", next, end+1)
			}
			complete = true
		case strings.Contains(l, "lost") || strings.HasPrefix(l, "!!!"):
			t.Fatalf("unexpected %q", l)
		}
	}
	if !complete {
		t.Error("the last replay did not end")
	}
}

// TestSinceHuge: a resume point past every event, up to the largest
// sequence number, is answered as one past the room's last event, not as
// a wrapped gap.
func TestSinceHuge(t *testing.T) {
	s := startServer(t, testConfig())
	alice := join(t, s, "alice")
	alice.send("hello")
	epoch := epochOf(t, s, "lobby")
	for _, since := range []string{"18446744073709551615", epoch + "-18446744073709551615", "18446744073709551614"} {
		got := alice.send1("/since " + since)
		if !strings.HasPrefix(got, "--- resume point ") || !strings.Contains(got, fmt.Sprintf("is past lobby's last event %s-2:", epoch)) {
			t.Errorf("/since %s answered %q", since, got)
		}
		alice.sync(since)
	}
	c := dial(t, s)
	c.send(`{"name":"json","since":18446744073709551615}`)
	l := c.until("the resume's answer", func(l string) bool { return strings.Contains(l, "resume point") || strings.Contains(l, "lost") })
	if !strings.Contains(l, "is past lobby's last event") {
		t.Errorf("JSON resume answered %q", l)
	}
}

// TestSlowReader: a member that reads a few bytes at a time while the
// room is busy is cut as too slow, whichever comes first: its socket (its
// send buffer capped at limits.send_buffer) has taken nothing for
// timeouts.write, or its cursor is about to fall out of the history. The
// others get everything. What it was written is bounded by the capped
// kernel buffers, not by what the room posted.
func TestSlowReader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		history int
		every   time.Duration // between two posts; 0: as fast as the test goes
	}{
		{"history", 512, 0},
		{"deadline", 8192, 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.SendBuffer = 4096
			cfg.Limits.History = tc.history
			cfg.Timeouts.Write = config.Duration(time.Second)
			s := startServer(t, cfg)
			c, err := net.Dial("tcp", s.Addr("line").String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The slow reader's own receive buffer is small too: it is the
			// client's, which the relay does not choose.
			c.(*net.TCPConn).SetReadBuffer(4096)
			fmt.Fprintf(c, "slow\n")
			reader := join(t, s, "reader")
			sender := join(t, s, "sender")
			cut := func() bool { return s.Stats().Disconnects["too slow"] > 0 }
			// The slow member reads 5 bytes every 20 ms.
			var slowGot int
			readDone := make(chan struct{})
			go func() {
				defer close(readDone)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				buf := make([]byte, 5)
				for range tick.C {
					c.SetReadDeadline(time.Now().Add(20 * time.Second))
					n, err := c.Read(buf)
					slowGot += n
					if err != nil || cut() {
						return
					}
				}
			}()
			text := strings.Repeat("z", 100)
			posted := 0
			start := time.Now()
			var tick <-chan time.Time
			if tc.every > 0 {
				tk := time.NewTicker(tc.every)
				defer tk.Stop()
				tick = tk.C
			}
			for posted < 20000 && !cut() {
				if tick != nil {
					<-tick
				}
				sender.send(fmt.Sprint(posted, text))
				posted++
				if posted%200 == 0 {
					reader.messages(200)
				}
			}
			waitFor(t, 20*time.Second, "the slow member to be cut", cut)
			t.Logf("slow member cut %v after the first post (timeouts.write %v, send_buffer %d)", time.Since(start).Round(time.Millisecond), time.Duration(cfg.Timeouts.Write), cfg.Limits.SendBuffer)
			<-readDone
			// It drains what it was sent: the goodbye too, when there was
			// room for it.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			rest, _ := io.ReadAll(c)
			slowGot += len(rest)
			if st := s.Stats().Disconnects; st["too slow"] != 1 || st["write failed"] != 0 {
				t.Errorf("disconnects %v, want the slow member too slow", st)
			}
			if i := bytes.LastIndex(rest, []byte("!!! ")); i >= 0 {
				t.Logf("slow member told: %q", bytes.TrimSpace(rest[i:]))
			}
			for k, l := range reader.messages(posted % 200) {
				if want := fmt.Sprint("sender: ", posted-posted%200+k, text); l != want {
					t.Fatalf("reader got %q, want %q", l, want)
				}
			}
			// The capped send buffer (doubled by Linux), the slow
			// reader's receive window, what was in flight.
			if bound := 64 << 10; slowGot > bound {
				t.Errorf("the slow member was written %d bytes, want at most %d", slowGot, bound)
			}
			t.Logf("slow member cut after %d messages (%d KB posted), having been written %d bytes", posted, posted*len(text)/1024, slowGot)
		})
	}
}

// TestHistoryBytes: a room's history is bounded in bytes of text lines as
// well as in events: past limits.history_bytes its oldest events go, and
// a member whose cursor they take is cut (a post may drop several events
// at once: it learns the gap on resuming); a restored room keeps no more.
func TestHistoryBytes(t *testing.T) {
	s := New(testConfig(), t.Logf)
	r := newRoomBytes("lobby", 512, 100) // "a: 0\n" is 5 bytes; "a: 10\n" 6
	m := s.newMember(nil, "test", newTestDriver())
	m.mu.Lock()
	r.add(m, nil, 0) // it never reads: its cursor stays at 1
	m.mu.Unlock()
	for k := range 40 {
		r.post(&proto.Event{Kind: proto.KindMsg, From: "a", Text: fmt.Sprint(k)}, 0, 1000)
		if r.bytes > 100 {
			t.Fatalf("after event %d the ring holds %d bytes", k+1, r.bytes)
		}
		if k == 17 && m.isDone() { // 98 bytes
			t.Fatalf("cut at event %d, with nothing dropped yet", k+1)
		}
	}
	// 10 events of 5 bytes, then 6 each: the newest 16 (96 bytes) are kept.
	r.mu.RLock()
	oldest, held := r.oldest(), 0
	for seq := oldest; seq <= r.seq; seq++ {
		held += len(r.ring[seq%uint64(len(r.ring))].text)
	}
	nils := 0
	for _, ev := range r.ring {
		if ev == nil {
			nils++
		}
	}
	r.mu.RUnlock()
	if oldest != 25 || held != 96 || r.bytes != 96 || nils != len(r.ring)-16 {
		t.Errorf("oldest %d, %d bytes held (%d counted), %d empty slots of %d; want 25, 96, 96, %d", oldest, held, r.bytes, nils, len(r.ring), len(r.ring)-16)
	}
	if !m.isDone() || m.why != bySlow {
		t.Errorf("the member that never read: done %v, why %v; want cut as too slow", m.isDone(), m.why)
	}
	// A resume from before the oldest is told the gap.
	n := s.newMember(nil, "test", newTestDriver())
	n.mu.Lock()
	e := r.add(n, &proto.Point{Seq: 0}, 0)
	n.mu.Unlock()
	if e.next != 25 || e.missed != 24 || e.bytes != 96 {
		t.Errorf("resume from 0: %+v, want next 25, 24 missed, 96 bytes", e)
	}
	// Read back from a store, the room keeps as much, no more.
	var evs []proto.Event
	for k := range 40 {
		evs = append(evs, proto.Event{Kind: proto.KindMsg, From: "a", Text: fmt.Sprint(k), Seq: uint64(k + 1)})
	}
	r2 := newRoomBytes("lobby", 512, 100)
	r2.restore("", evs, 0)
	if r2.oldest() != 25 || r2.bytes != 96 || r2.seq != 40 {
		t.Errorf("restored: oldest %d, %d bytes, seq %d; want 25, 96, 40", r2.oldest(), r2.bytes, r2.seq)
	}
}

// TestStall: a fast publisher (no rate limit) in a room where a member is
// far behind stalls a few milliseconds at a time, never longer: the
// frozen member presses for pressFor at most and is still cut (and may
// resume), the reader gets everything in order, and the publisher was
// held stallFor at most once a line.
func TestStall(t *testing.T) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			cfg := testConfig()          // rate 0
			cfg.Limits.SendBuffer = 4096 // the frozen member's socket fills with a fraction of the lines
			s := startServer(t, cfg)
			frozen := d.dial(t, s).enter("frozen")
			if tc, ok := frozen.c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4096)
			}
			reader := d.dial(t, s).enter("reader")
			pub := d.dial(t, s).enter("pub")
			go io.Copy(io.Discard, pub.c) // it reads what it is sent
			const n = 5000
			go pub.paste("line", n)
			for k, l := range reader.messages(n) {
				if want := fmt.Sprintf("pub: line %d", k); l != want {
					t.Fatalf("reader got %q, want %q", l, want)
				}
			}
			waitFor(t, 10*time.Second, "the frozen member to be cut", func() bool { return s.Stats().Disconnects["too slow"] == 1 })
			st := s.Stats()
			if st.Stalled == 0 || st.Stalled > n {
				t.Errorf("the publisher stalled %d times, want from 1 to %d (%v each at most, once a line at most)", st.Stalled, n, stallFor)
			}
			if len(st.Disconnects) != 1 {
				t.Errorf("disconnects %v, want the frozen member only", st.Disconnects)
			}
			t.Logf("%d lines: the publisher stalled %d times", n, st.Stalled)
			// The frozen member resumes where it was cut.
			again := d.dial(t, s)
			again.send(`{"name":"frozen","since":1}`)
			again.until("its replay", func(l string) bool { return strings.Contains(l, `earlier in lobby`) })
		})
	}
}

// TestFastPublishers: ten publishers writing as fast as they can into a
// room of twenty members that keep reading (the publishers read too),
// with a router's history (2048 events, 256 KB, a few hundred of these
// lines): the relay paces the publishers to the readers, nobody is cut,
// and every reader gets every message, in the room's one order.
func TestFastPublishers(t *testing.T) {
	cfg := testConfig() // rate 0
	cfg.Limits.History, cfg.Limits.HistoryBytes = 2048, 256<<10
	cfg.Limits.MaxClientsPerIP = 64
	// The stall's bounds stretched: a member that keeps reading holds the
	// publishers for as long as it is behind, so that a reader the
	// machine starves for a while (a second, under -race on a loaded
	// machine) is waited for, not cut. What stall and press do within
	// their bounds is TestStallBy's and TestStall's.
	s := startServer(t, cfg, func(s *Server) { s.stallMax, s.pressMax = time.Minute, time.Minute })
	const pubs, subs = 10, 10
	k := 2000 // lines a publisher sends
	if testing.Short() {
		k = 500
	}
	pad := strings.Repeat("x", 240) // lines of about 256 bytes
	var cs []*tconn
	for i := range pubs + subs {
		cs = append(cs, dial(t, s).enter(fmt.Sprintf("m%d", i)))
	}
	type result struct {
		n   int
		sum string // the lines in the order they came
		err error
	}
	results := make(chan result, len(cs))
	for i, c := range cs {
		want := pubs * k
		if i < pubs {
			want -= k // its own lines are not echoed
		}
		go func() {
			h := fnv.New64a()
			next := make([]int, pubs) // the next line of each publisher
			r := result{}
			for r.n < want && r.err == nil {
				l, err := c.read(20 * time.Second)
				switch {
				case err != nil:
					r.err = err
				case strings.HasPrefix(l, "!!!"):
					r.err = fmt.Errorf("told %q", l)
				case strings.HasPrefix(l, "---"):
				default:
					var p, n int
					if _, err := fmt.Sscanf(l, "m%d: %d ", &p, &n); err != nil || p >= pubs || n != next[p] {
						r.err = fmt.Errorf("message %d is %.20q..., want m%d's line %d", r.n, l, p, next[min(p, pubs-1)])
						break
					}
					next[p]++
					r.n++
					io.WriteString(h, l)
				}
			}
			r.sum = fmt.Sprintf("%x", h.Sum64())
			results <- r
		}()
	}
	for i := range pubs {
		go func() {
			var b strings.Builder
			for n := range k {
				fmt.Fprintf(&b, "%d %s\n", n, pad)
			}
			cs[i].c.SetWriteDeadline(time.Now().Add(60 * time.Second))
			io.WriteString(cs[i].c, b.String())
		}()
	}
	sums := map[string]int{}
	for range cs {
		r := <-results
		if r.err != nil {
			t.Errorf("a reader, after %d messages: %v", r.n, r.err)
			continue
		}
		sums[r.sum]++
	}
	st := s.Stats()
	if len(st.Disconnects) != 0 {
		t.Errorf("disconnects %v, want none", st.Disconnects)
	}
	if len(sums) > pubs+1 { // the readers' alike, each publisher's its own
		t.Errorf("the readers got %d different orders", len(sums))
	}
	t.Logf("%d publishers × %d lines to %d readers: the publishers stalled %d times", pubs, k, len(cs), st.Stalled)
}

// TestStallBy: the session's stall rules, on a fake clock: no stall while
// every member is within a quarter of the history, then fewer lines
// between two stalls the further the member furthest behind falls, one
// from three quarters on; each stall lasts stallFor; a member whose
// socket has taken nothing for pressFor presses no more.
func TestStallBy(t *testing.T) {
	for _, c := range []struct{ lag, want int }{
		{0, 0}, {250, 0}, {251, 63}, {500, 32}, {749, 1}, {750, 1}, {1000, 1},
	} {
		if got := stallLines(uint64(c.lag), 1000); got != c.want {
			t.Errorf("stallLines(%d, 1000) = %d, want %d", c.lag, got, c.want)
		}
	}
	for lag := uint64(251); lag <= 1000; lag++ {
		if stallLines(lag, 1000) > stallLines(lag-1, 1000) && lag != 251 {
			t.Fatalf("stallLines(%d, 1000) > stallLines(%d, 1000)", lag, lag-1)
		}
	}
	cfg := testConfig()
	cfg.Limits.History, cfg.Limits.HistoryBytes = 1001, 0 // maxLag 1000
	s := New(cfg, t.Logf)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	join := func(name string) *member { return joinLobby(t, s, name, newTestDriver()) }
	pub, slow := join("pub"), join("slow")
	lobby, _ := s.room("lobby")
	post := func(n int, at time.Time) {
		for range n {
			lobby.post(&proto.Event{Kind: proto.KindMsg, From: "pub", Text: "x", Time: at}, pub.id, s.maxLag())
			pub.next.Store(lobby.seq + 1) // pub's writer keeps up
		}
	}
	post(500, t0) // slow reads nothing: 500 behind
	n := int(lobby.pressure.Load())
	if lag := slow.lag(lobby.seq); n != stallLines(lag, 1000) || n < 30 || n > 32 {
		t.Fatalf("%d of 1000 behind: %d lines between stalls, want %d", lag, n, stallLines(lag, 1000))
	}
	pub.sinceStall = 0
	for k := range n {
		if by := pub.stallBy(t0); !by.IsZero() {
			t.Fatalf("line %d of %d stalls until %v", k, n, by)
		}
		pub.sinceStall++ // as line does
	}
	if by := pub.stallBy(t0); !by.Equal(t0.Add(stallFor)) {
		t.Fatalf("after %d lines: stalls until %v, want %v", n, by, t0.Add(stallFor))
	}
	if by := pub.stallBy(t0.Add(stallFor / 2)); !by.Equal(t0.Add(stallFor)) {
		t.Errorf("in the stall: until %v, want %v", by, t0.Add(stallFor))
	}
	if by := pub.stallBy(t0.Add(stallFor)); !by.IsZero() {
		t.Errorf("once the stall is over: until %v, want now", by)
	}
	// slow's socket is full: it presses for pressFor, then no more.
	slow.blocked(true, t0)
	post(1, t0.Add(pressFor-time.Millisecond))
	if got := lobby.pressure.Load(); got == 0 {
		t.Error("blocked for less than pressFor: no pressure, want some")
	}
	post(1, t0.Add(pressFor))
	if got := lobby.pressure.Load(); got != 0 {
		t.Errorf("blocked for pressFor: %d lines between stalls, want no bound", got)
	}
	if by := pub.stallBy(t0.Add(time.Second)); !by.IsZero() {
		t.Errorf("without pressure: stalls until %v, want now", by)
	}
	// Its socket takes a write: it presses again.
	slow.blocked(false, t0.Add(time.Second))
	post(1, t0.Add(time.Second))
	if got := lobby.pressure.Load(); got == 0 {
		t.Error("its socket took a write: no pressure, want some")
	}
}

// countingUnstaller is a test driver that counts the stalls ended early.
type countingUnstaller struct {
	*testDriver
	n atomic.Int32
}

func (d *countingUnstaller) unstall(*member) { d.n.Add(1) }

// TestUnstall: a stalled publisher is read again as soon as the writes of
// the member furthest behind bring it back within a quarter of the
// history, not when stallFor is up; not while it is still further behind;
// a member whose socket has taken nothing for pressFor does not hold it;
// and a publisher is on its room's list once however often it stalls.
func TestUnstall(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.History, cfg.Limits.HistoryBytes = 1001, 0 // maxLag 1000: a quarter is 250
	s := New(cfg, t.Logf)
	t0 := time.Now()
	drv := &countingUnstaller{testDriver: newTestDriver()}
	pub, slow, frozen := joinLobby(t, s, "pub", drv), joinLobby(t, s, "slow", newTestDriver()), joinLobby(t, s, "frozen", newTestDriver())
	lobby, _ := s.room("lobby")
	post := func(n int, at time.Time) {
		for range n {
			lobby.post(&proto.Event{Kind: proto.KindMsg, From: "pub", Text: "x", Time: at}, pub.id, s.maxLag())
			pub.next.Store(lobby.seq + 1) // pub's writer keeps up
		}
	}
	frozen.blocked(true, t0.Add(-pressFor)) // its socket has taken nothing for pressFor: it does not press
	post(500, t0)                           // slow and frozen read nothing: 500 behind
	stall := func(at time.Time) time.Time {
		pub.sinceStall = int32(lobby.pressure.Load())
		return pub.stallBy(at)
	}
	if by := stall(t0); !by.Equal(t0.Add(stallFor)) {
		t.Fatalf("500 of 1000 behind: stalls until %v, want %v", by, t0.Add(stallFor))
	}
	if by := stall(t0); !by.Equal(t0.Add(stallFor)) {
		t.Fatalf("asked again in the stall: until %v, want %v", by, t0.Add(stallFor))
	}
	// takeUpTo has m's writer take its events, as batch does, a few at a
	// time, until it is lag behind.
	takeUpTo := func(m *member, lag uint64) {
		for m.lag(lobby.seq) > lag {
			m.mu.Lock()
			lobby.mu.RLock()
			m.take(lobby, nil, int(min(m.lag(lobby.seq)-lag, 8)))
			lobby.caughtUp(m)
			lobby.mu.RUnlock()
			m.mu.Unlock()
		}
	}
	takeUpTo(slow, 300) // still more than a quarter behind
	if n := drv.n.Load(); n != 0 {
		t.Fatalf("slow %d behind: %d early ends, want none", slow.lag(lobby.seq), n)
	}
	if by := pub.stallBy(t0.Add(time.Millisecond)); !by.Equal(t0.Add(stallFor)) {
		t.Fatalf("slow %d behind: stalls until %v, want %v", slow.lag(lobby.seq), by, t0.Add(stallFor))
	}
	takeUpTo(slow, 260)
	if n := drv.n.Load(); n != 0 {
		t.Fatalf("slow %d behind: %d early ends, want none", slow.lag(lobby.seq), n)
	}
	var scratch []*event
	if b, _, _ := slow.batch(&scratch); len(b) < 10 { // its writer's next batch
		t.Fatalf("slow's next batch: %d events, want 10 at least", len(b))
	}
	if n := drv.n.Load(); n != 1 {
		t.Fatalf("slow %d behind, frozen not pressing: %d early ends, want 1", slow.lag(lobby.seq), n)
	}
	if by := pub.stallBy(t0.Add(time.Millisecond)); !by.IsZero() {
		t.Errorf("the stall ended early: until %v, want now", by)
	}
	lobby.smu.Lock()
	listed := len(lobby.stalled)
	lobby.smu.Unlock()
	if listed != 0 || pub.listed.Load() {
		t.Errorf("after the early end: %d on the list (pub listed %v), want none", listed, pub.listed.Load())
	}
	// Under pressure again: stalled twice, it is listed once.
	post(100, t0.Add(time.Second))
	for k := range 2 {
		at := t0.Add(time.Second + time.Duration(k)*stallFor)
		if by := stall(at); !by.Equal(at.Add(stallFor)) {
			t.Fatalf("stall %d: until %v, want %v", k, by, at.Add(stallFor))
		}
	}
	lobby.smu.Lock()
	listed = len(lobby.stalled)
	lobby.smu.Unlock()
	if listed != 1 {
		t.Errorf("stalled twice: %d on the list, want 1", listed)
	}
	// Stalled, it leaves for another room: it is off lobby's list, so
	// that lobby's next unstall does not end a stall of its in the next.
	if err := s.join(pub, "elsewhere", nil, 0); err != nil {
		t.Fatal(err)
	}
	lobby.smu.Lock()
	listed = len(lobby.stalled)
	lobby.smu.Unlock()
	if listed != 0 || pub.listed.Load() {
		t.Errorf("after pub left: %d on lobby's list (pub listed %v), want none", listed, pub.listed.Load())
	}
}

// TestStallRelaxedMeanwhile: relaxedUnstall, which stallBy calls once it
// has listed a publisher (its readers may have caught up between its
// check and its listing, when their caughtUp found no stall to end),
// reports pressure while there is some, and otherwise ends the stall.
func TestStallRelaxedMeanwhile(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.History, cfg.Limits.HistoryBytes = 1001, 0 // maxLag 1000: a quarter is 250
	s := New(cfg, t.Logf)
	t0 := time.Now()
	join := func(name string) *member { return joinLobby(t, s, name, newTestDriver()) }
	pub, slow := join("pub"), join("slow")
	lobby, _ := s.room("lobby")
	for range 500 {
		lobby.post(&proto.Event{Kind: proto.KindMsg, From: "pub", Text: "x", Time: t0}, pub.id, s.maxLag())
		pub.next.Store(lobby.seq + 1)
	}
	if lobby.relaxed(t0) {
		t.Fatal("slow 500 of 1000 behind: relaxed, want pressure")
	}
	slow.next.Store(lobby.seq + 1) // slow catches up: between relaxed and stall, as it were
	if !lobby.relaxedUnstall(t0) {
		t.Fatal("slow caught up: not relaxed")
	}
	// What stallBy does once listed, from the top: list, see relaxed, end.
	pub.stallUntil.Store(t0.Add(stallFor).UnixNano())
	lobby.stall(pub)
	if !lobby.relaxedUnstall(t0) || pub.listed.Load() || pub.stallUntil.Load() != 0 {
		t.Errorf("listed with its readers caught up: listed %v, stalled until %d; want the stall ended", pub.listed.Load(), pub.stallUntil.Load())
	}
}

// TestJoinCarriesOver: what a /join carries over from the room left (a
// member whose writer had no turn yet, more than limits.queue behind)
// does not count against the private queue: a notice after it does not
// cut the member, and the queue empties as its writer writes.
func TestJoinCarriesOver(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Queue = 4
	s := New(cfg, t.Logf)
	m := s.newMember(nil, "test", newTestDriver())
	if err := s.claim(m, "slowpoke", false); err != nil {
		t.Fatal(err)
	}
	if err := s.join(m, "lobby", nil, 0); err != nil {
		t.Fatal(err)
	}
	lobby, _ := s.room("lobby")
	for k := range 10 {
		lobby.post(&proto.Event{Kind: proto.KindMsg, From: "a", Text: fmt.Sprint(k)}, 0, s.maxLag())
	}
	if err := s.join(m, "kitchen", nil, 0); err != nil {
		t.Fatal(err)
	}
	m.notify(proto.KindNotice, "one more")
	m.mu.Lock()
	n, carried := len(m.priv), int(m.carried)
	m.mu.Unlock()
	if m.isDone() || carried < 10 || n < carried+1 {
		t.Fatalf("after /join: done %v, %d queued of which %d carried over; want not done, at least 10 carried", m.isDone(), n, carried)
	}
	var scratch []*event
	for range 10 {
		m.batch(&scratch)
	}
	if m.priv != nil || m.carried != 0 {
		t.Errorf("once written: %d queued, %d carried; want none", len(m.priv), m.carried)
	}
}

// TestPaceBy: the session's pacing rules, on a fake clock: a member's
// lines past its burst wait for its rate, its replays' bytes past a
// minute's worth wait for their rate, and it is a flooder only once it
// has held more than limits.flood_bytes unread for timeouts.flood.
func TestPaceBy(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.Rate, cfg.Limits.Burst = 5, 3
	cfg.Limits.ReplayBytesPerMinute = 600 // 10 bytes a second
	cfg.Limits.FloodBytes = 1024
	cfg.Timeouts.Flood = config.Duration(time.Minute)
	s := New(cfg, t.Logf)
	m := s.newMember(nil, "test", newTestDriver())
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for k := range 3 {
		if by := m.paceBy(t0); !by.IsZero() {
			t.Fatalf("line %d of the burst waits until %v", k, by)
		}
		m.lim.spend(t0, 1, cfg.Limits.Rate, float64(cfg.Limits.Burst)) // as line does
	}
	if by := m.paceBy(t0); !by.Equal(t0.Add(200 * time.Millisecond)) {
		t.Errorf("past the burst: %v, want +200ms", by.Sub(t0))
	}
	if by := m.paceBy(t0.Add(200 * time.Millisecond)); !by.IsZero() {
		t.Errorf("at +200ms: %v, want now", by.Sub(t0))
	}
	// A replay of 1 200 bytes: 600 over a minute's worth, 60 s of debt.
	m.chargeReplay(t0, 1200)
	if by := m.paceBy(t0.Add(time.Second)); !by.Equal(t0.Add(time.Minute)) {
		t.Errorf("after a replay twice the budget: %v, want +1m0s", by.Sub(t0))
	}
	// Flooding: more than 1 024 bytes unread for a minute, paced all along.
	for _, tc := range []struct {
		at     time.Duration
		unread int
		known  bool
		want   bool
	}{
		{0, 5000, true, false},
		{30 * time.Second, 5000, true, false},
		{40 * time.Second, 500, true, false}, // drained below the bound: it starts again
		{50 * time.Second, 5000, true, false},
		{109 * time.Second, 5000, true, false},
		{111 * time.Second, 5000, true, true},
	} {
		if got := m.paced(t0.Add(tc.at), tc.unread, tc.known); got != tc.want {
			t.Errorf("at +%v with %d unread: flooding %v, want %v", tc.at, tc.unread, got, tc.want)
		}
	}
	// Where the system cannot tell what is unread, time alone judges.
	n := s.newMember(nil, "test", newTestDriver())
	if n.paced(t0, 0, false) || !n.paced(t0.Add(61*time.Second), 0, false) {
		t.Error("unknown unread input: want flooding after timeouts.flood of pacing")
	}
	if st := s.Stats(); st.Paced != 8 {
		t.Errorf("paced %d times, want 8", st.Paced)
	}
}

// TestHoleBytes: a hole read back from a store (the numbers a crash
// lost) is one notice, kept and replayed once however many numbers it
// spans: it counts its bytes once against limits.history_bytes and in a
// replay's cost, and the events around it stay.
func TestHoleBytes(t *testing.T) {
	s := New(testConfig(), t.Logf)
	var evs []proto.Event
	for k := range 10 { // "a: 0\n" to "a: 9\n": 50 bytes
		seq := uint64(k + 1)
		if k >= 5 {
			seq = uint64(k + 45) // 6 to 49 lost
		}
		evs = append(evs, proto.Event{Kind: proto.KindMsg, From: "a", Text: fmt.Sprint(k), Seq: seq})
	}
	whole := newRoom("lobby", 512) // no bound in bytes
	whole.restore("", evs, 200)    // 55 to 200 lost too
	notices := len(whole.ring[6].text) + len(whole.ring[200].text)
	r := newRoomBytes("lobby", 512, 1000)
	r.restore("", evs, 200)
	if r.bytes != 50+notices {
		t.Errorf("restored: %d bytes counted, want %d", r.bytes, 50+notices)
	}
	r.post(&proto.Event{Kind: proto.KindMsg, From: "a", Text: "x"}, 0, 1000) // "a: x\n"
	if r.oldest() != 1 || r.bytes != 55+notices {
		t.Errorf("after a post: oldest %d, %d bytes counted; want 1, %d", r.oldest(), r.bytes, 55+notices)
	}
	m := s.newMember(nil, "test", newTestDriver())
	m.mu.Lock()
	e := r.add(m, &proto.Point{Seq: 0}, 0)
	m.mu.Unlock()
	if e.next != 1 || e.bytes != 55+notices {
		t.Errorf("replay from 0: %+v, want next 1, %d bytes", e, 55+notices)
	}
	// The ring wraps past both holes: nothing of them is counted then.
	for k := range 600 {
		r.post(&proto.Event{Kind: proto.KindMsg, From: "b", Text: fmt.Sprint(k % 10)}, 0, 1000)
	}
	if want := 1000 / 5 * 5; r.bytes != want {
		t.Errorf("after the ring wrapped: %d bytes counted, want %d", r.bytes, want)
	}
}

// TestReloadEndsPause: a member paced for its budget is asked again when
// a reload changes the limits: with pacing lifted, the line it waits
// with is read at once, whatever its driver.
func TestReloadEndsPause(t *testing.T) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.Rate, cfg.Limits.Burst = 0.001, 1 // past its name, a line every 1 000 s
			s := startServer(t, cfg)
			before := s.Stats().Paced
			c := d.dial(t, s).enter("paced")
			waitFor(t, 10*time.Second, "the member to be paced", func() bool { return s.Stats().Paced > before })
			m := s.lookup("paced")
			if _, ok := connInq(m.conn); ok {
				c.send("/ping 1")
				waitFor(t, 10*time.Second, "the line to wait in the socket", func() bool { n, _ := connInq(m.conn); return n > 0 })
			} else { // a pipe holds nothing: the line goes once it is read
				c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				go fmt.Fprint(c.c, "/ping 1\n")
			}
			cfg.Limits.Rate = 0
			s.Reload(cfg)
			c.until("the pong", func(l string) bool { return l == "--- pong 1" })
		})
	}
}

// joinLobby makes a member of s named name, driven by d, in lobby.
func joinLobby(t *testing.T, s *Server, name string, d driver) *member {
	t.Helper()
	m := s.newMember(nil, "test", d)
	if err := s.claim(m, name, false); err != nil {
		t.Fatal(err)
	}
	if err := s.join(m, "lobby", nil, 0); err != nil {
		t.Fatal(err)
	}
	return m
}
