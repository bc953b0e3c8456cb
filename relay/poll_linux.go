package relay

import (
	"errors"
	"io"
	"net"
	"syscall"
	"unsafe"
)

// poller tells which of many sockets are ready, with Linux's epoll in
// edge-triggered mode: one event each time a socket gets input or gets
// room for output after being full.
type poller struct {
	ep   int
	wake [2]int // a pipe: a byte written to wake[1] interrupts wait
}

// wakeFD marks the wake pipe's events.
const wakeFD = -1

// epollET is EPOLLET, which package syscall spells negative on some
// architectures and positive on others.
const epollET = 1 << 31

func newPoller() (*poller, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{ep: ep}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(ep)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeFD}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.close()
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

// wait blocks for at most ms milliseconds (or until interrupt) and fills
// evs with the sockets that became ready.
func (p *poller) wait(raw []pollRaw, evs []pollEvent, ms int) ([]pollEvent, error) {
	n, err := syscall.EpollWait(p.ep, raw, ms)
	if err == syscall.EINTR {
		return evs, nil
	}
	if err != nil {
		return evs, err
	}
	for _, e := range raw[:n] {
		if e.Fd == wakeFD {
			var b [16]byte
			syscall.Read(p.wake[0], b[:])
			continue
		}
		evs = append(evs, pollEvent{
			fd:  e.Fd,
			in:  e.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0,
			out: e.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0,
		})
	}
	return evs, nil
}

// interrupt makes a wait return now.
func (p *poller) interrupt() { syscall.Write(p.wake[1], []byte{0}) }

func (p *poller) close() {
	syscall.Close(p.ep)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}

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
