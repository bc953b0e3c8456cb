package peer

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"roomrelay/relay/config"
	"sync"
	"time"
)

// Receiver takes messages the tutorial way: one TCP connection per message,
// the message ending when the sender closes. It reads up to MaxConns
// connections at once, each into a buffer of its own (allocated once and
// reused), so it holds at most MaxConns*MaxBytes bytes; further connections
// wait in the listen backlog. Messages are delivered one at a time in the
// order their connections arrived, so a sender that opens its next
// connection only after closing the last is seen in order; a connection
// that stalls holds back the ones after it until its deadline, and is then
// dropped.
type Receiver struct {
	ln       net.Listener // set once
	maxBytes int
	timeout  time.Duration
	logf     config.Logf
	deliver  func(from netip.AddrPort, payload []byte)

	// slots holds one buffer (nil until first used) per connection that
	// may be read at once; a connection takes one and gives it back.
	slots chan []byte
	done  chan struct{} // closed by Close

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu
	closed bool                  // guarded by mu

	wg sync.WaitGroup // the accept loop and the connections
}

// NewReceiver serves ln until Close: each connection is read to its end
// within timeout, at most maxBytes of it kept (the rest is read, dropped
// and logged), and deliver is called with the sender's address and what
// was kept. deliver is called from one goroutine at a time and must not
// keep payload after it returns.
func NewReceiver(ln net.Listener, maxBytes, maxConns int, timeout time.Duration, logf config.Logf,
	deliver func(from netip.AddrPort, payload []byte)) *Receiver {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	r := &Receiver{
		ln: ln, maxBytes: maxBytes, timeout: timeout, logf: logf, deliver: deliver,
		slots: make(chan []byte, maxConns), done: make(chan struct{}), conns: map[net.Conn]struct{}{},
	}
	for range maxConns {
		r.slots <- nil
	}
	r.wg.Add(1)
	go r.accept()
	return r
}

// Addr returns the address the receiver listens on.
func (r *Receiver) Addr() net.Addr { return r.ln.Addr() }

// Close stops accepting, drops the messages being read and waits for every
// goroutine of the receiver to end. It may be called more than once.
func (r *Receiver) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.done)
		r.ln.Close()
		for c := range r.conns {
			c.SetDeadline(time.Unix(1, 0))
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// closedChan is a channel that is already closed.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (r *Receiver) accept() {
	defer r.wg.Done()
	prev := closedChan // closed when the previous connection's message is delivered
	var backoff time.Duration
	for {
		var buf []byte
		select {
		case buf = <-r.slots:
		case <-r.done:
			return
		}
		c, err := r.ln.Accept()
		if err != nil {
			r.slots <- buf
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			r.logf("accept: %v; retrying in %v", err, backoff)
			select {
			case <-time.After(backoff):
			case <-r.done:
				return
			}
			continue
		}
		backoff = 0
		// The deadline is set before c is tracked, so that Close's deadline in
		// the past, set on every tracked connection, always wins.
		c.SetReadDeadline(time.Now().Add(r.timeout))
		if !r.track(c) {
			c.Close()
			r.slots <- buf
			return
		}
		if buf == nil {
			buf = make([]byte, r.maxBytes)
		}
		next := make(chan struct{})
		r.wg.Add(1)
		go r.serve(c, buf, prev, next)
		prev = next
	}
}

// track records c so that Close can unblock it; false means the receiver
// is closing.
func (r *Receiver) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

// serve reads one message, waits for the previous connection's turn, and
// delivers it.
func (r *Receiver) serve(c net.Conn, buf []byte, prev <-chan struct{}, next chan<- struct{}) {
	defer r.wg.Done()
	defer close(next)
	defer func() { r.slots <- buf }()
	from := addrPort(c.RemoteAddr())
	n, extra, err := readMessage(c, buf)
	c.Close()
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	select {
	case <-prev:
	case <-r.done:
		return
	}
	select {
	case <-r.done:
		return // closing: not read whole
	default:
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.logf("message from %s: not closed within %v; dropped", c.RemoteAddr(), r.timeout)
		} else {
			r.logf("message from %s: %v; dropped", c.RemoteAddr(), err)
		}
		return
	}
	if extra > 0 {
		r.logf("message from %s: %d bytes over the limit of %d; the rest was discarded", c.RemoteAddr(), extra, r.maxBytes)
	}
	r.deliver(from, buf[:n])
}

// readMessage reads c to its end, within the deadline already set: the first len(buf) bytes
// into buf, the rest counted and dropped.
func readMessage(c net.Conn, buf []byte) (n int, extra int64, err error) {
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, 0, nil
		}
		if err != nil {
			return n, 0, err
		}
	}
	extra, err = io.Copy(io.Discard, c)
	return n, extra, err
}

// addrPort returns a connection address as a netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
