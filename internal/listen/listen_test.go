package listen

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0", ":0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := TCP(addr, 30*time.Second)
			if err != nil {
				if addr == "[::1]:0" {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			to := ln.Addr().String()
			if addr == ":0" || addr == "localhost:0" {
				to = net.JoinHostPort("127.0.0.1", itoa(port))
			}
			c, err := net.DialTimeout("tcp", to, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.SetDeadline(time.Now().Add(5 * time.Second))
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2)
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
				t.Fatalf("read %q, %v; want hi", buf, err)
			}

			// The port is taken now.
			_, err = TCP(to, -1)
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("a second listener on %s: %v, want address in use", to, err)
			}
		})
	}
}

func TestTCPClosed(t *testing.T) {
	ln, err := TCP("127.0.0.1:0", -1)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDial: Dial connects to a listener by IP address or localhost, and a
// port nobody listens on is refused, as net.Dial says it.
func TestDial(t *testing.T) {
	ln, err := TCP("127.0.0.1:0", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		checkDial(t, ln, net.JoinHostPort(host, port))
	}
	ln.Close()
	addr := net.JoinHostPort("127.0.0.1", port)
	c, err := Dial(context.Background(), addr, 5*time.Second)
	if err == nil {
		c.Close()
	}
	checkRefused(t, addr, err)
}

// checkDial dials addr, where ln listens, and fails t unless the
// connection carries bytes between addresses that agree.
func checkDial(t *testing.T, ln net.Listener, addr string) {
	t.Helper()
	c, err := Dial(context.Background(), addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c.RemoteAddr().String() != ln.Addr().String() || c.LocalAddr().String() != s.RemoteAddr().String() {
		t.Errorf("%s: dialled %s->%s, accepted %s->%s", addr, c.LocalAddr(), c.RemoteAddr(), s.RemoteAddr(), s.LocalAddr())
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Errorf("%s: read %q, %v; want hi", addr, buf, err)
	}
}

// checkRefused fails t unless err is Dial's connection refused by addr.
func checkRefused(t *testing.T, addr string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial to a closed port: %v, want connection refused", err)
	}
	if want := "dial tcp " + addr + ": connect: connection refused"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
