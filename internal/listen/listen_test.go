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
// port nobody listens on is an error.
func TestDial(t *testing.T) {
	ln, err := TCP("127.0.0.1:0", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		c, err := Dial(context.Background(), net.JoinHostPort(host, port), 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		s.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
			t.Errorf("%s: read %q, %v; want hi", host, buf, err)
		}
		c.Close()
		s.Close()
	}
	ln.Close()
	if c, err := Dial(context.Background(), net.JoinHostPort("127.0.0.1", port), 5*time.Second); err == nil {
		c.Close()
		t.Errorf("dial to a closed port: no error")
	}
}
