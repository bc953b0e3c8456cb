package relay

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"roomrelay/proto"
)

// connDriver serves one member's connection with two goroutines: a reader
// that hands each line to the session, and a writer that writes what the
// session has for it. It serves the line door where there is no loop
// (built with -tags noepoll, or on systems without epoll) and connections
// that are not sockets. Its waits end at the session's deadlines; when
// one passes it asks the session what that means.
type connDriver struct {
	wakeC chan struct{} // capacity 1: something may be ready to write; never closed
	stopC chan struct{} // capacity 1: stop or unstall was called (ends a pause of the reader); never closed
	wdone chan struct{} // closed by the writer when it returns
	// A write cut by its deadline breaks the connection for good (TLS:
	// crypto/tls says so): the member ends then. Set once.
	sealed bool

	// mu orders the write deadlines set by stop and by the writer, so
	// that stop cannot put a goodbye's fresh deadline in the past.
	mu     sync.Mutex
	saying bool // the writer is writing the goodbye

	// The writer's.
	batch  []*event
	bufs   net.Buffers
	wbuf   net.Buffers // what WriteTo consumes: the rest of a batch a deadline cut
	joined []byte      // a sealed connection's batch in one piece; see writeSealed
}

// serveConn serves c as a member of door with a connDriver until the
// member is done, greeting it first with greet, with the codec newCodec
// makes (nil: the line protocol). It blocks.
//
// A connection with a handshake of its own (TLS) makes it first, within
// Timeouts.Handshake, which also bounds the name that follows it.
func (s *Server) serveConn(c net.Conn, door string, greet *event, newCodec func(*member) codec) {
	born := time.Now()
	_, sealed := c.(handshaker)
	if sealed && !s.handshake(c, door, born.Add(s.conf().Timeouts.Handshake.D())) {
		s.release(c)
		return
	}
	g := &connDriver{wakeC: make(chan struct{}, 1), stopC: make(chan struct{}, 1), wdone: make(chan struct{}), sealed: sealed}
	m := s.newMemberAt(c, door, g, newCodec, born)
	m.deliver(greet)
	go g.writeLoop(m)
	m.kick(g.readLoop(m))
	<-g.wdone
	m.end(g.wbuf)
}

func (g *connDriver) wake(*member) {
	select {
	case g.wakeC <- struct{}{}:
	default:
	}
}

func (g *connDriver) stop(m *member) {
	past := time.Unix(1, 0)
	m.conn.SetReadDeadline(past)
	g.mu.Lock()
	if !g.saying {
		by := past
		if w := m.writeBy(); g.sealed && !w.IsZero() {
			// A TLS write cut short breaks the connection (see sealed): a
			// write under way gets the deadline the timeouts now in force
			// give it (a reload), or, for a member leaving with a flush,
			// its flush's end at the latest. (Between writes the writer
			// sets its own before the next, under mu.)
			switch {
			case !m.isDone():
				by = w
			case m.why.flushes():
				by = flushEnd(m, w)
			}
		}
		m.conn.SetWriteDeadline(by)
	}
	g.mu.Unlock()
	select {
	case g.stopC <- struct{}{}:
	default:
	}
	g.wake(m)
}

// unstall ends the reader's pause for a stall that ended early (see
// room.unstall): it asks waitBy again.
func (g *connDriver) unstall(*member) {
	select {
	case g.stopC <- struct{}{}:
	default:
	}
}

// flushEnd is by, or the end of the flush of m, a leaving member, when
// that comes first.
func flushEnd(m *member, by time.Time) time.Time {
	if end := time.Unix(0, m.flushBy); end.Before(by) {
		return end
	}
	return by
}

// readLoop hands m's lines to the session until it leaves, and says why.
func (g *connDriver) readLoop(m *member) (why reason) {
	defer func() {
		if p := recover(); p != nil {
			m.srv.errorf("%s %s: %s: panic: %v", m.door, m.addr(), m.name, p)
			why = byPanic
		}
	}()
	lr := proto.NewLineReader(m.conn, m.srv.conf().Limits.MaxLineBytes)
	var armed time.Time
	var pause *time.Timer
	for {
		// The deadline moves with every line; re-arm it at most once a
		// second of its moving, and whenever it came sooner.
		if by := m.wakeBy(); by.Before(armed) || by.Sub(armed) > time.Second {
			m.conn.SetReadDeadline(by)
			armed = by
		}
		// A kick sets the deadline in the past after it closes done: if it
		// came before the line above put it back in the future, it shows
		// here.
		if m.isDone() {
			return m.why
		}
		if by, paced := m.waitBy(time.Now()); !by.IsZero() {
			if paced {
				if n, known := connInq(m.conn); m.paced(time.Now(), n+lr.Buffered(), known) {
					return byFlood
				}
			}
			if !g.pause(m, &pause, by) {
				return m.why
			}
			continue
		}
		line, err := lr.ReadLine()
		t := time.Now()
		if m.isDone() {
			return m.why
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if why, ok := m.tick(t); ok {
				return why
			}
			armed = time.Time{} // it was pinged, or spoke meanwhile, or the timeouts changed
			continue
		}
		if why, leave := m.line(line, err, t); leave {
			return why
		}
	}
}

// pause waits until by, when m's budget has refilled (see paceBy),
// reading nothing meanwhile, or until stop is called (the limits may have
// changed: the reader asks again); it reports false when m was kicked
// first. *t is the reader's timer, made on its first pause.
func (g *connDriver) pause(m *member, t **time.Timer, by time.Time) bool {
	d := time.Until(by)
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	select {
	case <-(*t).C:
		return true
	case <-g.stopC:
		(*t).Stop()
		return !m.isDone()
	case <-m.doneC():
		(*t).Stop()
		return false
	}
}

// writeLoop writes what is ready for m in batches until m is kicked, then
// sees it off.
func (g *connDriver) writeLoop(m *member) {
	defer close(g.wdone)
	defer m.recovered()
	for {
		select {
		case <-g.wakeC:
			// Let the goroutine that woke us, and any other poster, go on
			// first: under load more events gather into one write.
			runtime.Gosched()
			if err := g.flush(m, time.Time{}); err != nil {
				m.kick(byWrite)
			}
		case <-m.doneC():
			g.finish(m)
			return
		}
	}
}

// flush writes batches until nothing is ready, or until the member leaves
// and its flush is over; a write that makes no progress for
// Timeouts.Write ends the member. until, when not zero, bounds the whole.
func (g *connDriver) flush(m *member, until time.Time) error {
	if g.batch == nil {
		// Small at first: a member that gets little holds little; under
		// load the batch grows to batchMax.
		g.batch = make([]*event, 0, 4)
		g.bufs = make(net.Buffers, 0, 4)
	}
	for {
		if len(g.wbuf) == 0 {
			var ok bool
			if g.bufs, ok = m.collect(&g.batch, g.bufs[:0]); !ok {
				m.kick(bySlow)
				return nil
			}
			if len(g.bufs) == 0 {
				return nil
			}
			g.wbuf = g.bufs
		}
		t := time.Now()
		m.blocked(true, t) // from now, until the write is done
		g.mu.Lock()
		if m.isDone() && m.flushOver(t) || !until.IsZero() && t.After(until) {
			g.mu.Unlock()
			return nil
		}
		by := m.writeBy()
		if !until.IsZero() && until.Before(by) {
			by = until
		}
		if m.isDone() {
			by = flushEnd(m, by)
		}
		m.conn.SetWriteDeadline(by)
		g.mu.Unlock()
		var n int64
		var err error
		if g.sealed {
			n, err = g.writeSealed(m.conn)
		} else {
			n, err = g.wbuf.WriteTo(m.conn)
		}
		switch {
		case err == nil:
			m.blocked(false, t)
		case errors.Is(err, os.ErrDeadlineExceeded) && !g.sealed:
			t = time.Now()
			if n > 0 { // progress: the write deadline counts from here
				m.blocked(false, t)
				m.blocked(true, t)
			}
			if why, ok := m.expired(t); ok {
				m.kick(why)
				return nil
			}
		default:
			return err
		}
	}
}

// writeSealed writes the batch in wbuf to a sealed (TLS) connection in
// one Write: each Write is a record of its own (or several, for a long
// one), so a batch of lines goes in as few records and system calls as it
// fills, not one a line. A write that fails leaves the connection broken
// (see sealed): the member ends.
func (g *connDriver) writeSealed(c net.Conn) (int64, error) {
	g.joined = g.joined[:0]
	for _, b := range g.wbuf {
		g.joined = append(g.joined, b...)
	}
	n, err := c.Write(g.joined)
	if err == nil {
		g.wbuf = g.wbuf[:0]
	}
	if cap(g.joined) > 4<<10 {
		g.joined = nil // a burst's buffer is not kept by an idle member
	}
	return int64(n), err
}

// finish writes, within bounds, what a leaving member is still owed; its
// goodbye is the session's (see end).
func (g *connDriver) finish(m *member) {
	if m.why.flushes() {
		g.flush(m, time.Unix(0, m.flushBy))
	}
	g.mu.Lock()
	g.saying = true // stop must not cut the goodbye short from now on
	g.mu.Unlock()
}
