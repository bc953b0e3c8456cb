//go:build !noepoll

package relay

import (
	"net"
	"net/netip"
	"os"
	"roomrelay/internal/listen"
	"roomrelay/internal/netaddr"
	"sync"
	"syscall"
	"time"
)

// fdConn is a connection the loop serves, held as a bare socket: the
// accepted net.Conn is closed once its socket is duplicated, so that an
// idle member holds neither its netFD and addresses nor a descriptor of
// Go's own poller (about 0.55 KB in all), only this. The loop reads and
// writes it through SyscallConn without waiting, as it would a net.Conn's.
// What blocks (the farewell written within a deadline, the hang-up read)
// goes through a listen.Conn made from the socket on first need.
type fdConn struct {
	mu   sync.Mutex   // held during every use of fd, so that Close waits for the system call in progress
	nc   *listen.Conn // made from fd by the first blocking call; nil till then
	addr netip.Addr   // the peer's address and port
	fd   int32        // -1 once closed, or handed to nc
	port uint16
}

// detach returns c as an fdConn and closes c, or returns c itself when its
// socket cannot be taken (c is no TCP connection, or dup fails).
func detach(c net.Conn) net.Conn {
	tc, ok := c.(interface {
		net.Conn
		syscall.Conn
	})
	ra, isTCP := c.RemoteAddr().(*net.TCPAddr) // a net.TCPConn or a listen.Conn
	if !ok || !isTCP {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	fd := -1
	if cerr := raw.Control(func(s uintptr) { fd, err = dupCloexec(int(s)) }); cerr != nil || err != nil {
		return c
	}
	remote := netaddr.AddrPort(ra)
	tc.Close() // the socket stays open: fd refers to it
	return &fdConn{fd: int32(fd), addr: remote.Addr(), port: remote.Port()}
}

func dupCloexec(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, os.NewSyscallError("fcntl", e)
	}
	return int(r), nil
}

// blocking returns the net.Conn that blocking calls go through, making it
// from the socket the first time. The loop no longer has the socket then:
// it is called only once the member's loop turn is over (see member.end).
func (c *fdConn) blocking() (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		return c.nc, nil
	}
	if c.fd < 0 {
		return nil, net.ErrClosed
	}
	nc, err := listen.NewConn(int(c.fd))
	if err != nil {
		return nil, err
	}
	c.fd = -1 // nc's now
	c.nc = nc
	return nc, nil
}

func (c *fdConn) Read(p []byte) (int, error) {
	nc, err := c.blocking()
	if err != nil {
		return 0, err
	}
	return nc.Read(p)
}

func (c *fdConn) Write(p []byte) (int, error) {
	nc, err := c.blocking()
	if err != nil {
		return 0, err
	}
	return nc.Write(p)
}

func (c *fdConn) SetDeadline(t time.Time) error {
	nc, err := c.blocking()
	if err != nil {
		return err
	}
	return nc.SetDeadline(t)
}

func (c *fdConn) SetReadDeadline(t time.Time) error {
	nc, err := c.blocking()
	if err != nil {
		return err
	}
	return nc.SetReadDeadline(t)
}

func (c *fdConn) SetWriteDeadline(t time.Time) error {
	nc, err := c.blocking()
	if err != nil {
		return err
	}
	return nc.SetWriteDeadline(t)
}

// CloseWrite shuts down the writing side (see hangUp).
func (c *fdConn) CloseWrite() error {
	nc, err := c.blocking()
	if err != nil {
		return err
	}
	return nc.(interface{ CloseWrite() error }).CloseWrite()
}

// SetWriteBuffer sets the socket's send buffer (SO_SNDBUF).
func (c *fdConn) SetWriteBuffer(bytes int) error {
	return (*fdRaw)(c).Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, bytes)
	})
}

func (c *fdConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		return c.nc.Close()
	}
	if c.fd < 0 {
		return net.ErrClosed
	}
	err := syscall.Close(int(c.fd))
	c.fd = -1
	return os.NewSyscallError("close", err)
}

func (c *fdConn) RemoteAddr() net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.addr, c.port))
}

func (c *fdConn) LocalAddr() net.Addr {
	var sa syscall.Sockaddr
	(*fdRaw)(c).Control(func(fd uintptr) { sa, _ = syscall.Getsockname(int(fd)) })
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
	}
	return &net.TCPAddr{}
}

func (c *fdConn) SyscallConn() (syscall.RawConn, error) { return (*fdRaw)(c), nil }

// fdRaw is an fdConn's syscall.RawConn. Its Read and Write call f once and
// never wait: the loop's functions do not ask to.
type fdRaw fdConn

func (r *fdRaw) Control(f func(fd uintptr)) error {
	return (*fdConn)(r).use(func(fd uintptr) bool { f(fd); return true })
}

func (r *fdRaw) Read(f func(fd uintptr) bool) error  { return (*fdConn)(r).use(f) }
func (r *fdRaw) Write(f func(fd uintptr) bool) error { return (*fdConn)(r).use(f) }

// use calls f once with the socket, unless it is closed.
func (c *fdConn) use(f func(fd uintptr) bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return net.ErrClosed
	}
	f(uintptr(c.fd))
	return nil
}
