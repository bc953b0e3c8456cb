package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
	"roomrelay/relay/peer"
)

// tutConfig is a tutorial-mode client of server, listening on a
// loopback port.
func tutConfig(server string) config.ClientConfig {
	cfg := config.Default().Client
	cfg.Mode = "tutorial"
	cfg.Name = "alice"
	cfg.Server = server
	cfg.Listen = "127.0.0.1:0"
	cfg.Timeout = config.Duration(5 * time.Second)
	return cfg
}

// tutServer is a stand-in for messenger_server.py: it reads each
// connection to its end and passes on what it decodes.
type tutServer struct {
	ln  net.Listener
	got chan proto.Legacy
	wg  sync.WaitGroup
}

func startTutServer(t testing.TB, addr string) *tutServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &tutServer{ln: ln, got: make(chan proto.Legacy, 100)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil {
				t.Errorf("server: %v", err)
				continue
			}
			l, err := proto.ParseLegacy(b)
			if err != nil {
				t.Errorf("server: %q: %v", b, err)
				continue
			}
			s.got <- l
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

// next returns the next message the server received.
func (s *tutServer) next(t testing.TB) proto.Legacy {
	t.Helper()
	select {
	case l := <-s.got:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a message to the server")
		return proto.Legacy{}
	}
}

// tutDeliver sends a payload to a registered member, as the server does.
func tutDeliver(t testing.TB, to proto.Legacy, payload string) {
	t.Helper()
	addr := net.JoinHostPort(to.Host, strconv.Itoa(to.Port))
	if err := peer.Send(context.Background(), addr, []byte(payload), 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

// tutRun is a client running in the background.
type tutRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returns
	err    error         // Run's result, once done is closed
}

// wait waits for Run to return and checks that it returned nil.
func (r *tutRun) wait(t testing.TB, why string) {
	t.Helper()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run = %v", r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Run did not end %s", why)
	}
}

// runTutClient runs a client in the background. When the test ends it
// cancels the client, checks that it ended, and that no goroutine outlived
// it.
func runTutClient(t *testing.T, cfg config.ClientConfig, in io.Reader, out io.Writer, log *testkit.Buffer) *tutRun {
	t.Helper()
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	r := &tutRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = Run(ctx, cfg, in, out, func(format string, args ...any) {
			t.Logf(format, args...)
			log.Logf(format, args...)
		})
	}()
	t.Cleanup(func() {
		cancel()
		r.wait(t, "with its context")
		testkit.WaitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	})
	return r
}

func TestTutorial(t *testing.T) {
	srv := startTutServer(t, "127.0.0.1:0")
	inR, inW := io.Pipe()
	var out, log testkit.Buffer
	r := runTutClient(t, tutConfig(srv.ln.Addr().String()), inR, &out, &log)

	// The client listens before it registers: a delivery made as soon as
	// the registration arrives gets through.
	reg := srv.next(t)
	if reg.Kind != proto.LegacyRegister || reg.Name != "alice" || reg.Host != "127.0.0.1" || reg.Port == 0 {
		t.Fatalf("registration = %+v", reg)
	}
	tutDeliver(t, reg, "bob: hi | there, grüße 😀")
	tutDeliver(t, reg, "  bob:   padded  \r\n")
	tutDeliver(t, reg, "") // prints nothing
	tutDeliver(t, reg, "bob: \x1b[2Jno escapes")
	for i := range 20 {
		tutDeliver(t, reg, fmt.Sprintf("carol: %d", i))
	}
	want := []string{"bob: hi | there, grüße 😀", "bob:   padded", "bob: \ufffd[2Jno escapes"}
	for i := range 20 {
		want = append(want, fmt.Sprintf("carol: %d", i))
	}
	testkit.WaitFor(t, 10*time.Second, "every delivery", func() bool { return len(out.Lines()) >= len(want) })
	if diff := cmp.Diff(want, out.Lines()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	io.WriteString(inW, "hello | world\n\n   \ngrüße\xff\r\n")
	io.WriteString(inW, "last")
	inW.Close()
	var posts []proto.Legacy
	for range 3 {
		posts = append(posts, srv.next(t))
	}
	wantPosts := []proto.Legacy{
		{Kind: proto.LegacyPost, Name: "alice", Text: "hello | world"},
		{Kind: proto.LegacyPost, Name: "alice", Text: "grüße\ufffd"},
		{Kind: proto.LegacyPost, Name: "alice", Text: "last"},
	}
	if diff := cmp.Diff(wantPosts, posts); diff != "" {
		t.Errorf("posts (-want +got):\n%s", diff)
	}
	// exit_on_eof: the client ends after the last send.
	r.wait(t, "at the end of its input")
}

// TestTutorialServerLate checks that a client started before its server
// keeps trying to register, and that a delivery that stalls is dropped at
// its deadline without holding up the rest for longer.
func TestTutorialServerLate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := tutConfig(addr)
	cfg.Retry = config.Duration(10 * time.Millisecond)
	cfg.RetryMax = config.Duration(50 * time.Millisecond)
	cfg.Timeout = config.Duration(300 * time.Millisecond)
	inR, inW := io.Pipe()
	var out, log testkit.Buffer
	runTutClient(t, cfg, inR, &out, &log)
	t.Cleanup(func() { inW.Close() }) // ends the read of the input, before the goroutine check
	testkit.WaitFor(t, 5*time.Second, "a failed registration", func() bool { return strings.Contains(log.String(), "retrying in") })

	srv := startTutServer(t, addr)
	reg := srv.next(t)
	if reg.Kind != proto.LegacyRegister || reg.Name != "alice" {
		t.Fatalf("registration = %+v", reg)
	}
	stalled, err := net.DialTimeout("tcp", net.JoinHostPort(reg.Host, strconv.Itoa(reg.Port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.SetDeadline(time.Now().Add(10 * time.Second))
	stalled.Write([]byte("bob: never clos"))
	tutDeliver(t, reg, "bob: after")
	testkit.WaitFor(t, 5*time.Second, "the delivery after the stalled one", func() bool { return len(out.Lines()) == 1 })
	if got := out.Lines(); got[0] != "bob: after" {
		t.Errorf("output = %q", got)
	}
	if !strings.Contains(log.String(), "not closed within 300ms; dropped") {
		t.Errorf("the stalled delivery is not logged:\n%s", log.String())
	}
}

func TestTutorialKeepReceiving(t *testing.T) {
	srv := startTutServer(t, "127.0.0.1:0")
	cfg := tutConfig(srv.ln.Addr().String())
	cfg.ExitOnEOF = false
	var out, log testkit.Buffer
	r := runTutClient(t, cfg, strings.NewReader("only line\n"), &out, &log)
	reg := srv.next(t)
	if post := srv.next(t); post.Text != "only line" {
		t.Errorf("post = %+v", post)
	}
	testkit.WaitFor(t, 5*time.Second, "the end of input", func() bool { return strings.Contains(log.String(), "still receiving") })
	tutDeliver(t, reg, "bob: still there?")
	testkit.WaitFor(t, 5*time.Second, "the delivery", func() bool { return len(out.Lines()) == 1 })
	r.cancel()
	r.wait(t, "with its context")
}

func TestTutorialErrors(t *testing.T) {
	cfg := tutConfig("127.0.0.1:1")
	cfg.Name = "first  client" // two spaces in a row
	if err := Run(context.Background(), cfg, strings.NewReader(""), io.Discard, t.Logf); err == nil || !strings.Contains(err.Error(), "client name") {
		t.Errorf("Run with a bad name = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg = tutConfig("127.0.0.1:1")
	cfg.Listen = ln.Addr().String()
	if err := Run(context.Background(), cfg, strings.NewReader(""), io.Discard, t.Logf); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run on a taken port = %v", err)
	}
}

func TestRegisterHost(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("192.168.1.5"), Port: 40000}
	tests := []struct {
		listen string
		local  net.Addr
		want   string
	}{
		{"127.0.0.1:8881", local, "127.0.0.1"},
		{"localhost:8881", local, "localhost"},
		{"[::1]:8881", local, "::1"},
		{":8881", local, "192.168.1.5"},
		{"0.0.0.0:0", local, "192.168.1.5"},
		{"[::]:0", &net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.2"), Port: 1}, "10.0.0.2"},
	}
	for _, tt := range tests {
		if got := registerHost(tt.listen, tt.local); got != tt.want {
			t.Errorf("registerHost(%q, %v) = %q, want %q", tt.listen, tt.local, got, tt.want)
		}
	}
}
