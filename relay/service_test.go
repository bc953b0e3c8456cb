package relay

import (
	"fmt"
	"net"
	"path/filepath"
	"roomrelay/relay/internal/testkit"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestReload(t *testing.T) {
	logs := testkit.NewLog(t)
	cfg := testConfig()
	s := New(cfg, logs.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNow(t, s)
	alice := join(t, s, "alice")
	oldLine := s.Addr("line").String()

	next := cfg
	next.Limits.Rate, next.Limits.Burst = 1, 1
	next.Limits.History = 64
	next.Listen.UDP = ""
	next.DefaultRoom = "hall"
	notes := s.Reload(next)
	udp := hasDoor(s, "udp")
	if udp && (!strings.Contains(strings.Join(notes, "\n"), "udp door closed") || s.Addr("udp") != nil) {
		t.Errorf("udp door not closed: %q", notes)
	}
	if !logs.Has("relay.limits.history applies to rooms created from now on") {
		t.Errorf("log: %q", logs.Lines())
	}
	if s.Addr("line").String() != oldLine {
		t.Error("line door re-bound though its address did not change")
	}
	// alice is still there, and the new limits apply to her at once: her
	// second line waits for her budget.
	alice.send("one", "two")
	waitFor(t, 10*time.Second, "alice to be paced", func() bool { return s.Stats().Paced > 0 })
	bob := join(t, s, "bob")
	if !strings.Contains(bob.name, "bob") {
		t.Fatal()
	}
	bob.send("/who")
	if l := bob.until("who", func(l string) bool { return strings.HasPrefix(l, "--- in ") }); l != "--- in hall: bob" {
		t.Errorf("new member: %q, want the new default room", l)
	}

	// A changed address re-binds the door.
	next.Listen.Line = "127.0.0.1:0"
	next.Listen.UDP = "127.0.0.1:0"
	s.Reload(next)
	if udp && s.Addr("udp") == nil {
		t.Error("udp door not re-opened")
	}
	alice.send("/ping still")
	alice.until("pong", func(l string) bool { return l == "--- pong still" })
}

func TestUnavailableAddressIsRetried(t *testing.T) {
	logs := testkit.NewLog(t)
	cfg := testConfig()
	// A documentation address no interface here has: binding fails with
	// "cannot assign requested address", as for a LAN interface still down.
	cfg.Listen.Line = "192.0.2.1:7777"
	s := New(cfg, logs.Logf)
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	if !logs.Has("warn: line door: 192.0.2.1:7777 is not available yet") {
		t.Errorf("log: %q", logs.Lines())
	}
	if s.Addr("line") != nil {
		t.Error("line door bound")
	}
	// The other doors run meanwhile.
	if hasDoor(s, "legacy") && s.Addr("legacy") == nil {
		t.Error("legacy door not bound")
	}
	shutdownNow(t, s) // and the retry ends with the relay
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Listen.Line = ln.Addr().String()
	s := New(cfg, t.Logf)
	err = s.Start()
	if err == nil {
		shutdownNow(t, s)
		t.Fatal("started on a port in use")
	}
	if want := "line door: cannot listen on " + ln.Addr().String() + " (relay.listen.line): bind: address already in use (another program, or another roomrelay, listens there)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if s.Addr("legacy") != nil || s.Addr("udp") != nil {
		t.Error("doors left open after a failed start")
	}

	// Two doors busy: both are said at once.
	if !hasDoor(s, "legacy") {
		return // a minimal build has only the line door
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	cfg.Listen.Legacy = ln2.Addr().String()
	s = New(cfg, t.Logf)
	err = s.Start()
	if err == nil {
		shutdownNow(t, s)
		t.Fatal("started on ports in use")
	}
	for _, want := range []string{"line door: cannot listen on " + ln.Addr().String(), "legacy door: cannot listen on " + ln2.Addr().String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to say %q", err, want)
		}
	}
}

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := pc.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Errorf("got %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("without a socket: %v", err)
	}
}

func TestLogThrottle(t *testing.T) {
	var th throttle
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	allowed := 0
	for i := range 100 { // a flood within one second
		if ok, _ := th.allow("udp drop", "10.0.0.1", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			allowed++
		}
	}
	if allowed != throttleBurst {
		t.Errorf("%d lines allowed of a flood of 100 in a second, want %d", allowed, throttleBurst)
	}
	if ok, _ := th.allow("another kind", "10.0.0.1", t0.Add(500*time.Millisecond)); !ok {
		t.Error("a line of another kind held back by the flood")
	}
	if ok, _ := th.allow("udp drop", "10.0.0.2", t0.Add(500*time.Millisecond)); !ok {
		t.Error("a line of the same kind about another subject held back by the flood")
	}
	ok, suppressed := th.allow("udp drop", "10.0.0.1", t0.Add(time.Second))
	if !ok || suppressed != 100-throttleBurst {
		t.Errorf("the next second: allowed %v, %d suppressed said; want true, %d", ok, suppressed, 100-throttleBurst)
	}
	// A sweep of 2 000 subjects in a second: at most (throttleBurst * throttleKinds)
	// lines; every line held back is counted, and said when its subject
	// (or, for those it could not track, its kind) comes back.
	var sweep throttle
	allowed, said := 0, 0
	for i := range 2000 {
		if ok, _ := sweep.allow("refused", fmt.Sprint("10.1.", i/256, ".", i%256), t0); ok {
			allowed++
		}
	}
	if allowed != (throttleBurst * throttleKinds) {
		t.Errorf("a sweep of 2000 subjects in a second logged %d lines, want %d", allowed, (throttleBurst * throttleKinds))
	}
	for i := range 2000 {
		if ok, n := sweep.allow("refused", fmt.Sprint("10.1.", i/256, ".", i%256), t0.Add(time.Duration(1+i/(throttleBurst*throttleKinds))*time.Second)); ok {
			said += n
		}
	}
	if said != 2000-(throttleBurst*throttleKinds) {
		t.Errorf("%d suppressed lines said afterwards, want %d", said, 2000-(throttleBurst*throttleKinds))
	}

	logs := testkit.NewLog(t)
	s := New(testConfig(), logs.Logf)
	for i := range 2 * throttleBurst { // members leaving are never held back
		s.infof(leftFormat, "line", "127.0.0.1:1", fmt.Sprint("m", i), byEOF)
	}
	if n := strings.Count(logs.String(), " left: closed"); n != 2*throttleBurst {
		t.Errorf("%d of %d leaves logged", n, 2*throttleBurst)
	}
	s.debugf("not shown at level info")
	s.infof("shown")
	if logs.Has("not shown") || !logs.Has("shown") {
		t.Errorf("level info logged %q", logs.Lines())
	}
}

// TestLogThrottleSweep: a full table is swept once a second at most (what
// the sweep left is of that second), and every line held back is said.
func TestLogThrottleSweep(t *testing.T) {
	var th throttle
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	allowed := 0
	for i := range throttleSubjects + 1 { // its kind fills the table, and a sweep tracks no more
		if ok, _ := th.allow("refused", fmt.Sprint("10.2.0.", i), t0); ok {
			allowed++
		}
	}
	// A subject of the second before, as only a kind's own can be after a
	// sweep: a second sweep within t0 would find it.
	th.lines["refused\x00stale"] = &throttled{second: t0.Add(-time.Second), suppressed: 2}
	th.allow("refused", "10.2.1.0", t0.Add(900*time.Millisecond))
	if th.lines["refused\x00stale"] == nil {
		t.Error("the table was swept twice within a second")
	}
	ok, said := th.allow("refused", "10.2.1.1", t0.Add(time.Second))
	if want := throttleSubjects + 2 - allowed + 2; !ok || said != want {
		t.Errorf("the next second: allowed %v, %d suppressed said; want true, %d", ok, said, want)
	}
	if th.lines["refused\x00stale"] != nil || len(th.lines) != 2 {
		t.Errorf("the next second's sweep left %d entries", len(th.lines))
	}
}

// TestMemoryLimit shows the relay under relay.memory_limit_mb: with the
// garbage collector otherwise off, 100 MB of messages pass through a room
// while the heap stays near the cap, since the live data (the history
// ring) is far below it.
func TestMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 100 MB")
	}
	const limit = 32 << 20
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	cfg := testConfig()
	s := startServer(t, cfg)
	sender := join(t, s, "sender")
	reader := join(t, s, "reader")
	text := strings.Repeat("m", 1000)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC
	var peak uint64
	for round := range 400 {
		var b strings.Builder
		for k := range 50 {
			fmt.Fprintf(&b, "%d.%d %s\n", round, k, text)
		}
		sender.c.Write([]byte(b.String()))
		reader.messages(50)
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	t.Logf("peak heap %.1f MB under a %d MB limit; %d collections", float64(peak)/(1<<20), limit>>20, ms.NumGC-gc0)
	if ms.NumGC == gc0 {
		t.Error("the limit never made the garbage collector run")
	}
	if peak > limit*5/4 {
		t.Errorf("heap peaked at %d bytes, over the %d limit", peak, limit)
	}
}

// hasDoor reports whether this build has the door (a minimal build has
// only the line door).
func hasDoor(s *Server, name string) bool {
	for _, d := range s.doors {
		if d.name() == name {
			return true
		}
	}
	return false
}

// TestLogThrottleQuietFlooders: subjects that each flooded once, filling
// the throttle's table with lines suppressed, and then went quiet, do not
// keep a new kind of line out of the log for good; what they had
// suppressed is said with their kind's next line.
func TestLogThrottleQuietFlooders(t *testing.T) {
	var th throttle
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	suppressed := 0
	for i := 0; len(th.lines) < throttleSubjects; i++ {
		subject := fmt.Sprint("10.0.", i/256, ".", i%256)
		for range throttleBurst + 1 {
			if ok, _ := th.allow("flood %s", subject, t0.Add(time.Duration(i)*time.Second)); !ok {
				suppressed++
			}
		}
	}
	later := t0.Add(time.Hour)
	if ok, _ := th.allow("new kind %s", "10.9.9.9", later); !ok {
		t.Fatalf("a new kind of line is held back by %d quiet subjects' suppressed lines", len(th.lines))
	}
	told := 0
	for i := range 2 * throttleSubjects {
		_, n := th.allow("flood %s", fmt.Sprint("10.8.", i/256, ".", i%256), later.Add(time.Duration(i)*time.Second))
		told += n
	}
	if told != suppressed {
		t.Errorf("the flood's later lines told of %d suppressed, want %d", told, suppressed)
	}
}

// TestLogThrottleBytes: the throttle's table is bounded in bytes as well
// as in entries: a subject is kept to maxSubject bytes, however long the
// text a line quotes (a legacy connect_request's bad port, up to
// relay.limits.max_line_bytes).
func TestLogThrottleBytes(t *testing.T) {
	logs := testkit.NewLog(t)
	s := New(testConfig(), logs.Logf)
	long := strings.Repeat("x", 64<<10)
	for i := range 2 * throttleSubjects {
		s.warnf("legacy %s: %v", "10.0.0.1", fmt.Errorf("bad connect_request: port %q is not a number from 1 to 65535", long+fmt.Sprint(i)))
	}
	s.logs.mu.Lock()
	held := 0
	for k := range s.logs.lines {
		held += len(k)
	}
	n := len(s.logs.lines)
	s.logs.mu.Unlock()
	if most := throttleSubjects * (len("legacy %s: %v") + 1 + maxSubject); held > most {
		t.Errorf("the throttle holds %d bytes of keys in %d entries, want at most %d", held, n, most)
	}
}
