package listen

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConn: a Conn reads, writes, times out and closes as a net.TCPConn,
// with net's errors.
func TestConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	tc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	raw.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) })
	tc.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConn(fd)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.RemoteAddr().String(), peer.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	if got, want := c.LocalAddr().String(), peer.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "hello\n" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	c.SetReadDeadline(time.Now().Add(-time.Second))
	_, err = c.Read(buf)
	var oe *net.OpError
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("read past the deadline: %v, want a read *net.OpError wrapping os.ErrDeadlineExceeded", err)
	}
	if want := "read tcp " + c.LocalAddr().String() + "->" + c.RemoteAddr().String() + ": i/o timeout"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	c.SetReadDeadline(time.Time{})
	if err := c.CloseWrite(); err != nil {
		t.Errorf("CloseWrite: %v", err)
	}
	if n, err := peer.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("peer after CloseWrite: %d, %v; want EOF", n, err)
	}
	peer.Close()
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("read after the peer closed: %d, %v; want EOF", n, err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) || !strings.HasPrefix(err.Error(), "read tcp ") {
		t.Errorf("read after Close: %v, want net.ErrClosed", err)
	}
}
