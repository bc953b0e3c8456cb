package relay

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"roomrelay/proto"
)

// batchMax is how many events one write carries at most.
const batchMax = 64

// reason is why a member was disconnected.
type reason uint8

const (
	byQuit        reason = iota // it said /quit
	byEOF                       // it closed the connection
	byRead                      // reading failed
	byIdle                      // it sent nothing for Timeouts.Idle
	bySlow                      // it fell more than Limits.Queue events behind
	byFlood                     // it kept sending over its rate limit
	byWrite                     // writing to it failed or timed out
	byShutdown                  // the relay is stopping
	byUnreachable               // a legacy member could not be dialled
	byNoName                    // it sent no valid name within Timeouts.Handshake
	byLapsed                    // a legacy member took no delivery and posted nothing for Timeouts.LegacyLapse
	byReplaced                  // a legacy member's endpoint was registered under another name
	numReasons
)

var reasonText = [numReasons]string{
	byQuit: "quit", byEOF: "closed", byRead: "read error", byIdle: "idle too long",
	bySlow: "too slow", byFlood: "flooding", byWrite: "write failed", byShutdown: "relay shutting down",
	byUnreachable: "unreachable", byNoName: "no name", byLapsed: "lapsed", byReplaced: "replaced",
}

func (r reason) String() string { return reasonText[r] }

// told reports whether a member leaving for r was told why, so that its
// connection should end with a FIN rather than a reset.
func (r reason) told() bool { return r != byEOF && r != byRead && r != byWrite && r != byUnreachable }

// flushes reports whether a member leaving for r still gets what is queued.
func (r reason) flushes() bool {
	return r == byQuit || r == byShutdown || r == byFlood || r == byIdle
}

// member is one member of the relay: a client of the line door, with its
// connection, or one registered through the legacy door, which is dialled
// for every event. Where there is a poller, the loop serves a line
// member's socket from the moment it is accepted; any other member has a
// writer goroutine of its own (writeLoop), and a line member not served by
// the loop a session goroutine too (serveLine).
type member struct {
	// Set once, before the member is shared (the name when it is claimed).
	srv  *Server
	id   uint64 // 0 until its name is claimed
	name string
	key  string   // proto.Fold(name)
	conn net.Conn // nil for a legacy member
	out  sender   // nil for a line member: how a connectionless member is reached
	json bool     // JSON mode
	lp   *loop    // the loop that serves it, or nil
	nb   nbReader // with lp: reads its socket without waiting
	w    *writer  // without lp: its writer goroutine's

	// Set once by kick.
	kicked  sync.Once
	why     reason        // written before done is closed
	flushBy time.Time     // likewise: when flushing a leaving member stops
	done    chan struct{} // closed by kick: the member is leaving

	next atomic.Uint64 // next sequence number of room to write; see room.add
	base atomic.Uint64 // the room's head when it joined: replay does not count as lag

	mu   sync.Mutex
	room *room    // current room; changed only by whoever reads its input
	priv []queued // private events and notices, at most Limits.Queue (twice that just after a /join: see Server.join)

	// Whoever reads its input: the session goroutine, or the loop's worker.
	lr  *proto.LineReader
	lim limiter

	// Set by whoever reads its input; read by collect.
	stamps atomic.Bool // text mode, /time on: a line with a time gets "[HH:MM] " before it

	// With lp: kept by the loop's goroutines.
	sched     atomic.Uint32 // schedIdle and so on
	pend      atomic.Uint32 // evIn, evOut
	named     atomic.Bool   // its name is claimed and it is in a room
	lastIn    atomic.Int64  // when it connected or last sent a line, in Unix nanoseconds
	blockedAt atomic.Int64  // when its socket became full; 0 while it takes writes
	fd        int32         // its socket, as the poller knows it
	// Only the worker serving it.
	blocked bool        // its socket is full: write when the poller says so
	ended   bool        // seen off
	rest    net.Buffers // what a full socket did not take yet
}

// writer is what a member's writer goroutine keeps.
type writer struct {
	wake  chan struct{} // capacity 1: something may be ready to write; never closed
	done  chan struct{} // closed by the writer when it returns
	batch []*event
	bufs  net.Buffers
	wbuf  net.Buffers // what WriteTo consumes
}

// newMember returns a member on c (nil for a legacy member), still
// without a name, whose writer goroutine is to be started with writeLoop.
func (s *Server) newMember(c net.Conn) *member {
	return &member{srv: s, conn: c, done: make(chan struct{}),
		w: &writer{wake: make(chan struct{}, 1), done: make(chan struct{})}}
}

// nbReader reads a member's socket without waiting (errWouldBlock when it
// holds nothing), with the system calls of the worker serving it.
type nbReader struct {
	raw syscall.RawConn
	io  *sysIO // set by the worker before it reads
}

func (r *nbReader) Read(p []byte) (int, error) { return r.io.read(r.raw, p) }

// poke has m's writer (or the loop) write what is ready, without blocking.
func (m *member) poke() {
	if m.lp != nil {
		m.lp.schedule(m)
		return
	}
	select {
	case m.w.wake <- struct{}{}:
	default:
	}
}

// kick ends the member for why; only the first call counts. It never
// blocks: the writer and the session goroutine, or the loop, see done
// and finish.
func (m *member) kick(why reason) {
	m.kicked.Do(func() {
		m.why = why
		m.flushBy = time.Now().Add(m.srv.conf().Timeouts.Shutdown.D())
		if m.lp != nil {
			close(m.done)
			m.lp.schedule(m)
			return
		}
		if m.conn != nil {
			// Deadlines first, done last: the writer's goodbye sets a fresh
			// write deadline after it sees done, and must not lose it to
			// this one.
			past := time.Unix(1, 0)
			if !why.flushes() {
				m.conn.SetWriteDeadline(past) // unblock a write to a frozen peer
			}
			m.conn.SetReadDeadline(past) // unblock the session's read
		}
		close(m.done)
	})
}

// isDone reports whether m was kicked.
func (m *member) isDone() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// sender delivers batches to a member that has no connection of its own
// (a legacy member, dialled for every message). It encodes each event for
// its own wire format and leaves out the kinds that format lacks; the
// events are shared, read-only, and not the sender's after send returns.
type sender interface {
	send(m *member, evs []*event)
}

// queued is a private event, to be written after room event at.
type queued struct {
	ev *event
	at uint64
}

// lag is how many room events m has still to be written, not counting a
// replay. Called with m's room's mu held.
func (m *member) lag(seq uint64) uint64 {
	if from := max(m.next.Load(), m.base.Load()); from <= seq {
		return seq - from + 1
	}
	return 0
}

// stopping reports whether a writer should stop writing now: the member
// is leaving, and either it is not owed a flush or the time for it is up.
func (m *member) stopping() bool {
	return m.isDone() && (!m.why.flushes() || time.Now().After(m.flushBy))
}

// deliver queues a private event for m, after the room events posted so
// far; a member with a full queue is kicked as too slow.
func (m *member) deliver(ev *event) {
	m.mu.Lock()
	full := len(m.priv) >= m.srv.conf().Limits.Queue
	if !full {
		var at uint64
		if r := m.room; r != nil {
			r.mu.RLock()
			at = r.seq
			r.mu.RUnlock()
		}
		m.priv = append(m.priv, queued{ev, at})
	}
	m.mu.Unlock()
	if full {
		m.kick(bySlow)
		return
	}
	m.poke()
}

// notify sends m a notice (or, with kind KindError, an error) of its own.
func (m *member) notify(kind proto.Kind, format string, args ...any) {
	m.deliver(newEvent(&proto.Event{Kind: kind, Text: fmt.Sprintf(format, args...)}, 0))
}

// writeLoop is the member's writer: it writes whatever is ready in
// batches until the member is kicked, then says goodbye.
func (m *member) writeLoop() {
	defer close(m.w.done)
	timeout := m.srv.conf().Timeouts.Write.D()
	for {
		select {
		case <-m.w.wake:
			// Let the goroutine that woke us, and any other poster, go on
			// first: under load more events gather into one write.
			runtime.Gosched()
			if err := m.flush(timeout); err != nil {
				m.kick(byWrite)
			}
		case <-m.done:
			m.finish()
			return
		}
	}
}

// finish writes, within bounds, what a leaving member is still owed and
// the reason it is leaving.
func (m *member) finish() {
	t := m.srv.conf().Timeouts
	if m.why.flushes() {
		if m.flush(min(t.Write.D(), t.Shutdown.D())) != nil {
			return
		}
	}
	if bye := m.goodbye(); bye != nil {
		m.conn.SetWriteDeadline(time.Now().Add(min(t.Write.D(), time.Second)))
		m.conn.Write(bye)
	}
}

// goodbye returns the line that tells a leaving member why it leaves, or
// nil when there is nobody to tell.
func (m *member) goodbye() []byte {
	if m.out != nil {
		return nil // a connectionless member cannot be told why
	}
	var e proto.Event
	switch m.why {
	case byEOF, byRead, byWrite:
		return nil
	case byQuit:
		e = proto.Event{Kind: proto.KindNotice, Text: "bye"}
	case byNoName:
		e = proto.Event{Kind: proto.KindError, Text: fmt.Sprintf("no name within %v; bye", m.srv.conf().Timeouts.Handshake.D())}
	case bySlow:
		e = proto.Event{Kind: proto.KindError, Text: fmt.Sprintf(
			"disconnected: too slow (more than %d events behind); reconnect to resume", m.srv.conf().Limits.Queue)}
	default:
		e = proto.Event{Kind: proto.KindError, Text: "disconnected: " + m.why.String()}
	}
	if m.json {
		return proto.AppendJSON(nil, &e)
	}
	return proto.AppendText(nil, &e)
}

// flush writes batches until nothing is ready.
func (m *member) flush(timeout time.Duration) error {
	w := m.w
	if w.batch == nil {
		// Small at first: a member that gets little holds little; under
		// load the batch grows to batchMax.
		w.batch = make([]*event, 0, 4)
		w.bufs = make(net.Buffers, 0, 4)
	}
	for {
		var ok bool
		if m.out != nil {
			var batch []*event
			if batch, ok = m.batch(&w.batch); ok && len(batch) > 0 {
				m.out.send(m, batch)
				clear(batch)
				w.batch = batch[:0]
				continue
			}
		} else if w.bufs, ok = m.collect(&w.batch, w.bufs[:0]); ok && len(w.bufs) > 0 {
			m.conn.SetWriteDeadline(time.Now().Add(timeout))
			w.wbuf = w.bufs
			if _, err := w.wbuf.WriteTo(m.conn); err != nil {
				return err
			}
			continue
		}
		if !ok {
			m.kick(bySlow)
		}
		return nil
	}
}

// collect appends m's next batch to bufs and returns it: the room's
// events from the cursor on, each private event in its place among them.
// *scratch is space for the batch, grown as needed. It reports false when
// the cursor has fallen out of the room's ring.
func (m *member) collect(scratch *[]*event, bufs net.Buffers) (net.Buffers, bool) {
	batch, ok := m.batch(scratch)
	stamps := m.stamps.Load() && !m.json
	for i, ev := range batch {
		if stamps {
			if st := ev.stamped(); st != nil {
				bufs = append(bufs, st) // a buffer of its own: the line is shared as it is
			}
		}
		bufs = append(bufs, ev.line(m.json))
		batch[i] = nil
	}
	*scratch = batch[:0]
	return bufs, ok
}

// batch returns m's next batch of events, in *scratch's space: the room's
// events from the cursor on, each private event in its place among them.
// The caller clears it when done. It reports false when the cursor has
// fallen out of the room's ring.
func (m *member) batch(scratch *[]*event) ([]*event, bool) {
	m.mu.Lock()
	r := m.room
	if r != nil {
		r.mu.RLock()
	}
	batch, ok := m.take(r, (*scratch)[:0], batchMax)
	if r != nil {
		r.mu.RUnlock()
	}
	m.mu.Unlock()
	return batch, ok
}

// take appends to batch, up to limit events, what m is to be written
// next: the events of r (its room, or nil) from its cursor on, and its
// private events, each in its place among them. It moves the cursor and
// takes what it returns off the private queue. It reports false when the
// cursor has fallen out of r's ring past the replay. Called with m.mu held
// and, when r is not nil, r.mu.
func (m *member) take(r *room, batch []*event, limit int) ([]*event, bool) {
	ok := true
	var seq uint64
	next, p := m.next.Load(), 0
	if r != nil {
		seq = r.seq
		if oldest := r.oldest(); next < oldest {
			// Still replaying: the room moved on past the cursor, which
			// loses history but is not the member's fault. Past the
			// replay, it is: room.post kicks at Limits.Queue first.
			ok = next < m.base.Load()
			if ok {
				batch = append(batch, gapNotice(r.name, next, oldest))
				next = oldest
			}
		}
	}
	for ok && len(batch) < limit {
		inRoom := r != nil && next <= seq // a room event is next
		if p < len(m.priv) && (!inRoom || m.priv[p].at < next) {
			batch = append(batch, m.priv[p].ev)
			p++
			continue
		}
		if !inRoom {
			break
		}
		ev := r.ring[next%uint64(len(r.ring))]
		next++
		if ev.from == m.id && !m.json {
			continue // text mode: not the member's own lines
		}
		batch = append(batch, ev)
	}
	if r != nil {
		m.next.Store(next)
	}
	n := copy(m.priv, m.priv[p:])
	clear(m.priv[n:])
	m.priv = m.priv[:n]
	if n == 0 {
		m.priv = nil // an idle member holds no queue
	}
	return batch, ok
}
