//go:build !noepoll

package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestLoopHoldsBareSocket: a member the loop serves holds its socket as
// an fdConn (no netFD, no addresses, no descriptor of Go's poller), and
// its address is still there for the log.
func TestLoopHoldsBareSocket(t *testing.T) {
	s := startServer(t, testConfig())
	c := join(t, s, "ana")
	m := s.lookup("ana")
	fc, ok := m.conn.(*fdConn)
	if !ok {
		t.Fatalf("the loop's member holds a %T, want *fdConn", m.conn)
	}
	if got, want := fc.RemoteAddr().String(), c.c.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want the client's %s", got, want)
	}
	if got, want := fc.LocalAddr().String(), s.Addr("line").String(); got != want {
		t.Errorf("LocalAddr %s, want the door's %s", got, want)
	}
}

// TestFdConn: the loop's non-blocking system calls on the socket, then
// the blocking calls of a farewell, with deadlines, through the net.Conn
// made again from it; Close once.
func TestFdConn(t *testing.T) {
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
	peer.SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	d := detach(c)
	fc, ok := d.(*fdConn)
	if !ok {
		t.Fatalf("detach gave a %T", d)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the accepted conn after detach: %v, want it closed", err)
	}
	raw, _ := fc.SyscallConn()
	sys := newSysIO()
	buf := make([]byte, 16)
	if _, err := sys.read(raw, buf); err != errWouldBlock {
		t.Errorf("read of an empty socket: %v, want errWouldBlock", err)
	}
	if n, err := sys.writev(raw, net.Buffers{[]byte("hello "), []byte("there\n")}); n != 12 || err != nil {
		t.Errorf("writev: %d, %v", n, err)
	}
	fc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fc.Write([]byte("bye\n")); err != nil {
		t.Errorf("blocking write: %v", err)
	}
	if _, err := sys.read(raw, buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the loop's read once the socket went to a net.Conn: %v, want net.ErrClosed", err)
	}
	got := make([]byte, 16)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "hello there\nbye\n" {
		t.Errorf("the peer read %q, %v", got, err)
	}
	fc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := fc.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past its deadline: %v, want a timeout", err)
	}
	if err := fc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := fc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("a second Close: %v, want net.ErrClosed", err)
	}
	if _, err := peer.Read(buf); err != io.EOF {
		t.Errorf("the peer after Close: %v, want EOF", err)
	}
}
