package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
	"strings"
	"sync"
	"testing"
	"time"

	"roomrelay/proto"
	"roomrelay/relay"
	"roomrelay/relay/secret"
)

// proxy forwards connections to addr and can cut them all, only the
// clients' side while it holds the relay's, or refuse new ones.
type proxy struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn // client's side, relay's side, by pairs
	n        int        // connections accepted
	holding  bool       // a client's side ending leaves the relay's open
	refusing bool       // close new connections unforwarded
}

func newProxy(t *testing.T, addr string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			refusing := p.refusing
			p.mu.Unlock()
			if refusing {
				c.Close()
				continue
			}
			s, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.n++
			p.mu.Unlock()
			go func() {
				io.Copy(s, c)
				p.mu.Lock()
				defer p.mu.Unlock()
				if !p.holding {
					s.Close()
				}
			}()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) hold(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = on
}

func (p *proxy) refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = on
}

// cutClients closes the clients' side of every connection.
func (p *proxy) cutClients() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < len(p.conns); i += 2 {
		p.conns[i].Close()
	}
}

func (p *proxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// member is a plain line-protocol user, as from nc.
type member struct {
	c  net.Conn
	lr *proto.LineReader
}

func dialMember(t *testing.T, addr, name string) *member {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &member{c, proto.NewLineReader(c, 4096)}
	fmt.Fprintf(c, "%s\n", name)
	m.until(t, "--- you are "+name)
	return m
}

func (m *member) until(t *testing.T, prefix string) string {
	t.Helper()
	for {
		m.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := m.lr.ReadLine()
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(string(l), prefix) {
			return string(l)
		}
	}
}

func startRelay(t *testing.T, tweaks ...func(*config.Config)) *relay.Server {
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0"}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	return startRelayConfig(t, cfg)
}

// startRelayConfig starts a relay for cfg, stopped when the test ends.
func startRelayConfig(t *testing.T, cfg config.Config) *relay.Server {
	s := relay.New(cfg, t.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func clientConfig(server, name string) config.ClientConfig {
	cfg := config.Default().Client
	cfg.Server, cfg.Name = server, name
	cfg.Retry = config.Duration(10 * time.Millisecond)
	cfg.RetryMax = config.Duration(100 * time.Millisecond)
	return cfg
}

// Two nc users and one client chat; each sees the others' messages once.
func TestChatAndResume(t *testing.T) {
	s := startRelay(t)
	addr := s.Addr("line").String()
	alice := dialMember(t, addr, "alice")
	bob := dialMember(t, addr, "bob")
	p := newProxy(t, addr)

	in, inw := io.Pipe()
	out := &testkit.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs testkit.Buffer
	con := &console{out: out, logf: logs.Logf} // not quiet: the relay's notices are shown, as status
	go func() { done <- run(ctx, clientConfig(p.ln.Addr().String(), "carol"), in, con, false) }()
	alice.until(t, "--- carol joined lobby")

	fmt.Fprintln(inw, "hello from carol")
	if l := alice.until(t, "carol"); l != "carol: hello from carol" {
		t.Errorf("alice got %q", l)
	}
	bob.until(t, "carol: hello from carol")
	fmt.Fprintln(alice.c, "hi carol")
	testkit.WaitFor(t, 10*time.Second, "carol to see alice", func() bool { return strings.Contains(out.String(), "alice: hi carol\n") })

	// The connection drops; what is said meanwhile arrives once it is back.
	p.cut()
	for k := range 3 {
		fmt.Fprintf(alice.c, "missed %d\n", k)
	}
	testkit.WaitFor(t, 10*time.Second, "carol to reconnect and catch up", func() bool { return strings.Contains(out.String(), "alice: missed 2\n") })
	if p.accepted() < 2 {
		t.Errorf("the client did not reconnect")
	}
	fmt.Fprintln(bob.c, "after")
	testkit.WaitFor(t, 10*time.Second, "bob's line", func() bool { return strings.Contains(out.String(), "bob: after\n") })
	for _, want := range []string{"alice: hi carol\n", "alice: missed 0\n", "alice: missed 1\n", "alice: missed 2\n", "bob: after\n"} {
		if n := strings.Count(out.String(), want); n != 1 {
			t.Errorf("%q shown %d times:\n%s", want, n, out)
		}
	}
	if strings.Contains(out.String(), "hello from carol") {
		t.Errorf("carol's own line was shown back:\n%s", out)
	}

	// End of input: the client quits cleanly after its last line went out.
	fmt.Fprintln(inw, "last words")
	inw.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client did not end at end of input")
	}
	cancel()
	alice.until(t, "carol: last words")
}

// testkit.Buffer is a client's status: each logf call a line.

// A taken name from a pipe ends the client with an error, at once.
func TestNameTakenPiped(t *testing.T) {
	s := startRelay(t)
	addr := s.Addr("line").String()
	dialMember(t, addr, "dave")
	var logs testkit.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), clientConfig(addr, "dave"), strings.NewReader("hi\n"), io.Discard, logs.Logf)
	}()
	select {
	case err := <-done:
		if want := "client: the name dave is taken on " + addr + ": choose another with -name"; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not end")
	}
	if logs.String() != "" {
		t.Errorf("a quiet client logged:\n%s", logs.String())
	}
}

// At a terminal, a taken name is asked again; an invalid answer too.
func TestNameTakenAsked(t *testing.T) {
	s := startRelay(t)
	addr := s.Addr("line").String()
	holder := dialMember(t, addr, "dave")
	in, inw := io.Pipe()
	defer inw.Close()
	var logs testkit.Buffer
	con := &console{out: io.Discard, logf: logs.Logf}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, clientConfig(addr, "dave"), in, con, true) }()
	testkit.WaitFor(t, 10*time.Second, "the question", func() bool { return strings.Contains(logs.String(), "type another name") })
	fmt.Fprintln(inw, "no!name")
	testkit.WaitFor(t, 10*time.Second, "the second question", func() bool { return strings.Count(logs.String(), "type another name") == 2 })
	fmt.Fprintln(inw, "erin")
	holder.until(t, "--- erin joined lobby")
	fmt.Fprintln(inw, "hi, I am erin")
	holder.until(t, "erin: hi, I am erin")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	want := "client: the name dave is taken; type another name\n" +
		"client: invalid name: name may hold only letters, digits, spaces, _ - and . (not '!'); type another name\n"
	if got := logs.String(); !strings.HasPrefix(got, want) {
		t.Errorf("status:\n%s\nwant it to start with:\n%s", got, want)
	}
}

// After a dropped connection the relay may still hold the client's own
// name for a while: then the client retries, quietly.
func TestNameTakenOnReconnect(t *testing.T) {
	s := startRelay(t)
	addr := s.Addr("line").String()
	alice := dialMember(t, addr, "alice")
	p := newProxy(t, addr)
	in, inw := io.Pipe()
	defer inw.Close()
	out := &testkit.Buffer{}
	var logs testkit.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, clientConfig(p.ln.Addr().String(), "dave"), in, out, logs.Logf) }()
	fmt.Fprintln(inw, "hi")
	alice.until(t, "dave: hi") // dave is past the hello
	p.hold(true)               // the relay's side stays open: dave is still there
	p.cutClients()
	testkit.WaitFor(t, 10*time.Second, "a reconnect to be refused", func() bool { return p.accepted() >= 3 })
	p.hold(false)
	p.cut()
	alice.until(t, "--- dave left lobby")
	alice.until(t, "--- dave joined lobby")
	fmt.Fprintln(alice.c, "welcome back")
	testkit.WaitFor(t, 10*time.Second, "dave to see alice", func() bool { return strings.Contains(out.String(), "alice: welcome back\n") })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if logs.String() != "" {
		t.Errorf("a quiet client logged:\n%s", logs.String())
	}
}

// Chat goes to the output, status to the log. From a pipe the client is
// quiet: no replay, no notices; the relay's errors still show. At a
// terminal it shows the replay and every notice.
func TestOutputRouting(t *testing.T) {
	s := startRelay(t)
	addr := s.Addr("line").String()
	alice := dialMember(t, addr, "alice")
	fmt.Fprintln(alice.c, "before anyone came")
	fmt.Fprintln(alice.c, "/ping 1")
	alice.until(t, "--- pong 1") // the message is in the history
	for _, interactive := range []bool{false, true} {
		t.Run(map[bool]string{false: "piped", true: "terminal"}[interactive], func(t *testing.T) {
			name := map[bool]string{false: "nas", true: "carol"}[interactive]
			in, inw := io.Pipe()
			out := &testkit.Buffer{}
			var logs testkit.Buffer
			con := &console{out: out, logf: logs.Logf, quiet: !interactive}
			done := make(chan error, 1)
			go func() { done <- run(context.Background(), clientConfig(addr, name), in, con, interactive) }()
			alice.until(t, "--- "+name+" joined lobby")
			fmt.Fprintln(alice.c, "hello "+name)
			fmt.Fprintln(alice.c, "/me waves")
			fmt.Fprintln(alice.c, "/msg "+name+" psst")
			testkit.WaitFor(t, 10*time.Second, "the private message", func() bool { return strings.Contains(out.String(), "[private] alice: psst\n") })
			fmt.Fprintln(inw, "/nonsense")
			testkit.WaitFor(t, 10*time.Second, "the relay's error", func() bool { return strings.Contains(logs.String(), "!!! ") })
			inw.Close()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			// At a terminal, the replay comes first: the room's history.
			chat := "alice: hello " + name + "\n* alice waves\n[private] alice: psst\n"
			got, replay := out.String(), ""
			if interactive {
				replay, got, _ = strings.Cut(got, "--- nas left lobby (quit)\n")
			}
			if got != chat || interactive != strings.Contains(replay, "alice: before anyone came\n") {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), chat)
			}
			status := logs.String()
			for _, l := range strings.Split(strings.TrimSuffix(status, "\n"), "\n") {
				notice := strings.HasPrefix(l, "--- ")
				if !strings.HasPrefix(l, "!!! ") && !(notice && interactive) {
					t.Errorf("status line %q", l)
				}
			}
			if interactive && (!strings.Contains(status, "--- you are carol in lobby") || !strings.Contains(status, "--- bye")) {
				t.Errorf("no welcome or bye in the status:\n%s", status)
			}
		})
	}
}

func TestBadNameIsFatal(t *testing.T) {
	err := Run(context.Background(), clientConfig("127.0.0.1:1", "no!name"), strings.NewReader(""), io.Discard, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "client name") {
		t.Errorf("err = %v", err)
	}
}

// TestRelayRestart: after a relay restart the room has another epoch, and
// the client, resuming with its old epoch and sequence number, is shown
// everything posted since, though the new numbers passed its old one
// before it was back (a resume by number alone skipped those).
func TestRelayRestart(t *testing.T) {
	const before, after = 10, 15 // after: more events than there were before
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0"}
	first := relay.New(cfg, t.Logf)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	addr := first.Addr("line").String()
	p := newProxy(t, addr)
	alice := dialMember(t, addr, "alice")
	out := &testkit.Buffer{}
	in, inw := io.Pipe()
	defer inw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs testkit.Buffer
	con := &console{out: out, logf: logs.Logf} // not quiet: the relay's notices are shown, as status
	go func() { done <- run(ctx, clientConfig(p.ln.Addr().String(), "carol"), in, con, false) }()
	alice.until(t, "--- carol joined lobby")
	for k := range before {
		fmt.Fprintf(alice.c, "before %d\n", k)
	}
	testkit.WaitFor(t, 10*time.Second, "the messages before", func() bool { return strings.Contains(out.String(), fmt.Sprintf("alice: before %d\n", before-1)) })

	// The relay stops; the client is kept out until the new one has
	// gone past the client's last sequence number.
	p.refuse(true)
	alice.c.Close() // or the relay waits a second for her to hang up
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	first.Shutdown(sctx)
	scancel()
	cfg.Listen.Line = addr
	second := relay.New(cfg, t.Logf)
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		second.Shutdown(sctx)
	}()
	bob := dialMember(t, addr, "bob")
	for k := range after {
		fmt.Fprintf(bob.c, "after %d\n", k)
	}
	fmt.Fprintf(bob.c, "/ping posted\n")
	bob.until(t, "--- pong posted")
	p.refuse(false)

	bob.until(t, "--- carol joined lobby")
	testkit.WaitFor(t, 10*time.Second, "the last message after the restart", func() bool {
		return strings.Contains(out.String(), fmt.Sprintf("bob: after %d\n", after-1))
	})
	for k := range after {
		if want := fmt.Sprintf("bob: after %d\n", k); strings.Count(out.String(), want) != 1 {
			t.Errorf("%q not shown once:\n%s", want, out)
		}
	}
	if n := strings.Count(out.String(), "alice: before 0\n"); n != 1 {
		t.Errorf("a message from before the restart shown %d times:\n%s", n, out)
	}
	if !strings.Contains(logs.String(), "--- the relay restarted (or lobby was made anew) since resume point ") {
		t.Errorf("no restart notice in the status lines:\n%s", logs.String())
	}
	cancel()
	<-done
}

func TestGivesUpAfterInputEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there
	cfg := clientConfig(addr, "nas")
	cfg.RetryMax = config.Duration(50 * time.Millisecond)
	err = Run(context.Background(), cfg, strings.NewReader("backup done\n"), io.Discard, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "gave up after the input ended") || !strings.HasSuffix(err.Error(), "; 1 input line not sent") {
		t.Errorf("err = %v", err)
	}
}

// TestPasswordAndKey: the client sends client.password and client.key in
// its hello, enters the keyed room, and reconnects into it with the key;
// a wrong password ends it with the relay's words.
func TestPasswordAndKey(t *testing.T) {
	s := startRelay(t, func(cfg *config.Config) {
		cfg.Password = secret.Hash("pw one")
		cfg.Rooms = map[string]config.Room{"kitchen": {Key: secret.Hash("4242")}}
	})
	addr := s.Addr("line").String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	alice := &member{c, proto.NewLineReader(c, 4096)}
	fmt.Fprintln(c, "/pass pw one")
	fmt.Fprintln(c, "alice")
	alice.until(t, "--- you are alice in lobby")
	fmt.Fprintln(c, "/join kitchen 4242")
	alice.until(t, "--- you are alice in kitchen")

	p := newProxy(t, addr)
	ok := clientConfig(p.ln.Addr().String(), "erin")
	ok.Password, ok.Room, ok.Key = "pw one", "kitchen", "4242"
	in, inw := io.Pipe()
	out := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), ok, in, out, t.Logf) }()
	alice.until(t, "--- erin joined kitchen")
	fmt.Fprintln(c, "hi erin")
	testkit.WaitFor(t, 10*time.Second, "erin in the kitchen", func() bool { return strings.Contains(out.String(), "alice: hi erin\n") })
	p.cut()
	fmt.Fprintln(c, "while you were away")
	defer func() {
		if t.Failed() {
			t.Logf("erin shows:\n%s", out.String())
		}
	}()
	testkit.WaitFor(t, 10*time.Second, "erin back in the kitchen", func() bool { return strings.Contains(out.String(), "alice: while you were away\n") })
	fmt.Fprintln(inw, "back")
	alice.until(t, "erin: back")
	inw.Close()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	wrong := clientConfig(addr, "erin")
	wrong.Password = "pw two"
	err = Run(context.Background(), wrong, strings.NewReader("hi\n"), io.Discard, t.Logf)
	if err == nil || !strings.HasSuffix(err.Error(), "relay refused the hello: wrong password") {
		t.Errorf("a wrong password: %v", err)
	}
}

// TestNoPassword: without client.password, on a relay with a password, the
// client says which of its flags or keys gives one, not the relay's /pass.
func TestNoPassword(t *testing.T) {
	s := startRelay(t, func(cfg *config.Config) { cfg.Password = secret.Hash("pw one") })
	err := Run(context.Background(), clientConfig(s.Addr("line").String(), "erin"), strings.NewReader("hi\n"), io.Discard, t.Logf)
	if err == nil || !strings.HasSuffix(err.Error(), ": this relay has a password: give it with -password or client.password") {
		t.Errorf("no password: %v", err)
	}
}

// TestWrongKey: with a wrong or missing key for client.room the relay puts
// the client in the default room; the client leaves it with /quit (the
// room sees it quit, not a read error), sends nothing there, and ends with
// an error naming -key.
func TestWrongKey(t *testing.T) {
	log := testkit.NewLog(t)
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0"}
	cfg.Rooms = map[string]config.Room{"kitchen": {Key: secret.Hash("4242")}}
	s := relay.New(cfg, log.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	addr := s.Addr("line").String()
	alice := dialMember(t, addr, "alice")
	ivy := dialMember(t, addr, "ivy")
	fmt.Fprintf(ivy.c, "/join kitchen 4242\n") // before any wrong key from the address
	ivy.until(t, "--- you are ivy in kitchen")
	for i, key := range []string{"2424", ""} {
		henry := clientConfig(addr, "henry")
		henry.Room, henry.Key = "kitchen", key
		err := Run(context.Background(), henry, strings.NewReader("for the kitchen only\n"), io.Discard, t.Logf)
		want := ": cannot join kitchen: wrong key (give it with -key or client.key); quit rather than stay in lobby"
		if key == "" {
			want = ": cannot join kitchen: it has a key (give it with -key or client.key); quit rather than stay in lobby"
		}
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("key %q: %v, want it to end %q", key, err, want)
		}
		for { // what alice sees of henry
			alice.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			l, err := alice.lr.ReadLine()
			if err != nil {
				t.Fatalf("key %q: alice: %v", key, err)
			}
			if strings.Contains(string(l), "kitchen only") {
				t.Errorf("key %q: alice sees %q", key, l)
			}
			if strings.HasPrefix(string(l), "--- henry left") {
				if string(l) != "--- henry left lobby (quit)" {
					t.Errorf("key %q: alice sees %q", key, l)
				}
				break
			}
		}
		testkit.WaitFor(t, 5*time.Second, "henry's leave logged", func() bool { return strings.Count(log.String(), "henry left: ") == i+1 })
		if n := strings.Count(log.String(), "henry left: quit"); n != i+1 {
			t.Errorf("key %q: henry's leave is not a quit:\n%s", key, log.String())
		}
	}
	// The right key while its address may still wait after the wrong
	// one: the client is told to try again in a second, and does, rather
	// than give up.
	henry := clientConfig(addr, "henry")
	henry.Room, henry.Key = "kitchen", "4242"
	henry.RetryMax = config.Duration(3 * time.Second) // past the address's wait: it gives up that long after its input ended
	if err := Run(context.Background(), henry, strings.NewReader("for the kitchen only\n"), io.Discard, t.Logf); err != nil {
		t.Errorf("the right key after a wrong one: %v", err)
	}
	ivy.until(t, "henry: for the kitchen only")
}
