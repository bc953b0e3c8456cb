//go:build minimal && linux

package listen

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"roomrelay/internal/netaddr"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// TCP listens on addr (host:port), whose host must be empty (every
// address, IPv6 and IPv4 alike when the system has IPv6), localhost or an
// IP address: the minimal build looks up no names. The socket is set up
// as net.Listen sets up its own (SO_REUSEADDR, close on exec, not
// blocking). Connections it accepts send TCP keepalive probes every
// keepalive, none if it is negative, and 15 s if it is 0.
func TCP(addr string, keepalive time.Duration) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: err}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: errors.New("invalid port " + strconv.Quote(port))}
	}
	ip, zone, err := hostIP(host, netip.IPv6Unspecified())
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: err}
	}
	ap := netip.AddrPortFrom(ip, uint16(p))
	fd, err := socket(ap)
	if err != nil && ip.IsUnspecified() && ip.Is6() && zone == "" {
		// No IPv6 here (a router built without it): every IPv4 address.
		ap = netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(p))
		fd, err = socket(ap)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: tcpAddrOf(ap, zone), Err: err}
	}
	f := os.NewFile(uintptr(fd), "listener") // not blocking: served by Go's poller
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: tcpAddrOf(ap, zone), Err: err}
	}
	if sa, err := syscall.Getsockname(fd); err == nil {
		ap = netaddr.AddrPort(tcpAddr(sa)) // the port given to port 0
	}
	return &listener{f: f, rc: rc, addr: net.TCPAddrFromAddrPort(ap), keepalive: keepalive}, nil
}

// hostIP is the address of host, which must be empty (empty: the
// address is its second argument), localhost or an IP address, and its
// IPv6 zone, if any.
func hostIP(host string, empty netip.Addr) (netip.Addr, string, error) {
	switch host {
	case "":
		return empty, "", nil
	case "localhost":
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), "", nil // as net.Listen takes it: IPv4 first
	}
	ip, zone, ok := netaddr.ParseAddr(host)
	if !ok {
		return netip.Addr{}, "", errors.New("the minimal build looks up no names: " + strconv.Quote(host) + " is not an IP address or localhost")
	}
	if ip.Is4In6() {
		zone = "" // as netip's Unmap drops it
	}
	return ip.Unmap(), zone, nil
}

// tcpAddrOf is net.TCPAddrFromAddrPort of ap with zone.
func tcpAddrOf(ap netip.AddrPort, zone string) *net.TCPAddr {
	return &net.TCPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port()), Zone: zone}
}

// Dial connects to addr (host:port) over TCP within timeout; its host
// must be empty (this machine), localhost or an IP address. The connect
// is not blocking: Go's poller waits for its end under the deadline, as
// net.Dialer's. ctx is looked at only before it.
func Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fail(err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fail(errors.New("invalid port " + strconv.Quote(port)))
	}
	ip, zone, err := hostIP(host, netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	ap := netip.AddrPortFrom(ip, uint16(p))
	family := syscall.AF_INET
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	if ip.Is6() {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return fail(os.NewSyscallError("socket", err))
	}
	failAt := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddrOf(ap, zone), Err: err}
	}
	done, err := connectDone(fd, connect(fd, sa))
	if done && err != nil {
		syscall.Close(fd)
		return failAt(os.NewSyscallError("connect", err))
	}
	tuneTCP(fd, 0)
	c, err := NewConn(fd)
	if err != nil {
		syscall.Close(fd)
		return failAt(err)
	}
	if !done { // c has fd now: closing c closes it
		rc, err := c.f.SyscallConn()
		if err == nil && timeout > 0 {
			err = c.f.SetWriteDeadline(time.Now().Add(timeout))
		}
		if err == nil {
			var cerr error
			// Called at once, then each time the poller sees the socket wake.
			err = rc.Write(func(s uintptr) bool {
				n, err := syscall.GetsockoptInt(int(s), syscall.SOL_SOCKET, syscall.SO_ERROR)
				if err == nil && n != 0 {
					err = syscall.Errno(n)
				}
				done, cerr = connectDone(int(s), err)
				return done
			})
			c.f.SetWriteDeadline(time.Time{})
			if err == nil {
				err = os.NewSyscallError("connect", cerr)
			}
		}
		if err != nil {
			c.Close()
			return failAt(err)
		}
		c.remote = tcpAddrOf(ap, zone) // not known to NewConn yet
	}
	return c, nil
}

// connect is syscall.Connect; tests replace it.
var connect = syscall.Connect

// connectDone tells whether the connect of the non-blocking socket fd is
// over and its error, given err: the connect's own, then SO_ERROR's each
// time the socket wakes. EINTR ends the system call, not the connect,
// which goes on in the kernel as with EINPROGRESS; SO_ERROR is 0 both
// while it does and once it succeeded, so the peer tells them apart.
func connectDone(fd int, err error) (bool, error) {
	switch err {
	case syscall.EINPROGRESS, syscall.EINTR:
		return false, nil
	case nil:
		_, err = syscall.Getpeername(fd)
		return err == nil, nil
	}
	return true, err
}

// socket opens, binds and listens; its errors are *os.SyscallError.
func socket(ap netip.AddrPort) (int, error) {
	family := syscall.AF_INET
	if ap.Addr().Is6() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	var sa syscall.Sockaddr
	if family == syscall.AF_INET6 {
		// An unspecified IPv6 address takes IPv4 too, as with net.Listen.
		v6only := 1
		if ap.Addr().IsUnspecified() {
			v6only = 0
		}
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, v6only); err != nil {
			syscall.Close(fd)
			return -1, os.NewSyscallError("setsockopt", err)
		}
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	} else {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	// The kernel caps the backlog at net.core.somaxconn.
	if err := syscall.Listen(fd, 4096); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

// listener is a listening socket as an *os.File, served by Go's poller:
// it accepts Conns, with net.TCPListener's errors.
type listener struct {
	f         *os.File
	rc        syscall.RawConn
	addr      *net.TCPAddr
	keepalive time.Duration
	closed    atomic.Bool // set by Close before it closes f
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		var fd int
		var err error
		rerr := l.rc.Read(func(s uintptr) bool {
			fd, _, err = syscall.Accept4(int(s), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			return err != syscall.EAGAIN
		})
		switch {
		case rerr != nil:
			if l.closed.Load() {
				rerr = net.ErrClosed
			}
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: rerr}
		case err == syscall.ECONNABORTED || err == syscall.EINTR:
			continue // gone before it was taken, as net skips it
		case err != nil:
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: os.NewSyscallError("accept4", err)}
		}
		tuneTCP(fd, l.keepalive)
		c, err := NewConn(fd)
		if err != nil {
			syscall.Close(fd)
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
		}
		return c, nil
	}
}

func (l *listener) Close() error {
	l.closed.Store(true)
	if err := l.f.Close(); err != nil {
		if errors.Is(err, os.ErrClosed) {
			err = net.ErrClosed
		}
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.addr, Err: err}
	}
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// tuneTCP sets a new connection's socket as net sets a TCPConn's: no
// Nagle delay, keepalive probes after 15 s idle, every 15 s, 9 of them;
// then keepalive (see TCP): none if negative, after that idle time if
// positive.
func tuneTCP(fd int, keepalive time.Duration) {
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9)
	switch {
	case keepalive < 0:
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 0)
	case keepalive > 0:
		secs := int((keepalive + time.Second - 1) / time.Second)
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secs)
	}
}

// UDP is not in the minimal build, which has no UDP door.
func UDP(addr string) (net.PacketConn, error) {
	return nil, &net.OpError{Op: "listen", Net: "udp", Err: errors.New("the minimal build has no UDP door")}
}
