package listen

import (
	"errors"
	"io"
	"net"
	"os"
	"roomrelay/internal/errlite"
	"syscall"
	"time"
)

// Conn is a TCP connection held as an *os.File: its socket, not blocking,
// is served by Go's poller as a net.TCPConn's is, with deadlines, but
// without net's netFD, so that the minimal build leaves net's connection
// code out (about 80 KB of a mipsle binary). Its errors read as a
// net.TCPConn's: *net.OpError with the two addresses, net.ErrClosed once
// closed.
type Conn struct {
	f             *os.File
	local, remote *net.TCPAddr
}

// NewConn takes the TCP socket fd, which it makes non-blocking; closing
// the Conn closes it.
func NewConn(fd int) (*Conn, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("setnonblock", err)
	}
	c := &Conn{local: &net.TCPAddr{}, remote: &net.TCPAddr{}}
	if sa, err := syscall.Getsockname(fd); err == nil {
		c.local = tcpAddr(sa)
	}
	if sa, err := syscall.Getpeername(fd); err == nil {
		c.remote = tcpAddr(sa)
	}
	c.f = os.NewFile(uintptr(fd), "tcp")
	return c, nil
}

func tcpAddr(sa syscall.Sockaddr) *net.TCPAddr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: append([]byte(nil), sa.Addr[:]...), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: append([]byte(nil), sa.Addr[:]...), Port: sa.Port}
	}
	return &net.TCPAddr{}
}

// fail is err as net.TCPConn's method op would give it.
func (c *Conn) fail(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if pe, ok := errlite.As[*os.PathError](err); ok {
		err = pe.Err
	}
	errno, isErrno := err.(syscall.Errno) // what a PathError holds; a SyscallError names its call already
	switch {
	case errors.Is(err, os.ErrClosed):
		err = net.ErrClosed
	case isErrno:
		sys := op
		if op == "set" {
			sys = "setsockopt"
		}
		err = os.NewSyscallError(sys, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.f.Read(b)
	return n, c.fail("read", err)
}

func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	return n, c.fail("write", err)
}

func (c *Conn) Close() error { return c.fail("close", c.f.Close()) }

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error      { return c.fail("set", c.f.SetDeadline(t)) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.fail("set", c.f.SetReadDeadline(t)) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.fail("set", c.f.SetWriteDeadline(t)) }

// SyscallConn gives the socket, as net.TCPConn's.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.f.SyscallConn() }

// CloseWrite shuts down the writing side of the connection.
func (c *Conn) CloseWrite() error {
	return c.control("close", func(fd int) error { return os.NewSyscallError("shutdown", syscall.Shutdown(fd, syscall.SHUT_WR)) })
}

// SetWriteBuffer sets the socket's send buffer (SO_SNDBUF).
func (c *Conn) SetWriteBuffer(bytes int) error {
	return c.control("set", func(fd int) error {
		return os.NewSyscallError("setsockopt", syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, bytes))
	})
}

// control calls f with the socket, unless the connection is closed.
func (c *Conn) control(op string, f func(fd int) error) error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return c.fail(op, err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return c.fail(op, err)
	}
	if ferr != nil {
		return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: ferr}
	}
	return nil
}
