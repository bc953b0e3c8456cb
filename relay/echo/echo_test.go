package echo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testConfig is the default echo config on a loopback port.
func testConfig() config.EchoConfig {
	cfg := config.Default().Echo
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

// start starts an echo server and shuts it down, checking that it ends in
// time and that no goroutine outlives it, when the test ends.
func start(t *testing.T, cfg config.EchoConfig) (*Server, *testkit.Log) {
	t.Helper()
	base := runtime.NumGoroutine()
	log := testkit.NewLog(t)
	s := New(cfg, log.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		testkit.WaitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	})
	return s, log
}

func dial(t testing.TB, s *Server) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func TestEcho(t *testing.T) {
	s, log := start(t, testConfig())
	// Many clients at once, each with more than one buffer's worth.
	var wg sync.WaitGroup
	for i := range 8 {
		c := dial(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat(fmt.Appendf(nil, "client %d. ", i), 2000)
			go func() {
				c.Write(msg)
				c.CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
			}
			if !bytes.Equal(got, msg) {
				t.Errorf("client %d: got %d bytes back, want the %d sent", i, len(got), len(msg))
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(log.String(), "Connected by ('127.0.0.1', "); n != 8 {
		t.Errorf("%d connections logged, want 8:\n%s", n, log.String())
	}
	testkit.WaitFor(t, 5*time.Second, "8 clients to be logged gone", func() bool {
		return strings.Count(log.String(), "gone: closed by the client") == 8
	})
}

func TestMaxClients(t *testing.T) {
	cfg := testConfig()
	cfg.MaxClients = 1
	s, log := start(t, cfg)
	first := dial(t, s)
	first.Write([]byte("hi"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(first, buf); err != nil {
		t.Fatal(err)
	}
	second := dial(t, s)
	if n, err := second.Read(buf); err != io.EOF {
		t.Errorf("second client read %d bytes, %v; want it closed", n, err)
	}
	if !strings.Contains(log.String(), "1 clients already") {
		t.Errorf("refusal not logged:\n%s", log.String())
	}
	// The first one is still served.
	first.Write([]byte("ok"))
	if _, err := io.ReadFull(first, buf); err != nil || string(buf) != "ok" {
		t.Errorf("first client got %q, %v after the refusal", buf, err)
	}
}

func TestIdle(t *testing.T) {
	cfg := testConfig()
	cfg.Idle = config.Duration(100 * time.Millisecond)
	s, log := start(t, cfg)
	c := dial(t, s)
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle client read %d bytes, %v; want it closed", n, err)
	}
	testkit.WaitFor(t, 5*time.Second, "the idle client to be logged", func() bool {
		return strings.Contains(log.String(), "gone: idle for 100ms")
	})
}

// TestFrozenClient checks that a client that sends but never reads is cut
// off at the write deadline, and that others are served meanwhile.
func TestFrozenClient(t *testing.T) {
	cfg := testConfig()
	cfg.Write = config.Duration(200 * time.Millisecond)
	s, log := start(t, cfg)
	frozen := dial(t, s)
	frozen.SetReadBuffer(4096)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := frozen.Write(chunk); err != nil {
				return
			}
		}
	}()
	other := dial(t, s)
	other.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(other, buf); err != nil || string(buf) != "ping" {
		t.Errorf("other client got %q, %v", buf, err)
	}
	testkit.WaitFor(t, 5*time.Second, "the frozen client to be cut off", func() bool {
		return strings.Contains(log.String(), "not reading its echo")
	})
}

func TestShutdown(t *testing.T) {
	base := runtime.NumGoroutine()
	log := testkit.NewLog(t)
	s := New(testConfig(), log.Logf)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read %d bytes, %v after shutdown; want EOF", n, err)
	}
	if !strings.Contains(log.String(), "gone: server shutting down") {
		t.Errorf("shutdown not logged:\n%s", log.String())
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second); err == nil {
		t.Error("still accepting after shutdown")
	}
	testkit.WaitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

func TestRun(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Listen = ln.Addr().String()
	if err := Run(context.Background(), cfg, t.Logf); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Run on a taken port = %v", err)
	}
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	log := testkit.NewLog(t)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, log.Logf) }()
	testkit.WaitFor(t, 5*time.Second, "the server to listen", func() bool { return strings.Contains(log.String(), "listening on") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
	testkit.WaitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}
