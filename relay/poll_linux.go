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
	p := &poller{ep: ep, f: os.NewFile(uintptr(ep), "epoll")}
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
func (p *poller) wait(raw []pollRaw, evs []pollEvent) ([]pollEvent, error) {
	var n int
	var werr error
	err := p.rc.Read(func(fd uintptr) bool {
		n, werr = syscall.EpollWait(int(fd), raw, 0)
		if werr == syscall.EINTR {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil // else Go's poller waits for ep to be readable
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return evs, nil
	case err != nil:
		return evs, err
	case werr != nil:
		return evs, werr
	}
	for _, e := range raw[:n] {
		evs = append(evs, pollEvent{
			fd:  e.Fd,
			in:  e.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0,
			out: e.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0,
		})
	}
	return evs, nil
}

// setDeadline bounds the waits from now on.
func (p *poller) setDeadline(t time.Time) { p.f.SetReadDeadline(t) }

// close ends a wait in progress and frees the epoll instance.
func (p *poller) close() { p.f.Close() }

// ioScratch is a writer's iovec array, reused for every write.
type ioScratch []syscall.Iovec

// errWouldBlock is returned by readNB and writevNB when the socket has
// nothing to read or no room to write.
var errWouldBlock = errors.New("would block")

// readNB reads what the socket of raw holds, without waiting.
func readNB(raw syscall.RawConn, p []byte) (n int, err error) {
	cerr := raw.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			if err != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case cerr != nil:
		return 0, cerr
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// writevNB writes as much of bufs as the socket of raw takes now, in one
// writev, and returns how many bytes that was.
func writevNB(raw syscall.RawConn, iov *ioScratch, bufs net.Buffers) (n int, err error) {
	v := (*iov)[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			e := syscall.Iovec{Base: &b[0]}
			e.SetLen(len(b))
			v = append(v, e)
		}
	}
	*iov = v
	if len(v) == 0 {
		return 0, nil
	}
	cerr := raw.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
			if e != syscall.EINTR {
				n = int(r)
				if e != 0 {
					n, err = 0, e
				}
				return true
			}
		}
	})
	clear(v) // hold no event past the write
	switch {
	case cerr != nil:
		return 0, cerr
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	}
	return n, err
}
