package relay

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
	"roomrelay/relay/secret"
)

// The secrets of the tests: none may appear in a log.
const (
	testPassword = "hunter2-pw"
	testAdmin    = "adm1n-secret"
	testKey      = "pâté-key" // a key that is no number
	testNumKey   = "1234"     // a key that looks like a resume point
)

var testSecrets = []string{testPassword, testAdmin, testKey, testNumKey}

// authConfig is testConfig with every door on, a password, an admin
// password, a keyed room with a topic (kitchen), a room with a numeric key
// (attic), and a hidden room (cellar).
func authConfig() config.Config {
	cfg := testConfig()
	cfg.Listen.IRC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Password = secret.Hash(testPassword)
	cfg.AdminPassword = secret.Hash(testAdmin)
	cfg.Rooms = map[string]config.Room{
		"kitchen": {Key: secret.Hash(testKey), Topic: "family only"},
		"attic":   {Key: secret.Hash(testNumKey)},
		"cellar":  {Hidden: true},
	}
	return cfg
}

// startAuth starts a relay on cfg whose log the test reads, and checks at
// the end that no secret is in it.
func startAuth(t *testing.T, cfg config.Config) (*Server, *testkit.Log) {
	t.Helper()
	log := testkit.NewLog(t)
	testkit.NoLeaks(t)
	s := New(cfg, log.Logf)
	s.level.Store(LevelDebug)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		shutdownNow(t, s)
		for _, sec := range testSecrets {
			if log.Has(sec) {
				t.Errorf("the log holds the secret %q", sec)
			}
		}
	})
	return s, log
}

// forgive forgets the wrong secrets given so far, as a quarter of an hour
// would: a test's next try is not made to wait.
func forgive(s *Server) {
	s.auth.mu.Lock()
	s.auth.guesses = nil
	s.auth.mu.Unlock()
}

// waitOver ends the wait of every address that gave wrong secrets, as if
// it had passed, without forgiving them.
func waitOver(s *Server) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	for e := s.auth.table().tab.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*lruEntry[netip.Prefix, guesser]).val.next = time.Now()
	}
}

// TestGuesses: an address gets a try a second for its first wrong
// secrets, then waits twice as long after each, up to guessMaxWait; it
// starts afresh once forgiven; an IPv6 address counts by its /64; a full
// table makes room only with a forgiven address.
func TestGuesses(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	g := newGuesses(2)
	ip := netip.MustParseAddr("10.0.0.7")
	if w := g.wait(ip, t0); w != 0 {
		t.Fatalf("a new address waits %v", w)
	}
	now := t0
	var waits []time.Duration
	for range 16 {
		if w := g.wait(ip, now); w != 0 {
			t.Fatalf("at its next try, it waits %v", w)
		}
		w := g.fail(ip, now)
		waits = append(waits, w)
		if got := g.wait(ip, now.Add(w-time.Millisecond)); got != time.Millisecond {
			t.Fatalf("just before its next try it waits %v, want 1ms", got)
		}
		now = now.Add(w)
	}
	s, m := time.Second, time.Minute
	want := []time.Duration{s, s, s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 64 * s, 128 * s, 256 * s, 512 * s, 10 * m, 10 * m, 10 * m, 10 * m}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits after each wrong secret: %v, want %v", waits, want)
		}
	}
	// Two tries at once: the second waits for the first's second.
	if w := g.wait(ip, now); w != 0 {
		t.Fatalf("waits %v", w)
	}
	if w := g.wait(ip, now); w != time.Second {
		t.Errorf("a second try at the same time waits %v, want 1s", w)
	}
	// A right secret frees the second its try held, for a key after it.
	g.wait(ip, now)
	g.passed(ip, now)
	if w := g.wait(ip, now); w != 0 {
		t.Errorf("after a right secret, the next try waits %v", w)
	}
	// Forgiven after a quarter of an hour without a wrong secret.
	later := now.Add(guessForgive + 2*time.Second)
	if w := g.fail(ip, later); w != time.Second {
		t.Errorf("after its forgiving, a wrong secret makes it wait %v, want 1s", w)
	}
	// An IPv6 host's addresses are one /64.
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	g.fail(a, t0)
	if w := g.wait(b, t0); w != time.Second {
		t.Errorf("another address of the same /64 waits %v, want 1s", w)
	}
	// The table (2) is full of guessers: a new address waits...
	c := netip.MustParseAddr("10.0.0.8")
	if w := g.wait(c, t0); w != guessBusy {
		t.Errorf("a new address while the table is full waits %v, want %v", w, guessBusy)
	}
	if w := g.fail(c, t0); w != guessBusy {
		t.Errorf("a new address's wrong secret while the table is full: wait %v, want %v", w, guessBusy)
	}
	// ...until the one unused the longest is forgiven.
	much := later.Add(2 * guessForgive)
	if w := g.wait(c, much); w != 0 {
		t.Errorf("with a forgiven address in the table, a new one waits %v", w)
	}
	if w := g.fail(c, much); w != time.Second {
		t.Errorf("got %v", w)
	}
}

// TestBansExpire: a ban on a name or a network holds until its time and
// not after; the table drops what expired.
func TestBansExpire(t *testing.T) {
	s := New(testConfig(), t.Logf)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	admin := &member{srv: s, drv: newTestDriver(), name: "root", door: "line"}
	s.ban(admin, proto.Request{Op: proto.Ban, Arg: "Bob", For: time.Hour}, t0)
	s.ban(admin, proto.Request{Op: proto.Ban, Arg: "192.168.1.0/24", For: 10 * time.Minute, Text: "noisy"}, t0)
	s.ban(admin, proto.Request{Op: proto.Ban, Arg: "2001:db8::1", For: time.Minute}, t0)
	s.ban(admin, proto.Request{Op: proto.Ban, Arg: "::ffff:172.16.5.0/120", For: time.Minute}, t0) // a network of IPv4 written as IPv6
	for _, tc := range []struct {
		ip     string
		name   string
		at     time.Duration
		banned bool
	}{
		{"10.0.0.1", "alice", 0, false},
		{"192.168.2.1", "", 0, false},
		{"2001:db8::1", "", 0, true},
		{"2001:db8::2", "", 0, false},
		{"172.16.5.9", "", 0, true},
		{"172.16.6.9", "", 0, false},
		{"192.168.1.77", "", 9 * time.Minute, true},
		{"192.168.1.77", "", 10 * time.Minute, false},
		{"10.0.0.1", "bob", 59 * time.Minute, true},
		{"10.0.0.1", "bob", time.Hour, false},
	} {
		_, got := s.banned(netip.MustParseAddr(tc.ip), tc.name, t0.Add(tc.at))
		if got != tc.banned {
			t.Errorf("%s %q at +%v: banned %v, want %v", tc.ip, tc.name, tc.at, got, tc.banned)
		}
	}
	if n := len(s.auth.bans); n != 0 {
		t.Errorf("%d bans kept after they expired", n)
	}
}

// TestLinePassword: a relay with a password says so in its greeting,
// refuses a name before the password, answers a wrong one as such (and
// makes the address wait before the next), and takes the right one, by
// /pass or in a JSON hello.
func TestLinePassword(t *testing.T) {
	s, _ := startAuth(t, authConfig())
	c, err := net.DialTimeout("tcp", s.Addr("line").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := &tconn{t: t, c: c, lr: proto.NewLineReader(c, 1<<16)}
	if g := tc.line(); !strings.Contains(g, "This relay has a password: send /pass PASSWORD, then your name") {
		t.Errorf("greeting %q", g)
	}
	for _, step := range []struct{ send, want string }{
		{"alice", "!!! " + needPassword},
		{"/pass wrong", "!!! wrong password"},
		{"/pass " + testPassword, "!!! too many wrong passwords or keys from 127.0.0.1: try again in 1s"},
		{"/forgive", ""},
		{"/pass " + testPassword, "--- password accepted; send your name"},
		{"/pass " + testPassword, "--- password taken already; send your name"},
	} {
		if step.send == "/forgive" {
			forgive(s)
			continue
		}
		if got := tc.send1(step.send); got != step.want {
			t.Errorf("%q: got %q, want %q", step.send, got, step.want)
		}
	}
	tc.enter("alice")

	// JSON: the password in the hello; a wrong one says nothing of the name.
	forgive(s)
	j := dial(t, s)
	if got := j.send1(`{"name":"alice","mode":"json","password":"nope"}`); got != `{"type":"error","text":"wrong password"}` {
		t.Errorf("JSON hello with a wrong password: %q", got)
	}
	forgive(s)
	if got := j.send1(`{"name":"bob","mode":"json"}`); !strings.Contains(got, "this relay has a password") {
		t.Errorf("JSON hello without a password: %q", got)
	}
	j.enter(`{"name":"bob","mode":"json","password":"` + testPassword + `"}`)
	if st := s.Stats(); st.BadSecret != 2 || st.Slowed != 1 {
		t.Errorf("counted %d wrong secrets and %d slowed, want 2 and 1", st.BadSecret, st.Slowed)
	}
}

// TestLineKeys: a keyed room takes a member with its key (a word, or a
// number, with a resume point after it), and refuses one without it or
// with a wrong one, on /join and in a JSON hello; /rooms marks it and
// leaves out a hidden room; its topic greets who enters.
func TestLineKeys(t *testing.T) {
	cfg := authConfig()
	cfg.Password = ""
	s, _ := startAuth(t, cfg)
	alice := join(t, s, "alice")
	for _, step := range []struct{ send, want string }{
		{"/join kitchen", "!!! cannot join kitchen: it has a key (/join kitchen KEY)"},
		{"/join kitchen 42", "!!! cannot join kitchen: wrong key"},
		{"/forgive", ""},
		{"/join kitchen " + testKey, "--- you are alice in kitchen"},
		{"/topic", "--- topic of kitchen: family only"},
		{"/topic new", "!!! admin only: give the admin password first (/admin PASSWORD)"},
		{"/join attic " + testNumKey + " 0", "--- you are alice in attic"},
		{"/join cellar", "--- you are alice in cellar"},
		{"/rooms", "--- rooms: attic (0, key), kitchen (0, key), lobby (0)"},
	} {
		if step.send == "/forgive" {
			forgive(s)
			continue
		}
		got := alice.send1(step.send)
		if !strings.HasPrefix(got, step.want) {
			t.Errorf("%q: got %q, want %q", step.send, got, step.want)
		}
		if step.send == "/join kitchen "+testKey {
			if got := alice.line(); got != "--- topic of kitchen: family only" {
				t.Errorf("after the welcome: %q, want the topic", got)
			}
		}
		alice.sync("done")
	}
	forgive(s)
	bob := dial(t, s)
	if got := bob.send1(`{"name":"bob","mode":"json","room":"kitchen","key":"wrong"}`); got != `{"type":"error","text":"cannot join kitchen: wrong key; you are in lobby"}` {
		t.Errorf("JSON hello with a wrong key: %q", got)
	}
	forgive(s)
	carol := dial(t, s)
	carol.send(`{"name":"carol","room":"kitchen","key":"` + testKey + `"}`)
	carol.until("the welcome", func(l string) bool { return strings.Contains(l, `you are carol in kitchen`) })
}

// TestAdmin: /admin with the admin password; kick, ban (refused at hello,
// then lifted), topic and key for this run, counters; every action in the
// log, no secret.
func TestAdmin(t *testing.T) {
	cfg := authConfig()
	cfg.Password = ""
	cfg.StatsAllow = nil // the counters for admins only
	s, log := startAuth(t, cfg)
	root := join(t, s, "root")
	bob := join(t, s, "bob")
	root.until("bob's join", func(l string) bool { return l == "--- bob joined lobby" })
	for _, step := range []struct{ send, want string }{
		{"/kick bob", "!!! admin only: give the admin password first (/admin PASSWORD)"},
		{"/stats", "!!! /stats is answered for admins and relay.stats_allow only"},
		{"/admin help", "!!! usage: /admin PASSWORD"},
		{"/admin nope", "!!! wrong admin password"},
		{"/forgive", ""},
		{"/admin " + testAdmin, "--- you are an admin; /admin help lists the admin commands"},
		{"/rooms", "--- rooms: lobby (2)"},
		{"/join cellar", "--- you are root in cellar"},
		{"/rooms", "--- rooms: cellar (1), lobby (1)"},
		{"/join kitchen", "--- you are root in kitchen"},
		{"/topic soup at 7", "--- root set the topic of kitchen: soup at 7"},
		{"/key kitchen n3w-key", "--- kitchen has a new key, until the relay restarts; who is in it stays"},
		{"/key lobby x", "!!! the default room cannot have a key"},
		{"/ban bob 1h spam", "--- banned bob until "},
		{"/bans", "--- bans: bob banned until "},
		{"/stats", `{"accepted":`},
	} {
		if step.send == "/forgive" {
			forgive(s)
			continue
		}
		if got := root.send1(step.send); !strings.HasPrefix(got, step.want) {
			t.Errorf("%q: got %q, want %q", step.send, got, step.want)
		}
		root.sync("done")
	}
	bob.until("the ban", func(l string) bool {
		return strings.HasPrefix(l, "!!! banned until ") && strings.HasSuffix(l, " (spam)")
	})
	bob.until("the goodbye", func(l string) bool { return l == "!!! disconnected: banned by an admin" })
	b2 := dial(t, s)
	if got := b2.send1("Bob"); !strings.HasPrefix(got, "!!! the name Bob is banned until ") {
		t.Errorf("a banned name: %q", got)
	}
	if got := root.send1("/unban bob"); got != "--- lifted the ban on bob" {
		t.Errorf("/unban: %q", got)
	}
	b2.enter("Bob")
	b2.sync("in")
	// A network is lifted however it was written, as /ban stored it.
	for _, step := range []struct{ ban, unban string }{
		{"192.0.2.7/24", "192.0.2.7/24"},
		{"::ffff:198.51.100.9", "198.51.100.9"},
		{"2001:DB8::7", "2001:db8::7/128"},
	} {
		root.send1("/ban " + step.ban + " 1h")
		if got := root.send1("/unban " + step.unban); got != "--- lifted the ban on "+step.unban {
			t.Errorf("/ban %s, /unban %s: %q", step.ban, step.unban, got)
		}
	}
	// The key set for this run: the old one is refused, the new one taken.
	forgive(s)
	if got := b2.send1("/join kitchen " + testKey); got != "!!! cannot join kitchen: wrong key" {
		t.Errorf("the configured key after /key: %q", got)
	}
	forgive(s)
	b2.send("/join kitchen n3w-key")
	b2.until("the welcome", func(l string) bool { return strings.HasPrefix(l, "--- you are Bob in kitchen") })
	if got := b2.line(); got != "--- topic of kitchen: soup at 7" {
		t.Errorf("the topic set for this run: %q", got)
	}
	// Kick; ban by address.
	root.sync("bob")
	if got := root.send1("/kick Bob enough"); got != "--- kicked Bob" {
		t.Errorf("/kick: %q", got)
	}
	b2.until("the goodbye", func(l string) bool { return l == "!!! disconnected: kicked by an admin" })
	root.send("/ban 127.0.0.1 10m")
	root.until("the ban", func(l string) bool { return strings.HasPrefix(l, "--- banned 127.0.0.1 until ") })
	c, err := net.DialTimeout("tcp", s.Addr("line").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := &tconn{t: t, c: c, lr: proto.NewLineReader(c, 1<<16)}
	if got := tc.line(); !strings.HasPrefix(got, "!!! refused: banned until ") {
		t.Errorf("a banned address: %q", got)
	}
	if got := s.Stats().Refusals; !maps.Equal(got, map[string]int64{"other": 1}) {
		t.Errorf("refusals: %v, want the ban's as other", got)
	}
	for _, want := range []string{"became an admin", "set the topic of kitchen", "set a new key on kitchen", "banned bob for 1h0m0s: spam",
		"lifted the ban on bob", "kicked Bob (line door): enough", "banned 127.0.0.1 for 10m0s"} {
		if !log.Has(want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if log.Has("n3w-key") {
		t.Error("the log holds the key set by /key")
	}
}

// TestReloadRooms: a reload that changes a room's settings (its key and
// topic, whether it is hidden; its name's case) applies to the next
// /join.
func TestReloadRooms(t *testing.T) {
	cfg := authConfig()
	cfg.Password = ""
	s, _ := startAuth(t, cfg)
	alice := join(t, s, "alice")
	if got := alice.send1("/join kitchen " + testKey); !strings.HasPrefix(got, "--- you are alice in kitchen") {
		t.Fatalf("/join kitchen: %q", got)
	}
	if got := alice.line(); got != "--- topic of kitchen: family only" {
		t.Errorf("the topic: %q", got)
	}
	alice.send1("/join lobby")
	alice.sync("in")
	if got := alice.send1("/rooms"); got != "--- rooms: kitchen (0, key), lobby (1)" {
		t.Errorf("/rooms before the reload: %q", got)
	}
	cfg.Rooms = map[string]config.Room{
		"KITCHEN": {Key: secret.Hash(testNumKey), Topic: "soup at 7", Hidden: true},
	}
	s.Reload(cfg)
	if got := alice.send1("/join kitchen " + testKey); got != "!!! cannot join kitchen: wrong key" {
		t.Errorf("the old key after the reload: %q", got)
	}
	forgive(s)
	if got := alice.send1("/join kitchen " + testNumKey); !strings.HasPrefix(got, "--- you are alice in kitchen") {
		t.Fatalf("the new key after the reload: %q", got)
	}
	if got := alice.line(); got != "--- topic of kitchen: soup at 7" {
		t.Errorf("the topic after the reload: %q", got)
	}
	alice.sync("in")
	if got := alice.send1("/rooms"); got != "--- rooms: lobby (0)" { // kitchen is hidden now
		t.Errorf("/rooms after the reload: %q", got)
	}
}

// TestAdminLoopback: with relay.admin_loopback, a member from loopback is
// an admin without a password; without it, it is not.
func TestAdminLoopback(t *testing.T) {
	cfg := testConfig()
	cfg.AdminLoopback = true
	s, log := startAuth(t, cfg)
	root := join(t, s, "root")
	join(t, s, "bob")
	root.sync("in")
	if got := root.send1("/kick bob"); got != "--- kicked bob" {
		t.Errorf("/kick from loopback: %q", got)
	}
	if !log.Has("admin line 127.0.0.1:") || !log.Has("root: kicked bob (line door)") {
		t.Error("the kick is not in the log")
	}
	root.until("bob's part", func(l string) bool { return l == "--- bob left lobby (kicked by an admin)" })
	cfg.AdminLoopback = false
	s.Reload(cfg)
	if got := root.send1("/bans"); got != "!!! admin only: give the admin password first (/admin PASSWORD)" {
		t.Errorf("/bans without admin_loopback: %q", got)
	}
	if got := root.send1("/admin x"); got != "!!! admin commands are off: the relay has no admin password (relay.admin_password)" {
		t.Errorf("/admin without an admin password: %q", got)
	}
}

// TestChecksOffLoop: a secret being checked holds no worker of the loop.
// While the checks of more members than the loop has workers are held
// (a slow hash), the others' messages flow; no more than hashers are
// checked at once; each checking member's next line waits for its
// check, and comes after its answer; the brake on guessing still holds.
func TestChecksOffLoop(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	var in, most atomic.Int32
	match = func(hash, given string) bool {
		n := in.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		in.Add(-1)
		return secret.Match(hash, given)
	}
	t.Cleanup(func() { match = secret.Match }) // after the relay is shut down
	cfg := testConfig()
	cfg.AdminPassword = secret.Hash(testAdmin)
	s, _ := startAuth(t, cfg)
	t.Cleanup(free) // before it is shut down
	alice, bob := join(t, s, "alice"), join(t, s, "bob")
	n := max(runtime.GOMAXPROCS(0), hashers) + 1
	var checkers []*tconn
	for i := range n {
		c := join(t, s, fmt.Sprintf("c%d", i))
		checkers = append(checkers, c)
		c.send("/admin wrong", "after", "/ping done")
	}
	testkit.WaitFor(t, 10*time.Second, "checks under way", func() bool { return in.Load() >= hashers })
	alice.send("while checking")
	for _, l := range bob.upTo("alice's message", func(l string) bool { return l == "alice: while checking" }) {
		if strings.HasSuffix(l, ": after") {
			t.Errorf("bob saw %q before the checks were done", l)
		}
	}
	free()
	for _, c := range checkers {
		got := c.upTo("its pong", func(l string) bool { return l == "--- pong done" })
		if i := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "!!! ") && strings.Contains(l, "wrong") }); i < 0 {
			t.Errorf("%s: no answer to /admin before the answer to its next lines: %q", c.name, got)
		}
	}
	if m := most.Load(); m > hashers {
		t.Errorf("%d secrets checked at once, want %d at most", m, hashers)
	}
	if st := s.Stats(); st.BadSecret > hashers || st.BadSecret+st.Slowed != int64(n) {
		t.Errorf("%d wrong secrets and %d slowed of %d tries from one address, want %d wrong at most", st.BadSecret, st.Slowed, n, hashers)
	}
}

// TestCheckWaitingLeaves: a member kicked while its secret waits for its
// turn to be checked is not checked at all: its secret is never hashed
// and it does not become an admin after it left.
func TestCheckWaitingLeaves(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	var calls atomic.Int32
	match = func(hash, given string) bool {
		calls.Add(1)
		<-release
		return secret.Match(hash, given)
	}
	t.Cleanup(func() { match = secret.Match })
	cfg := testConfig()
	cfg.AdminPassword = secret.Hash(testAdmin)
	s, log := startAuth(t, cfg)
	t.Cleanup(free)
	for i := range hashers {
		join(t, s, fmt.Sprintf("c%d", i)).send("/admin wrong")
	}
	testkit.WaitFor(t, 10*time.Second, "the checks under way", func() bool { return calls.Load() == hashers })
	late := join(t, s, "late")
	late.send("/admin " + testAdmin)
	testkit.WaitFor(t, 10*time.Second, "late to wait for its turn", func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*Server).hashTurn")
	})
	m := s.lookup("late")
	m.kick(byKicked)
	testkit.WaitFor(t, 10*time.Second, "late to leave", func() bool { return s.lookup("late") == nil })
	free()
	testkit.WaitFor(t, 10*time.Second, "the two checks to end", func() bool { return s.Stats().BadSecret+s.Stats().Slowed == hashers })
	if n := calls.Load(); n != hashers {
		t.Errorf("%d secrets hashed, want %d: late's too", n, hashers)
	}
	if m.admin.Load() || log.Has("late: became an admin") {
		t.Error("late became an admin after it left")
	}
}

// TestAdminRoomSettingsGo: an admin's key and topic of a room not in
// relay.rooms go with the room when it is dropped to make space (/key
// makes the room it names), so they are bounded by max_rooms; those of a
// room of relay.rooms stay.
func TestAdminRoomSettingsGo(t *testing.T) {
	cfg := authConfig()
	cfg.Password = ""
	cfg.Limits.MaxRooms = 3
	s, _ := startAuth(t, cfg)
	root, bob := join(t, s, "root"), join(t, s, "bob")
	step := func(c *tconn, send, want string) {
		t.Helper()
		c.send(send)
		got := c.sync("done")
		if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("%s %q: got %q, want %q", c.name, send, got, want)
		}
	}
	step(root, "/admin "+testAdmin, "--- you are an admin")
	step(root, "/join adhoc", "--- you are root in adhoc")
	step(root, "/topic soup at 7", "--- root set the topic of adhoc: soup at 7")
	step(root, "/key adhoc k1", "--- adhoc has a new key")
	step(root, "/key ghost k2", "--- ghost has a new key") // made: it holds its key
	step(root, "/key attic k3", "--- attic has a new key") // in relay.rooms
	step(root, "/part", "--- you are root in lobby")
	step(bob, "/join attic k3", "--- you are bob in attic") // adhoc or ghost goes
	step(bob, "/join new0", "--- you are bob in new0")      // the other goes
	step(bob, "/join new1", "--- you are bob in new1")      // attic goes
	step(bob, "/join attic "+testNumKey, "!!! cannot join attic: wrong key")
	forgive(s)
	step(bob, "/join attic k3", "--- you are bob in attic")
	step(bob, "/join adhoc", "--- you are bob in adhoc")
	step(bob, "/topic", "--- adhoc has no topic")
	s.auth.mu.Lock()
	keys, topics := slices.Sorted(maps.Keys(s.auth.keys)), slices.Sorted(maps.Keys(s.auth.topics))
	s.auth.mu.Unlock()
	if !slices.Equal(keys, []string{"attic"}) || len(topics) != 0 {
		t.Errorf("admins' keys of %q and topics of %q, want keys of [attic] only", keys, topics)
	}
}
