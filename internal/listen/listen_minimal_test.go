//go:build minimal && linux

package listen

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The minimal build looks up no names: a host that is no IP address (an
// invalid literal here, so that nothing is looked up in any build) is an
// error, not a retry.
func TestTCPNoNames(t *testing.T) {
	_, err := TCP("999.0.0.1:0", -1)
	if err == nil || !strings.Contains(err.Error(), "looks up no names") {
		t.Errorf("999.0.0.1:0: %v, want an error saying names are not looked up", err)
	}
}

func TestDialNoNames(t *testing.T) {
	_, err := Dial(context.Background(), "999.0.0.1:1", time.Second)
	if err == nil || !strings.Contains(err.Error(), "looks up no names") {
		t.Errorf("999.0.0.1:1: %v, want an error saying names are not looked up", err)
	}
}

// TestListener: the minimal listener accepts Conns with net's socket
// options and the keepalive asked for, and Close ends a waiting Accept
// with net.ErrClosed.
func TestListener(t *testing.T) {
	ln, err := TCP("127.0.0.1:0", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr %s: no port", addr)
	}
	peer, err := Dial(context.Background(), addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != peer.LocalAddr().String() {
		t.Errorf("accepted from %s, dialled from %s", c.RemoteAddr(), peer.LocalAddr())
	}
	raw, err := c.(*Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		for _, o := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
			{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 20},
			{"TCP_KEEPINTVL", syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
		} {
			if v, err := syscall.GetsockoptInt(int(fd), o.level, o.opt); err != nil || v != o.want {
				t.Errorf("%s = %d, %v; want %d", o.name, v, err, o.want)
			}
		}
	})
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	time.AfterFunc(50*time.Millisecond, func() { ln.Close() })
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Accept")
	}
}

// TestDialInterrupted: a connect that says EINTR goes on in the kernel
// (as a blocking one interrupted by a signal, Go's preemption SIGURG among
// them, does): Dial waits for its end, whatever it is, rather than
// connecting again.
func TestDialInterrupted(t *testing.T) {
	defer func(c func(int, syscall.Sockaddr) error) { connect = c }(connect)
	connect = func(fd int, sa syscall.Sockaddr) error {
		syscall.Connect(fd, sa)
		return syscall.EINTR
	}

	ln, err := TCP("127.0.0.1:0", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	checkDial(t, ln, addr)

	ln.Close()
	c, err := Dial(context.Background(), addr, 5*time.Second)
	if err == nil {
		c.Close()
	}
	checkRefused(t, addr, err)

	full := fullListener(t)
	c, err = Dial(context.Background(), full, 100*time.Millisecond)
	if err == nil {
		c.Close()
		t.Skipf("this kernel took a connection past a full listen queue: nothing to time out")
	}
	checkTimeout(t, full, err)
}
