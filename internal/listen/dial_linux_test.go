package listen

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// fullListener listens on 127.0.0.1 with a backlog of 0 and fills its
// queue with one connection, which it never accepts: Linux drops the SYN
// of any further connect, which stays under way.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := tcpAddr(sa).String()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second) // the one the queue holds
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return addr
}

// TestDialDeadline: a connect that cannot end (its SYN dropped by a full
// listen queue) fails when its timeout runs out, as a timeout, naming
// the address.
func TestDialDeadline(t *testing.T) {
	addr := fullListener(t)
	c, err := Dial(context.Background(), addr, 100*time.Millisecond)
	if err == nil {
		c.Close()
		t.Skipf("this kernel took a connection past a full listen queue: nothing to time out")
	}
	checkTimeout(t, addr, err)
}

// checkTimeout fails t unless err is Dial's timeout connecting to addr
// (net.Dialer's is os.ErrDeadlineExceeded or net's own, as its context or
// the poller is first).
func checkTimeout(t *testing.T, addr string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial to a full listen queue: %v, want a timeout", err)
	}
	if want := "dial tcp " + addr + ": i/o timeout"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
