package peer

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testConfig is the default peer config on a loopback port.
func testConfig() config.PeerConfig {
	cfg := config.Default().Peer
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// startPeer starts a peer and closes it when the test ends.
func startPeer(t testing.TB, cfg config.PeerConfig, out io.Writer, logf config.Logf) *Peer {
	t.Helper()
	p := New(cfg, out, logf)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// dialTest connects to addr with every deadline set.
func dialTest(t testing.TB, addr net.Addr) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// sendPieces sends one message as messenger.py's sender would, in pieces
// of n bytes, then shuts the connection down and closes it. It returns the
// sender's address as messenger.py prints it.
func sendPieces(t testing.TB, addr net.Addr, msg string, n int) string {
	t.Helper()
	c := dialTest(t, addr)
	c.SetNoDelay(true)
	for b := []byte(msg); len(b) > 0; {
		k := min(n, len(b))
		if _, err := c.Write(b[:k]); err != nil {
			t.Fatal(err)
		}
		b = b[k:]
	}
	c.CloseWrite()
	c.Close()
	la := c.LocalAddr().(*net.TCPAddr)
	return fmt.Sprintf("('%s', %d)", la.IP, la.Port)
}

func TestReceive(t *testing.T) {
	testkit.NoLeaks(t)
	var out testkit.Buffer
	p := startPeer(t, testConfig(), &out, testkit.NewLog(t).Logf)

	var want []string
	// A character split across reads, surrounding whitespace, a control
	// character: the message is decoded whole, stripped and cleaned.
	from := sendPieces(t, p.Addr(), " \t grüße 😀 | \x1b[2J from go\r\n", 3)
	want = append(want, from+": grüße 😀 | \ufffd[2J from go")
	testkit.WaitFor(t, 5*time.Second, "the first message", func() bool { return len(out.Lines()) == 1 })
	// A connection closed with no data prints an empty message.
	from = sendPieces(t, p.Addr(), "", 1)
	want = append(want, from+": ")
	// Messages sent one after another print in order.
	for i := range 20 {
		if err := Send(context.Background(), p.Addr().String(), fmt.Appendf(nil, "message %d", i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 5*time.Second, "22 messages", func() bool { return len(out.Lines()) == 22 })
	got := out.Lines()
	if diff := cmp.Diff(want, got[:2]); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	addr := regexp.MustCompile(`^\('127\.0\.0\.1', \d+\): `)
	for i, l := range got[2:] {
		if !addr.MatchString(l) || !strings.HasSuffix(l, fmt.Sprintf(": message %d", i)) {
			t.Errorf("line %d = %q, want ('127.0.0.1', PORT): message %d", i+2, l, i)
		}
	}
}

func TestReceiveLimits(t *testing.T) {
	testkit.NoLeaks(t)
	cfg := testConfig()
	cfg.MaxMessageBytes = 8
	cfg.MaxConns = 2
	cfg.Timeout = config.Duration(300 * time.Millisecond)
	var out testkit.Buffer
	log := testkit.NewLog(t)
	p := startPeer(t, cfg, &out, log.Logf)

	from := sendPieces(t, p.Addr(), "0123456789abcdef", 16)
	testkit.WaitFor(t, 5*time.Second, "the cut message", func() bool { return len(out.Lines()) == 1 })
	if got, want := out.Lines()[0], from+": 01234567"; got != want {
		t.Errorf("cut message = %q, want %q", got, want)
	}
	if !strings.Contains(log.String(), "8 bytes over the limit of 8") {
		t.Errorf("the cut is not logged:\n%s", log.String())
	}

	// Two connections that never close take every slot; the message after
	// them waits, and is printed once they are dropped at their deadline.
	for range 2 {
		c := dialTest(t, p.Addr())
		c.Write([]byte("stuck"))
	}
	from = sendPieces(t, p.Addr(), "after", 5)
	testkit.WaitFor(t, 5*time.Second, "the message after the stalled ones", func() bool { return len(out.Lines()) == 2 })
	if got, want := out.Lines()[1], from+": after"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if n := strings.Count(log.String(), "not closed within 300ms; dropped"); n != 2 {
		t.Errorf("%d stalled connections logged, want 2:\n%s", n, log.String())
	}
}

// friend is a test listener that records each connection's payload,
// read to its end.
type friend struct {
	ln  net.Listener
	mu  sync.Mutex
	got []string
	wg  sync.WaitGroup
}

func newFriend(t testing.TB) *friend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &friend{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil {
				t.Errorf("friend: %v", err)
			}
			f.mu.Lock()
			f.got = append(f.got, string(b))
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *friend) payloads() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func TestSendLines(t *testing.T) {
	testkit.NoLeaks(t)
	f := newFriend(t)
	cfg := testConfig()
	cfg.Friend = f.ln.Addr().String()
	cfg.MaxMessageBytes = 32
	log := testkit.NewLog(t)
	p := startPeer(t, cfg, io.Discard, log.Logf)

	in := "hello\n\nwith | pipe\r\n" + strings.Repeat("x", 33) + "\ngrüße\xff\nlast without newline"
	if err := p.SendLines(context.Background(), strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	want := []string{"hello", "", "with | pipe", "grüße\ufffd", "last without newline"}
	testkit.WaitFor(t, 5*time.Second, "every payload", func() bool { return len(f.payloads()) == len(want) })
	if diff := cmp.Diff(want, f.payloads()); diff != "" {
		t.Errorf("friend got (-want +got):\n%s", diff)
	}
	if !strings.Contains(log.String(), "input line longer than 32 bytes; not sent") {
		t.Errorf("the long line is not logged:\n%s", log.String())
	}
}

func TestFriendDown(t *testing.T) {
	testkit.NoLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Friend = ln.Addr().String()
	ln.Close()
	log := testkit.NewLog(t)
	p := startPeer(t, cfg, io.Discard, log.Logf)
	if err := p.SendLines(context.Background(), strings.NewReader("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "the line is lost"); n != 2 {
		t.Errorf("%d lost lines logged, want 2:\n%s", n, log.String())
	}
}

func TestRun(t *testing.T) {
	testkit.NoLeaks(t)
	f := newFriend(t)
	cfg := testConfig()
	cfg.Friend = f.ln.Addr().String()
	log := testkit.NewLog(t)
	var out testkit.Buffer
	inR, inW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, inR, &out, log.Logf) }()

	listening := regexp.MustCompile(`peer: listening on (\S+);`)
	testkit.WaitFor(t, 5*time.Second, "the peer to listen", func() bool { return listening.MatchString(log.String()) })
	addr, err := net.ResolveTCPAddr("tcp", listening.FindStringSubmatch(log.String())[1])
	if err != nil {
		t.Fatal(err)
	}

	io.WriteString(inW, "to my friend\n")
	testkit.WaitFor(t, 5*time.Second, "the friend to get the line", func() bool { return len(f.payloads()) == 1 })
	inW.Close()
	testkit.WaitFor(t, 5*time.Second, "the end of input", func() bool { return strings.Contains(log.String(), "end of input") })
	// Still receiving after the end of input.
	from := sendPieces(t, addr, "still here", 4)
	testkit.WaitFor(t, 5*time.Second, "the message", func() bool { return len(out.Lines()) == 1 })
	if got, want := out.Lines()[0], from+": still here"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}

	// A stalled incoming connection does not hold up the end.
	c := dialTest(t, addr)
	c.Write([]byte("half a mess"))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end when its context did")
	}
	if got := f.payloads(); len(got) != 1 || got[0] != "to my friend" {
		t.Errorf("friend got %q", got)
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Listen = ln.Addr().String()
	err = Run(context.Background(), cfg, strings.NewReader(""), io.Discard, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run on a taken port = %v", err)
	}
}
