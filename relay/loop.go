package relay

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"roomrelay/proto"
)

// The loop is the driver of the line door's members on Linux, from the
// moment they are accepted, without goroutines of their own: an idle
// member holds its connection, its cursor and about a kilobyte besides,
// no goroutine stack. One goroutine waits on the poller for sockets that
// became ready and, once a second, asks the session of every member
// whether a deadline has passed; a few workers (one per CPU) read and
// write the ready members without ever blocking. Posting to a room
// schedules its members; a member is in the run queue at most once and
// served by one worker at a time, so everything a worker touches of a
// member is its own while it serves it. While one member waits in the
// queue, more events gather for its next write.
//
// Elsewhere, and for connections that are not sockets, a connDriver
// serves a member instead (drive_conn.go); both call the same session.
type loop struct {
	srv *Server
	p   *poller
	q   runq

	mu      sync.Mutex
	members []*lconn // by socket: members[fd]; nil where the loop has none

	stop    atomic.Bool
	stopped sync.Once
	wg      sync.WaitGroup // the poller goroutine and the workers
}

// lconn is what the loop keeps of a member it serves.
type lconn struct {
	// Set once.
	m  *member  // its loop is m.srv.loop
	nb nbReader // reads its socket without waiting
	fd int32    // its socket, as the poller knows it

	sched atomic.Uint32 // schedIdle and so on
	pend  atomic.Uint32 // evIn, evOut

	max int32 // set once: Limits.MaxLineBytes when it came, for its line reader

	// Only the worker serving it.
	// lr: while it holds part of a line (see read); nil while it is idle.
	lr      *proto.LineReader
	pause   *time.Timer // made when it is first paced: schedules it to read again (see read)
	blocked bool        // its socket is full: write when the poller says so
	handed  bool        // its worker handed the loop to a new one this turn (see handoff)
	ended   bool        // seen off

	rest *net.Buffers // what a full socket did not take yet; nil while it took all (a pointer: an idle member holds 8 bytes, not 24)
}

// wake and stop may come before adopt has set c.m: the member is shared
// (Server.conns) as it is made.
func (c *lconn) wake(m *member) { m.srv.loop.schedule(c) }

// stop has the member served at once, and read: a paced member asks its
// budget again (a reload may have changed the limits).
func (c *lconn) stop(m *member) {
	c.pend.Or(evIn)
	m.srv.loop.schedule(c)
}

// unstall has a stalled member read again: its room's readers caught up
// (see room.unstall).
func (c *lconn) unstall(m *member) { c.resume() }

// resume has a paced member read again: its budget has refilled.
func (c *lconn) resume() {
	c.pend.Or(evIn)
	c.m.srv.loop.schedule(c)
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
	n := registrySize(*s.conf())
	// members by socket: a descriptor is about as high as the connections
	// open, plus the relay's own (listeners, store, poller).
	l := &loop{srv: s, p: p, members: make([]*lconn, 0, n+64)}
	l.q.ring = make([]*lconn, max(16, n))
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

// adopt makes c a member of door served by the loop, greeted with greet,
// with the codec newCodec makes (nil: the line protocol). It reports
// false when c is not a socket the poller can watch.
func (l *loop) adopt(c net.Conn, door string, greet *event, newCodec func(*member) codec) bool {
	if _, ok := c.(syscall.Conn); !ok {
		return false
	}
	s := l.srv
	c = s.detach(c)
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	lc := &lconn{nb: nbReader{raw: raw}}
	lc.m = s.newCodecMember(c, door, lc, newCodec)
	lc.max = int32(s.conf().Limits.MaxLineBytes)
	l.mu.Lock() // the poller, which takes it first, hands it to a worker only once it is greeted
	defer l.mu.Unlock()
	if lc.fd, err = l.p.add(raw); err != nil {
		s.warnf("%s %s: %v", door, c.RemoteAddr(), err)
		s.wg.Add(1) // the caller's c is gone: a goroutine pair serves this one
		go func() {
			defer s.wg.Done()
			s.serveConn(c, door, greet, newCodec)
		}()
		return true
	}
	if n := int(lc.fd) + 1 - len(l.members); n > 0 {
		l.members = append(l.members, make([]*lconn, n)...)
	}
	l.members[lc.fd] = lc
	s.wg.Add(1) // done when the loop has seen it off
	lc.m.deliver(greet)
	return true
}

// schedule makes sure m is served (again) soon.
func (l *loop) schedule(m *lconn) {
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
			if int(e.fd) >= len(l.members) || l.members[e.fd] == nil {
				continue
			}
			lc := l.members[e.fd]
			var bits uint32
			if e.in {
				bits |= evIn
			}
			if e.out {
				bits |= evOut
			}
			lc.pend.Or(bits)
			l.schedule(lc)
		}
		l.mu.Unlock()
		if t := time.Now(); t.Sub(swept) >= time.Second {
			swept = t
			l.p.setDeadline(t.Add(time.Second))
			l.sweep(t)
		}
	}
}

// sweep has every member's session apply its rules of time (see
// member.tick: deadlines, keepalive pings), and has the leaving members
// whose flush is over seen off.
func (l *loop) sweep(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lc := range l.members {
		if lc == nil {
			continue
		}
		m := lc.m
		if m.isDone() {
			if m.flushOver(t) {
				l.schedule(lc)
			}
		} else if why, ok := m.tick(t); ok {
			m.kick(why)
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
		lc := l.q.pop()
		if lc == nil {
			return
		}
		lc.sched.Store(schedQueued)
		l.serve(w, lc)
		handed := lc.handed
		lc.handed = false
		if !lc.sched.CompareAndSwap(schedQueued, schedIdle) {
			lc.sched.Store(schedQueued) // more came up: after the others
			l.q.push(lc)
		}
		if handed {
			return // a new worker took its place
		}
	}
}

// handoff has a new worker take the place of the one serving lc, which
// is about to wait for a secret's check (see hashers) and stops at the
// end of lc's turn: the loop keeps its workers free, and lc is read no
// more until its turn ends.
func (l *loop) handoff(lc *lconn) {
	if lc.handed {
		return
	}
	lc.handed = true
	l.wg.Add(1)
	go l.work()
}

// serve gives a member one turn: it reads what came in, then writes what
// is ready, or sees the leaving member off.
func (l *loop) serve(w *worker, lc *lconn) {
	m := lc.m
	if lc.ended {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			l.srv.errorf("%s %s: %s: panic: %v", m.door, m.addr(), m.name, p)
			m.kick(byPanic)
			l.schedule(lc) // to be seen off
		}
	}()
	ev := lc.pend.Swap(0)
	if ev&evOut != 0 {
		lc.blocked = false
		m.blocked(false, time.Time{})
	}
	if ev&evIn != 0 && !m.isDone() {
		lc.nb.io = w.io
		l.read(lc)
	}
	if m.isDone() {
		l.finish(w, lc)
		return
	}
	if !lc.blocked {
		if _, err := l.flush(w, lc); err != nil {
			m.kick(byWrite)
		}
	}
}

// read hands the lines a member sent to its session, at most readBudget
// of them a turn. A member over its budget (see paceBy) is read no more
// until its budget has refilled, when its timer schedules it again: what
// it sent waits in its line reader and its socket, in order.
func (l *loop) read(lc *lconn) {
	if lc.lr == nil {
		lc.lr = lineReaders.Get().(*proto.LineReader)
		lc.lr.Reset(&lc.nb, int(lc.max))
	}
	defer lc.idle()
	m := lc.m
	for range readBudget {
		t := time.Now()
		if by, paced := m.waitBy(t); !by.IsZero() {
			l.pace(lc, t, by, paced)
			return
		}
		line, err := lc.lr.ReadLine()
		if err == errWouldBlock {
			return
		}
		if why, leave := m.line(line, err, t); leave {
			m.kick(why)
			return
		}
	}
	lc.pend.Or(evIn) // there may be more: after the others
	l.schedule(lc)
}

// lineReaders hold the line readers of members that have nothing to read:
// an idle member holds none, only what it takes to make one (lconn.max).
var lineReaders = sync.Pool{New: func() any { return new(proto.LineReader) }}

// idle gives the member's line reader back when it holds nothing: no
// part of a line, no error to return (see proto.LineReader.Idle).
func (lc *lconn) idle() {
	if lc.lr.Idle() {
		lineReaders.Put(lc.lr)
		lc.lr = nil
	}
}

// pace stops reading a member at t until by, unless, paced for its
// budget, the input it holds unread makes it a flooder (see member.paced).
func (l *loop) pace(lc *lconn, t, by time.Time, paced bool) {
	if paced {
		n, known := inq(lc.nb.raw)
		if lc.m.paced(t, n+lc.lr.Buffered(), known) {
			lc.m.kick(byFlood)
			return
		}
	}
	if lc.pause == nil {
		lc.pause = time.AfterFunc(by.Sub(t), lc.resume)
	} else {
		lc.pause.Reset(by.Sub(t))
	}
}

// flush writes what is ready for a member until its socket is full, at
// most writeBudget times a turn. It reports whether it is caught up.
func (l *loop) flush(w *worker, lc *lconn) (bool, error) {
	m := lc.m
	for range writeBudget {
		var bufs net.Buffers
		if lc.rest != nil {
			bufs = *lc.rest
		}
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
		n, err := w.io.writev(lc.nb.raw, bufs)
		if err != nil && err != errWouldBlock {
			return false, err
		}
		if rest := advance(bufs, n); len(rest) > 0 {
			// The socket is full: keep the rest until it has room.
			if lc.rest == nil {
				lc.rest = new(net.Buffers)
			}
			*lc.rest = append((*lc.rest)[:0], rest...)
			lc.blocked = true
			m.blocked(true, time.Now())
			return false, nil
		}
		lc.rest = nil
	}
	l.schedule(lc) // more may be ready: after the others
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
// Timeouts.Shutdown, then why it leaves; then its session ends it.
func (l *loop) finish(w *worker, lc *lconn) {
	m := lc.m
	if !m.flushOver(time.Now()) {
		if lc.blocked {
			return // when its socket has room, or its time is up (sweep)
		}
		if done, err := l.flush(w, lc); err == nil && !done {
			return
		}
	}
	var rest net.Buffers
	if lc.rest != nil {
		rest = *lc.rest
	}
	lc.rest = nil
	lc.ended = true
	if lc.pause != nil {
		lc.pause.Stop()
	}
	l.mu.Lock()
	if l.members[lc.fd] == lc {
		l.members[lc.fd] = nil
	}
	l.mu.Unlock()
	l.p.del(lc.nb.raw)
	end := func() {
		m.end(rest)
		l.srv.wg.Done() // see adopt
	}
	if !m.why.told() {
		end()
		return
	}
	go end() // not on a worker: the goodbye and the hang-up take up to two seconds
}

// runq is the queue of members to serve. It holds each member at most
// once, so it never holds more than the relay's members.
type runq struct {
	mu     sync.Mutex
	cond   sync.Cond
	ring   []*lconn
	head   int
	n      int
	closed bool
}

func (q *runq) push(m *lconn) {
	q.mu.Lock()
	if q.n == len(q.ring) {
		ring := make([]*lconn, max(16, 2*len(q.ring)))
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
func (q *runq) pop() *lconn {
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

// nbReader reads a member's socket without waiting (errWouldBlock when it
// holds nothing), with the system calls of the worker serving it.
type nbReader struct {
	raw syscall.RawConn
	io  *sysIO // set by the worker before it reads
}

func (r *nbReader) Read(p []byte) (int, error) { return r.io.read(r.raw, p) }
