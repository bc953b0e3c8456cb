//go:build !noepoll

package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// poller tells which of many sockets are ready, with Linux's epoll in
// edge-triggered mode: one event each time a socket gets input or gets
// room for output after being full. The epoll instance is itself in Go's
// own poller, so a goroutine waiting for events is parked like one
// waiting for a socket, not a thread blocked in epoll_wait.
type poller struct {
	ep int      // the epoll instance
	f  *os.File // ep, non-blocking, as Go's poller sees it
	rc syscall.RawConn

	// wait's: the function handed to rc, bound once, and what it returns.
	raw   []pollRaw
	n     int
	err   error
	check func(fd uintptr) bool
}

// epollET is EPOLLET, which package syscall spells negative on some
// architectures and positive on others.
const epollET = 1 << 31

func newPoller() (*poller, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(ep, true); err != nil {
		syscall.Close(ep)
		return nil, err
	}
	p := &poller{ep: ep, f: os.NewFile(uintptr(ep), "epoll"), raw: make([]pollRaw, 128)}
	p.check = p.epollWait
	if p.rc, err = p.f.SyscallConn(); err != nil {
		p.f.Close()
		return nil, err
	}
	return p, nil
}

// add watches the socket of raw.
func (p *poller) add(raw syscall.RawConn) (fd int32, err error) {
	cerr := raw.Control(func(s uintptr) {
		fd = int32(s)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: fd}
		err = syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_ADD, int(s), &ev)
	})
	return fd, errors.Join(cerr, err)
}

// del stops watching the socket of raw. Once its connection is closed
// the kernel has forgotten it already, and del does nothing.
func (p *poller) del(raw syscall.RawConn) {
	raw.Control(func(s uintptr) {
		syscall.EpollCtl(p.ep, syscall.EPOLL_CTL_DEL, int(s), nil)
	})
}

// pollRaw is what the kernel reports of one socket.
type pollRaw = syscall.EpollEvent

// pollEvent is one socket's readiness.
type pollEvent struct {
	fd      int32
	in, out bool
}

// wait fills evs with the sockets that became ready, waiting for one
// until the deadline at most. It returns nothing when the deadline
// passes, and os.ErrClosed once the poller is closed.
func (p *poller) wait(evs []pollEvent) ([]pollEvent, error) {
	err := p.rc.Read(p.check)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return evs, nil
	case err != nil:
		return evs, err
	case p.err != nil:
		return evs, p.err
	}
	for _, e := range p.raw[:p.n] {
		evs = append(evs, pollEvent{
			fd:  e.Fd,
			in:  e.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0,
			out: e.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0,
		})
	}
	return evs, nil
}

// epollWait takes the events ready now; false has Go's poller wait for
// the epoll instance to become readable.
func (p *poller) epollWait(fd uintptr) bool {
	p.n, p.err = syscall.EpollWait(int(fd), p.raw, 0)
	if p.err == syscall.EINTR {
		p.n, p.err = 0, nil
	}
	return p.n > 0 || p.err != nil
}

// setDeadline bounds the waits from now on.
func (p *poller) setDeadline(t time.Time) { p.f.SetReadDeadline(t) }

// close ends a wait in progress and frees the epoll instance.
func (p *poller) close() { p.f.Close() }

// errWouldBlock is returned by sysIO's read and writev when the socket has
// nothing to read or no room to write.
var errWouldBlock = errors.New("would block")

// sysIO makes the system calls of one worker on a member's socket,
// through syscall.RawConn, without waiting and without allocating: the
// functions handed to RawConn are bound once, and the arguments and
// results pass through the struct.
type sysIO struct {
	p      []byte          // read into
	iov    []syscall.Iovec // write from
	n      int
	err    error
	rd, wr func(fd uintptr) bool
}

func newSysIO() *sysIO {
	s := &sysIO{}
	s.rd, s.wr = s.doRead, s.doWritev
	return s
}

func (s *sysIO) doRead(fd uintptr) bool {
	for {
		s.n, s.err = syscall.Read(int(fd), s.p)
		if s.err != syscall.EINTR {
			return true // done, whatever came of it: never wait
		}
	}
}

func (s *sysIO) doWritev(fd uintptr) bool {
	for {
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&s.iov[0])), uintptr(len(s.iov)))
		if e != syscall.EINTR {
			s.n, s.err = int(r), nil
			if e != 0 {
				s.n, s.err = 0, e
			}
			return true
		}
	}
}

// read reads what the socket of raw holds into p.
func (s *sysIO) read(raw syscall.RawConn, p []byte) (int, error) {
	s.p = p
	err := raw.Read(s.rd)
	s.p = nil
	n, rerr := s.n, s.err
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// writev writes as much of bufs as the socket of raw takes now, in one
// writev, and returns how many bytes that was.
func (s *sysIO) writev(raw syscall.RawConn, bufs net.Buffers) (int, error) {
	s.iov = s.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			v := syscall.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			s.iov = append(s.iov, v)
		}
	}
	if len(s.iov) == 0 {
		return 0, nil
	}
	err := raw.Write(s.wr)
	clear(s.iov) // hold no event past the write
	n, werr := s.n, s.err
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, errWouldBlock
	}
	return n, werr
}
