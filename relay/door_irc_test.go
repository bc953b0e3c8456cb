//go:build !minimal

package relay

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
)

// ircConfig is testConfig with the IRC door on.
func ircConfig() config.Config {
	cfg := testConfig()
	cfg.Listen.IRC = "127.0.0.1:0"
	return cfg
}

// ircDialers are the ways a test reaches the IRC door: a socket (the
// build's driver) and a pipe (a connDriver).
var ircDialers = []struct {
	name string
	dial func(testing.TB, *Server) *tconn
}{{"socket", dialIRC}, {"pipe", dialIRCPipe}}

func dialIRC(t testing.TB, s *Server) *tconn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr("irc").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ircGreeted(t, c)
}

func dialIRCPipe(t testing.TB, s *Server) *tconn {
	t.Helper()
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	ircDoor{s}.serve(srv, nil)
	return ircGreeted(t, cli)
}

func ircGreeted(t testing.TB, c net.Conn) *tconn {
	t.Helper()
	tc := &tconn{t: t, c: c, lr: proto.NewLineReader(c, 1<<16)}
	if g := tc.line(); !strings.HasPrefix(g, ":roomrelay NOTICE * :") {
		t.Fatalf("IRC greeting %q", g)
	}
	return tc
}

// register registers tc as nick (asking for server-time when tags is
// set) and returns what it got up to the end of its channel's names.
func (tc *tconn) register(nick string, tags bool) []string {
	tc.t.Helper()
	tc.name = nick
	if tags {
		tc.send("CAP LS 302", "NICK "+nick, "USER "+nick+" 0 * :"+nick, "CAP REQ :server-time", "CAP END")
	} else {
		tc.send("NICK "+nick, "USER "+nick+" 0 * :"+nick)
	}
	return tc.upTo("the names", func(l string) bool { return strings.Contains(l, " 366 ") })
}

// ircSync pings the relay and returns what came before the pong.
func (tc *tconn) ircSync(token string) []string {
	tc.t.Helper()
	tc.send("PING " + token)
	got := tc.upTo("the pong", func(l string) bool { return strings.HasSuffix(l, "PONG roomrelay "+token) })
	return got[:len(got)-1]
}

func TestIRCChat(t *testing.T) {
	for _, d := range ircDialers {
		t.Run(d.name, func(t *testing.T) {
			s := startServer(t, ircConfig())
			alice := join(t, s, "alice")
			first := join(t, s, "first client")
			bob := d.dial(t, s)
			reg := bob.register("bob", true)
			want := []string{
				":roomrelay CAP * LS server-time",
				":roomrelay CAP bob ACK server-time",
				":roomrelay 001 bob :Welcome to roomrelay, bob",
			}
			for i, w := range want {
				if i >= len(reg) || reg[i] != w {
					t.Fatalf("registration %q, want it to start with %q", reg, want)
				}
			}
			tail := strings.Join(reg[len(reg)-4:], "\n")
			if want := ":bob!bob@roomrelay JOIN #lobby\n" +
				":roomrelay 331 bob #lobby :No topic is set\n" +
				":roomrelay 353 bob = #lobby :"; !strings.HasPrefix(tail, want) {
				t.Fatalf("join lines\n%s\nwant them to start\n%s", tail, want)
			}
			names := strings.Fields(strings.SplitN(reg[len(reg)-2], " :", 2)[1])
			for _, n := range []string{"alice", "first_client", "bob"} {
				if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+n+" ") {
					t.Errorf("names %q lack %s", names, n)
				}
			}
			alice.until("bob's join", func(l string) bool { return l == "--- bob joined lobby" })

			alice.send("hi bob")
			l := bob.until("alice's message", func(l string) bool { return strings.Contains(l, "PRIVMSG") })
			if !regexp.MustCompile(`^@time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z :alice!alice@roomrelay PRIVMSG #lobby :hi bob$`).MatchString(l) {
				t.Errorf("bob got %q", l)
			}

			bob.send("PRIVMSG #lobby :hello \x02alice\x02", "PRIVMSG #lobby :\x01ACTION waves\x01")
			if got := alice.messages(2); got[0] != "bob: hello alice" || got[1] != "* bob waves" {
				t.Errorf("alice got %q", got)
			}
			bob.send("PRIVMSG first_client :psst")
			if l := first.until("the private message", func(l string) bool { return strings.HasPrefix(l, "[private]") }); l != "[private] bob: psst" {
				t.Errorf("first client got %q", l)
			}
			first.send("/msg bob hey")
			if l := bob.until("first client's message", func(l string) bool { return strings.Contains(l, "PRIVMSG bob") }); l != ":first_client!first_client@roomrelay PRIVMSG bob :hey" {
				t.Errorf("bob got %q", l)
			}

			// Errors are numerics.
			bob.send("PRIVMSG nobody :x", "PRIVMSG #kitchen :x", "FROB", "NICK x y", "PRIVMSG alice :\x01ACTION pokes\x01")
			got := bob.ircSync("p1")
			for i, w := range []string{
				":roomrelay 401 bob nobody :No such nick/channel",
				":roomrelay 404 bob #kitchen :Cannot send to channel: you are in #lobby (one room at a time)",
				":roomrelay 421 bob FROB :Unknown command",
				":roomrelay NOTICE #lobby :error: a name cannot change: reconnect with the nick x",
				":roomrelay NOTICE #lobby :error: an action goes to the room only, not to alice; not sent",
			} {
				if i >= len(got) || got[i] != w {
					t.Errorf("line %d: %q, want %q", i, got, w)
				}
			}

			// A nick held through any door is taken.
			eve := d.dial(t, s)
			eve.send("NICK First_Client", "USER e 0 * :e")
			if l := eve.line(); l != ":roomrelay 433 * First_Client :Nickname is already in use (by a member of any door)" {
				t.Errorf("eve got %q", l)
			}

			// One room at a time: JOIN moves bob, PART takes him back.
			bob.send("JOIN #kitchen,#attic")
			got = bob.ircSync("p2")
			for i, w := range []string{
				":roomrelay 405 bob #attic :You are in one room at a time: #kitchen only",
				":bob!bob@roomrelay PART #lobby :joined #kitchen",
				":bob!bob@roomrelay JOIN #kitchen",
			} {
				if i >= len(got) || got[i] != w {
					t.Errorf("line %d: %q, want %q", i, got, w)
				}
			}
			if l := alice.until("bob's part", func(l string) bool { return strings.HasPrefix(l, "--- bob") }); l != "--- bob left lobby (joined kitchen)" {
				t.Errorf("alice got %q", l)
			}
			bob.send("PART #kitchen")
			if l := bob.until("the join", func(l string) bool { return strings.Contains(l, " JOIN ") }); l != ":bob!bob@roomrelay JOIN #lobby" {
				t.Errorf("bob got %q", l)
			}

			bob.send("LIST")
			got = bob.upTo("the list", func(l string) bool { return strings.Contains(l, " 323 ") })
			if want := []string{":roomrelay 321 bob Channel :Users  Name", ":roomrelay 322 bob #kitchen 0 :", ":roomrelay 322 bob #lobby 3 :", ":roomrelay 323 bob :End of /LIST"}; strings.Join(got[len(got)-4:], "\n") != strings.Join(want, "\n") {
				t.Errorf("LIST gave %q", got)
			}

			bob.send("QUIT :gone")
			if l := bob.until("the end", func(l string) bool { return strings.HasPrefix(l, "ERROR") }); l != "ERROR :Closing link: bye" {
				t.Errorf("bob got %q", l)
			}
			if l := alice.until("bob's part", func(l string) bool { return strings.HasPrefix(l, "--- bob left") }); l != "--- bob left lobby (quit)" {
				t.Errorf("alice got %q", l)
			}
		})
	}
}

// TestIRCHistory: JOIN replays the room's recent messages as PRIVMSG from
// their senders, with their time in the text or, for a client that asked
// for server-time, in tags; joins and parts are not replayed.
func TestIRCHistory(t *testing.T) {
	s := startServer(t, ircConfig())
	alice := join(t, s, "alice")
	for i := range 3 {
		alice.send(fmt.Sprintf("message %d", i))
	}
	alice.sync("x")
	for _, tags := range []bool{false, true} {
		c := dialIRC(t, s)
		nick := fmt.Sprintf("c%v", tags)
		c.register(nick, tags)
		var got []string
		for _, l := range c.ircSync("h") {
			if strings.Contains(l, "PRIVMSG") {
				got = append(got, l)
			}
		}
		if len(got) != 3 {
			t.Fatalf("%s: replay %q, want 3 messages", nick, got)
		}
		re := regexp.MustCompile(`^:alice!alice@roomrelay PRIVMSG #lobby :\[\d\d:\d\d\] message (\d)$`)
		if tags {
			re = regexp.MustCompile(`^@time=\S+ :alice!alice@roomrelay PRIVMSG #lobby :message (\d)$`)
		}
		for i, l := range got {
			if m := re.FindStringSubmatch(l); m == nil || m[1] != fmt.Sprint(i) {
				t.Errorf("%s: replayed %q, want it to match %s", nick, l, re)
			}
		}
	}
}

// TestIRCLong: a message longer than an IRC line reaches IRC members in
// parts of at most 512 bytes.
func TestIRCLong(t *testing.T) {
	s := startServer(t, ircConfig())
	alice := join(t, s, "alice")
	bob := dialIRC(t, s)
	bob.register("bob", false)
	text := strings.Repeat("ü", 400) // 800 bytes
	alice.send(text)
	var parts []string
	for len(strings.Join(parts, "")) < len(text) {
		l := bob.until("a part", func(l string) bool { return strings.Contains(l, "PRIVMSG") })
		if len(l)+2 > proto.MaxIRC {
			t.Fatalf("%d-byte line", len(l)+2)
		}
		parts = append(parts, strings.TrimPrefix(l, ":alice!alice@roomrelay PRIVMSG #lobby :"))
	}
	if got := strings.Join(parts, ""); got != text || len(parts) != 2 {
		t.Errorf("%d parts put together are %q", len(parts), got)
	}
}

// TestIRCRegistration: commands before registration are refused, bad
// nicks are answered, and a connection that never registers is told why.
func TestIRCRegistration(t *testing.T) {
	cfg := ircConfig()
	cfg.Timeouts.Handshake = config.Duration(300 * time.Millisecond)
	s := startServer(t, cfg)
	c := dialIRC(t, s)
	c.send("JOIN #x", "NICK", "NICK bad!nick", "USER u", "PING :tok")
	for _, w := range []string{
		":roomrelay 451 * :You have not registered",
		":roomrelay 431 * :No nickname given",
		":roomrelay 432 * bad!nick :invalid name: name holds \"!\"",
		":roomrelay 461 * USER :Not enough parameters",
		":roomrelay PONG roomrelay tok",
	} {
		if l := c.line(); !strings.HasPrefix(l, strings.TrimSuffix(w, `holds "!"`)) {
			t.Errorf("got %q, want %q", l, w)
		}
	}
	if l := c.until("the end", func(l string) bool { return strings.HasPrefix(l, "ERROR") }); l != "ERROR :Closing link: no name within 300ms; bye" {
		t.Errorf("got %q", l)
	}
}

// TestIRCClientII: a real IRC client, ii (Debian's package ii), chats
// with a line-door member through the relay: it registers, is put in
// #lobby and sees the room's recent history there, says something the
// line member reads, and reads what the line members say, a name with a
// space among them as first_client. ii writes each channel's traffic to
// DIR/SERVER/#channel/out and reads what to send from the FIFO in beside
// it.
func TestIRCClientII(t *testing.T) {
	ii, err := exec.LookPath("ii")
	if err != nil {
		t.Skip("ii is not installed (apt-get install ii): the test with a real IRC client is skipped")
	}
	s := startServer(t, ircConfig())
	alice := join(t, s, "alice")
	alice.send("before ii came")
	alice.sync("a")

	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(s.Addr("irc").String())
	cmd := exec.Command(ii, "-s", "127.0.0.1", "-p", port, "-n", "iiuser", "-i", dir)
	var out testkit.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("ii said: %q", out.String())
	})
	lobby := filepath.Join(dir, "127.0.0.1", "#lobby")
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(lobby, name))
		return string(b)
	}
	has := func(what, sub string) {
		t.Helper()
		waitFor(t, 10*time.Second, what, func() bool { return strings.Contains(read("out"), sub) })
	}
	has("the history on joining", "<alice> [")
	if !regexp.MustCompile(`<alice> \[\d\d:\d\d\] before ii came`).MatchString(read("out")) {
		t.Errorf("ii's #lobby shows the history as\n%s", read("out"))
	}
	alice.until("ii's join", func(l string) bool { return l == "--- iiuser joined lobby" })

	in, err := os.OpenFile(filepath.Join(lobby, "in"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fmt.Fprintln(in, "hello from ii")
	if l := alice.until("ii's message", func(l string) bool { return strings.HasPrefix(l, "iiuser") }); l != "iiuser: hello from ii" {
		t.Errorf("alice got %q", l)
	}

	first := join(t, s, "first client")
	alice.send("hi ii")
	first.send("me too")
	has("alice's message", "<alice> hi ii")
	has("first client's message", "<first_client> me too")
	if n := strings.Count(read("out"), "before ii came"); n != 1 {
		t.Errorf("ii's #lobby shows the history %d times:\n%s", n, read("out"))
	}
}

// TestIRCRefused: a full relay refuses an IRC connection with an ERROR.
func TestIRCRefused(t *testing.T) {
	cfg := ircConfig()
	cfg.Limits.MaxClients = 1
	s := startServer(t, cfg)
	join(t, s, "alice")
	c, err := net.DialTimeout("tcp", s.Addr("irc").String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := &tconn{t: t, c: c, lr: proto.NewLineReader(c, 1<<16)}
	if l := tc.line(); l != "ERROR :Closing link: refused: relay full (1 clients)" {
		t.Errorf("got %q", l)
	}
}

// BenchmarkCollectIRC is BenchmarkCollect for members of the IRC door,
// with server-time tags: each event's IRC lines are made once, by the
// first member that collects it, and shared by the others, so a delivery
// allocates nothing; allocs/op are the events' own.
func BenchmarkCollectIRC(b *testing.B) {
	benchCollect(b, func(m *member) {
		c := &ircClient{m: m}
		c.serverTime.Store(true)
		m.codec = c
	})
}

// TestIRCCollectCounts is TestCollectCounts for a member of the IRC door,
// with server-time tags (a buffer for each tag) and without.
func TestIRCCollectCounts(t *testing.T) {
	for _, tags := range []bool{false, true} {
		t.Run(fmt.Sprint("tags ", tags), func(t *testing.T) {
			bufs := checkCollectCounts(t, func(m *member) {
				c := &ircClient{m: m}
				c.serverTime.Store(tags)
				m.codec = c
			})
			if got := strings.Count(string(bytes.Join(bufs, nil)), "@time="); tags && got != 3 || !tags && got != 0 {
				t.Errorf("%d time tags in %q", got, bufs)
			}
		})
	}
}

// TestIRCNamesSplit: a room's names take as many 353 replies as it needs,
// each within 512 bytes.
func TestIRCNamesSplit(t *testing.T) {
	s := New(testConfig(), t.Logf)
	r, err := s.room("lobby")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 60 {
		m := s.newMember(nil, "test", newTestDriver())
		m.name = fmt.Sprintf("member with long name%02d", i)
		r.add(m, nil, 0)
		want = append(want, proto.IRCName(m.name))
	}
	c := &ircClient{m: s.newMember(nil, "test", newTestDriver())}
	var got []string
	lines := strings.SplitAfter(string(c.names(nil, "bob", "lobby")), "\r\n")
	for _, l := range lines[:len(lines)-2] {
		if len(l) > proto.MaxIRC || !strings.HasPrefix(l, ":roomrelay 353 bob = #lobby :") {
			t.Errorf("%d-byte reply %.50q...", len(l), l)
		}
		got = append(got, strings.Fields(strings.SplitN(l, " :", 2)[1])...)
	}
	if len(lines) < 4 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%d replies give names %q", len(lines)-2, got)
	}
	if end := lines[len(lines)-2]; end != ":roomrelay 366 bob #lobby :End of /NAMES list.\r\n" {
		t.Errorf("last reply %q", end)
	}
}

// TestIRCPing: the relay pings a quiet IRC client every
// timeouts.keepalive, on every driver, and the client's PONG keeps it.
func TestIRCPing(t *testing.T) {
	for _, d := range ircDialers {
		t.Run(d.name, func(t *testing.T) {
			cfg := ircConfig()
			cfg.Timeouts.Keepalive = config.Duration(time.Second)
			s := startServer(t, cfg)
			bob := d.dial(t, s)
			bob.register("bob", false)
			for range 2 {
				if l := bob.until("a ping", func(l string) bool { return strings.HasPrefix(l, "PING") }); l != "PING roomrelay" {
					t.Errorf("ping %q", l)
				}
				bob.send("PONG roomrelay")
			}
			if s.lookup("bob") == nil {
				t.Error("bob gone")
			}
		})
	}
}
