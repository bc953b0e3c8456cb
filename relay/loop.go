package relay

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The loop serves the line door's members from the moment they are
// accepted, without goroutines of their own: an idle member holds its
// connection, its cursor and about a kilobyte besides, no goroutine stack.
// One goroutine waits on the poller for sockets that became ready and,
// once a second, looks for members that went idle or whose writes
// stalled; a few workers (one per CPU) read and write the ready members
// without ever blocking. Posting
// to a room schedules its members; a member is in the run queue at most
// once and served by one worker at a time, so everything a worker touches
// of a member is its own while it serves it. While one member waits in
// the queue, more events gather for its next write.
//
// On systems without a poller, and for connections that are not sockets,
// a member has a session and a writer goroutine instead (Server.serveLine,
// member.writeLoop); the two ways share everything but the waiting.
type loop struct {
	srv *Server
	p   *poller
	q   runq

	mu      sync.Mutex
	members map[int32]*member // by socket

	stop    atomic.Bool
	stopped sync.Once
	wg      sync.WaitGroup // the poller goroutine and the workers
}

// What a member's pend holds: what the poller saw of its socket.
const (
	evIn  uint32 = 1 << iota // input, end of input or an error
	evOut                    // room to write again
)

// A member's sched: whether it is in the run queue.
const (
	schedIdle   uint32 = iota
	schedQueued        // in the queue or being served
	schedAgain         // being served, and more came up meanwhile
)

// Bounds of one turn of a member, so that one busy member does not hold
// a worker while others wait.
const (
	readBudget  = 64 // lines
	writeBudget = 16 // writes of up to batchMax events
)

func newLoop(s *Server) (*loop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &loop{srv: s, p: p, members: map[int32]*member{}}
	l.q.cond.L = &l.q.mu
	workers := runtime.GOMAXPROCS(0)
	l.wg.Add(1 + workers)
	go l.poll()
	for range workers {
		go l.work()
	}
	return l, nil
}

// close stops the loop once every member has left.
func (l *loop) close() {
	l.stopped.Do(func() {
		l.stop.Store(true)
		l.p.close()
		l.q.close()
		l.wg.Wait()
	})
}

// add puts m's socket under watch.
func (l *loop) add(m *member) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fd, err := l.p.add(m.nb.raw)
	if err != nil {
		return err
	}
	m.fd = fd
	m.lastIn.Store(time.Now().UnixNano())
	l.members[fd] = m
	return nil
}

// kickAll kicks every member, named or not.
func (l *loop) kickAll(why reason) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.members {
		m.kick(why)
	}
}

// schedule makes sure m is served (again) soon.
func (l *loop) schedule(m *member) {
	for {
		switch m.sched.Load() {
		case schedIdle:
			if m.sched.CompareAndSwap(schedIdle, schedQueued) {
				l.q.push(m)
				return
			}
		case schedQueued:
			if m.sched.CompareAndSwap(schedQueued, schedAgain) {
				return
			}
		default:
			return
		}
	}
}

// poll hands the members whose sockets are ready to the workers, and
// sweeps once a second.
func (l *loop) poll() {
	defer l.wg.Done()
	var evs []pollEvent
	swept := time.Now()
	l.p.setDeadline(swept.Add(time.Second))
	for {
		var err error
		evs, err = l.p.wait(evs[:0])
		if l.stop.Load() {
			return
		}
		if err != nil {
			l.srv.errorf("line door: poller: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
		l.mu.Lock()
		for _, e := range evs {
			m := l.members[e.fd]
			if m == nil {
				continue
			}
			var bits uint32
			if e.in {
				bits |= evIn
			}
			if e.out {
				bits |= evOut
			}
			m.pend.Or(bits)
			l.schedule(m)
		}
		l.mu.Unlock()
		if t := time.Now(); t.Sub(swept) >= time.Second {
			swept = t
			l.p.setDeadline(t.Add(time.Second))
			l.sweep(t)
		}
	}
}

// sweep kicks the members that sent no name within Timeouts.Handshake,
// nothing for Timeouts.Idle, or whose socket took nothing for
// Timeouts.Write, and ends the leaving members whose time to flush is up.
func (l *loop) sweep(t time.Time) {
	tm := l.srv.conf().Timeouts
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.members {
		quiet := t.Sub(time.Unix(0, m.lastIn.Load()))
		blocked := m.blockedAt.Load()
		switch {
		case m.isDone():
			if t.After(m.flushBy) {
				l.schedule(m)
			}
		case !m.named.Load() && quiet > tm.Handshake.D():
			m.kick(byNoName)
		case quiet > tm.Idle.D():
			m.kick(byIdle)
		case blocked != 0 && t.Sub(time.Unix(0, blocked)) > tm.Write.D():
			m.kick(byWrite)
		}
	}
}

// worker is one worker's scratch space, reused for every write.
type worker struct {
	batch []*event
	bufs  net.Buffers
	io    *sysIO
}

func (l *loop) work() {
	defer l.wg.Done()
	w := &worker{batch: make([]*event, 0, batchMax), bufs: make(net.Buffers, 0, batchMax), io: newSysIO()}
	for {
		m := l.q.pop()
		if m == nil {
			return
		}
		m.sched.Store(schedQueued)
		l.serve(w, m)
		if !m.sched.CompareAndSwap(schedQueued, schedIdle) {
			m.sched.Store(schedQueued) // more came up: after the others
			l.q.push(m)
		}
	}
}

// serve gives m one turn: it reads what came in, then writes what is
// ready, or sees the leaving member off.
func (l *loop) serve(w *worker, m *member) {
	defer func() {
		if p := recover(); p != nil {
			l.srv.errorf("line %s: %s: panic: %v", m.conn.RemoteAddr(), m.name, p)
			m.kick(byRead)
		}
	}()
	if m.ended {
		return
	}
	ev := m.pend.Swap(0)
	if ev&evOut != 0 {
		m.blocked = false
		m.blockedAt.Store(0)
	}
	if ev&evIn != 0 && !m.isDone() {
		m.nb.io = w.io
		l.read(m)
	}
	if m.isDone() {
		l.finish(w, m)
		return
	}
	if !m.blocked {
		if _, err := l.flush(w, m); err != nil {
			m.kick(byWrite)
		}
	}
}

// read handles the lines m sent, at most readBudget of them a turn: its
// hello until it has a name, then its requests.
func (l *loop) read(m *member) {
	s := l.srv
	for range readBudget {
		line, err := m.lr.ReadLine()
		if err == errWouldBlock {
			return
		}
		t := time.Now()
		if !m.named.Load() { // lastIn stays the time it connected
			h, reply, err := s.hello(m, line, err)
			switch {
			case err != nil:
				s.debugf("line %s: handshake: %v", m.conn.RemoteAddr(), err)
				m.kick(byEOF)
				return
			case reply != nil:
				m.deliver(lineEvent(reply))
			default:
				s.enter(m, h)
				m.lastIn.Store(t.UnixNano())
				m.named.Store(true)
			}
			continue
		}
		m.lastIn.Store(t.UnixNano())
		if why, leave := s.input(m, line, err, t); leave {
			m.kick(why)
			return
		}
	}
	m.pend.Or(evIn) // there may be more: after the others
	l.schedule(m)
}

// flush writes what is ready for m until its socket is full, at most
// writeBudget times a turn. It reports whether m is caught up.
func (l *loop) flush(w *worker, m *member) (bool, error) {
	for range writeBudget {
		bufs := m.rest
		if len(bufs) == 0 {
			var ok bool
			w.bufs, ok = m.collect(&w.batch, w.bufs[:0])
			if !ok {
				m.kick(bySlow)
				return true, nil
			}
			if len(w.bufs) == 0 {
				return true, nil
			}
			bufs = w.bufs
		}
		n, err := w.io.writev(m.nb.raw, bufs)
		if err != nil && err != errWouldBlock {
			return false, err
		}
		if rest := advance(bufs, n); len(rest) > 0 {
			// The socket is full: keep the rest until it has room.
			m.rest = append(m.rest[:0], rest...)
			m.blocked = true
			m.blockedAt.Store(time.Now().UnixNano())
			return false, nil
		}
		m.rest = nil
	}
	l.schedule(m) // more may be ready: after the others
	return false, nil
}

// advance returns what is left of bufs after n bytes were written.
func advance(bufs net.Buffers, n int) net.Buffers {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

// finish sees a leaving member off: what it is owed, within
// Timeouts.Shutdown, then why it leaves.
func (l *loop) finish(w *worker, m *member) {
	if m.why.flushes() && time.Now().Before(m.flushBy) {
		if m.blocked {
			return // when its socket has room, or its time is up (sweep)
		}
		if done, err := l.flush(w, m); err == nil && !done {
			return
		}
	}
	if bye := m.goodbye(); bye != nil {
		w.io.writev(m.nb.raw, append(m.rest, bye)) // best effort
	}
	m.rest = nil
	m.ended = true
	l.mu.Lock()
	if l.members[m.fd] == m {
		delete(l.members, m.fd)
	}
	l.mu.Unlock()
	l.p.del(m.nb.raw)
	s := l.srv
	s.leave(m)
	gone := func() {
		s.release(m.conn)
		if m.id != 0 {
			s.infof("line %s: %s left: %s", m.conn.RemoteAddr(), m.name, m.why)
		}
		s.wg.Done() // see adoptLine
	}
	if !m.why.told() {
		gone()
		return
	}
	go func() { // not on a worker: hanging up takes up to a second
		hangUp(m.conn, time.Second)
		gone()
	}()
}

// runq is the queue of members to serve. It holds each member at most
// once, so it never holds more than the relay's members.
type runq struct {
	mu     sync.Mutex
	cond   sync.Cond
	ring   []*member
	head   int
	n      int
	closed bool
}

func (q *runq) push(m *member) {
	q.mu.Lock()
	if q.n == len(q.ring) {
		ring := make([]*member, max(16, 2*len(q.ring)))
		for i := range q.n {
			ring[i] = q.ring[(q.head+i)%len(q.ring)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = m
	q.n++
	q.mu.Unlock()
	q.cond.Signal()
}

// pop waits for a member to serve; it returns nil once the queue is closed.
func (q *runq) pop() *member {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n == 0 {
		if q.closed {
			return nil
		}
		q.cond.Wait()
	}
	m := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return m
}

func (q *runq) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
