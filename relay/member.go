package relay

import (
	"net"
	"net/netip"
	"roomrelay/internal/fmtlite"
	"sync"
	"sync/atomic"
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
	bySlow                      // it took no data for Timeouts.Write, or fell a history behind, or its private queue overflowed
	byFlood                     // paced, it held more than Limits.FloodBytes unread for Timeouts.Flood
	byWrite                     // writing to it failed
	byShutdown                  // the relay is stopping
	byUnreachable               // a legacy member could not be dialled
	byNoName                    // it sent no valid name within Timeouts.Handshake
	byPanic                     // the relay failed serving it (a bug, logged)
	byLapsed                    // a legacy member took no delivery and posted nothing for Timeouts.LegacyLapse; a browser had no stream for Timeouts.HTTPGrace
	byReplaced                  // a legacy member's endpoint was registered under another name
	byKicked                    // an admin kicked it
	byBanned                    // an admin banned its name or address
	numReasons
)

var reasonText = [numReasons]string{
	byQuit: "quit", byEOF: "closed", byRead: "read error", byIdle: "idle too long",
	bySlow: "too slow", byFlood: "flooding", byWrite: "write failed", byShutdown: "relay shutting down",
	byUnreachable: "unreachable", byNoName: "no name", byPanic: "internal error",
	byLapsed: "lapsed", byReplaced: "replaced", byKicked: "kicked by an admin", byBanned: "banned by an admin",
}

func (r reason) String() string { return reasonText[r] }

// told reports whether a member leaving for r was told why, so that its
// connection should end with a FIN rather than a reset.
func (r reason) told() bool { return r != byEOF && r != byRead && r != byWrite && r != byUnreachable }

// flushes reports whether a member leaving for r still gets what is queued.
func (r reason) flushes() bool {
	return r == byQuit || r == byShutdown || r == byFlood || r == byIdle || r == byKicked || r == byBanned
}

// member is one member of the relay: a client of the line door, or one
// registered through the legacy door, which is dialled for every event.
// It holds what every kind of member has: its name, its cursor into its
// room, its private queue and how it ends. The policy for a member (what
// a line means, which deadline has passed, how it ends) is in session.go;
// its driver moves its bytes and is woken through drv.
type member struct {
	// Set once, before the member is shared (the name when it is claimed).
	srv  *Server
	drv  driver   // moves its bytes
	conn net.Conn // its connection; nil for a legacy member
	door string   // the door it came in by, for the log
	id   uint64   // 0 until its name is claimed
	name string
	key  string // proto.Fold(name)
	json bool   // JSON mode
	// Whether it is on its room's list of stalled publishers (see
	// stallBy and room.unstall); beside json, in what would be padding.
	listed atomic.Bool
	codec  codec      // its door's wire format; nil for the line protocol
	from   netip.Addr // the address it connects from

	// Set once by kick.
	kicked  atomic.Bool                   // the first kick sets it
	why     reason                        // written before done is closed
	flushBy int64                         // likewise: when flushing a leaving member stops, in Unix nanoseconds
	done    atomic.Pointer[chan struct{}] // closed by kick: the member is leaving; made by the first doneC

	next atomic.Uint64 // next sequence number of room to write; see room.add
	base atomic.Uint64 // the room's head when it joined: replay does not count as lag

	mu      sync.Mutex
	room    *room    // current room; changed only by whoever reads its input
	priv    []queued // private events and notices, at most Limits.Queue, and what a /join carried over (see Server.join)
	carried int32    // how many of priv a /join carried over

	// Whoever reads its input (one goroutine at a time).
	// See stallBy: lines since its last stall.
	sinceStall int32
	lim        limiter // its lines: see paceBy
	floodAt    int64   // since when it is paced holding more than Limits.FloodBytes unread, in Unix nanoseconds; 0: it is not

	// See stallBy and room.unstall: when its stall ends (Unix nanoseconds;
	// set by its reader, cleared early when the room's readers catch up).
	stallUntil atomic.Int64

	// Guarded by mu (spent by join, read by paceBy in the goroutine that
	// joins, or by none: a browser member is not paced).
	replays limiter // bytes of its replays: see paceBy
	passed  bool    // it gave the relay's password (see Server.hello)

	// Set by whoever reads its input; read by collect.
	stamps atomic.Bool // text mode, /time on: a line with a time gets "[HH:MM] " before it
	admin  atomic.Bool // it gave the admin password (see Server.isAdmin); its writer reads it for IRC's NAMES

	// The session's clocks, read by whoever checks its deadlines.
	named     atomic.Bool  // its name is claimed and it is in a room
	lastIn    atomic.Int64 // when it connected or last sent a line, in Unix nanoseconds
	blockedAt atomic.Int64 // when its writes stopped making progress; 0 while they make it
	pinged    atomic.Int64 // when it was last sent a keepalive ping (see tick), in Unix nanoseconds
}

// driver moves the bytes of its members and knows nothing of policy: the
// loop (loop.go), a goroutine pair per connection (drive_conn.go), the
// legacy door's dialler (door_legacy.go).
type driver interface {
	// wake has the driver write what is ready for m, without blocking.
	wake(m *member)
	// stop has the driver look at m again at once, interrupting whatever
	// it waits on for m: m was kicked (m.doneC() is closed), or the timeouts
	// changed and its deadlines with them.
	stop(m *member)
}

// codec is a door's own wire format for one member, where it is not the
// line protocol (the IRC door's, door_irc.go): it reads the member's
// lines into the session's claim, join and requests, so every door has
// the same names, rooms, limits and counters, and it writes the events
// collect takes for it. The member's reader calls hello and input, its
// writer append and farewell.
type codec interface {
	// hello is Server.hello in the door's format: it answers one line of
	// the handshake (or the error reading it) itself, claims the member's
	// name when the handshake is complete, and reports so.
	hello(line []byte, err error, t time.Time) (h proto.Hello, named bool, _ error)
	// input is Server.input in the door's format.
	input(line []byte, err error, t time.Time) (reason, bool)
	// append appends ev's lines to bufs.
	append(bufs net.Buffers, ev *event) net.Buffers
	// farewell is the line that tells the member why it leaves.
	farewell(e *proto.Event) []byte
}

// pinger is a codec whose wire format has a keepalive the relay sends to a
// quiet member (IRC's PING): see member.tick.
type pinger interface {
	ping() []byte
}

// newMember returns a member on c (nil for a legacy member) moved by drv,
// still without a name, speaking the line protocol.
func (s *Server) newMember(c net.Conn, door string, drv driver) *member {
	return s.newCodecMember(c, door, drv, nil)
}

// newCodecMember is newMember for a member whose door has a codec of its
// own; newCodec makes it for the member, before the member is shared.
func (s *Server) newCodecMember(c net.Conn, door string, drv driver, newCodec func(*member) codec) *member {
	return s.newMemberAt(c, door, drv, newCodec, time.Now())
}

// newMemberAt is newCodecMember for a member whose clocks count from
// born: the connection was accepted then, and has been busy since (a TLS
// handshake counts inside Timeouts.Handshake).
func (s *Server) newMemberAt(c net.Conn, door string, drv driver, newCodec func(*member) codec, born time.Time) *member {
	m := &member{srv: s, conn: c, door: door, drv: drv}
	if newCodec != nil {
		m.codec = newCodec(m)
	}
	m.lastIn.Store(born.UnixNano()) // until it is named: see member.line
	if n := s.conf().Limits.SendBuffer; n > 0 && c != nil {
		// A fixed kernel buffer: a member that reads slowly fills it and
		// meets the write deadline, instead of the kernel growing it (to
		// megabytes on Linux).
		if wb, ok := netConn(c).(interface{ SetWriteBuffer(int) error }); ok {
			wb.SetWriteBuffer(n)
		}
	}
	if c != nil {
		m.from = ipOf(c)
		s.mu.Lock()
		if info, ok := s.conns[c]; ok {
			info.m = m
			s.conns[c] = info
		}
		s.mu.Unlock()
	}
	return m
}

// netConn is the connection under c when c is a layer over one (TLS),
// or c.
func netConn(c net.Conn) net.Conn {
	if l, ok := c.(interface{ NetConn() net.Conn }); ok {
		return l.NetConn()
	}
	return c
}

// poke has m's driver write what is ready, without blocking.
func (m *member) poke() { m.drv.wake(m) }

// kick ends the member for why; only the first call counts. It never
// blocks: the driver sees done and sees the member off (see end).
func (m *member) kick(why reason) {
	if !m.kicked.CompareAndSwap(false, true) {
		return
	}
	m.why = why
	m.flushBy = time.Now().Add(m.srv.conf().Timeouts.Shutdown.D()).UnixNano()
	if !m.done.CompareAndSwap(nil, closedDone) {
		close(*m.done.Load())
	}
	m.drv.stop(m)
}

// closedDone is the done of a member kicked before anything waited on it.
var closedDone = func() *chan struct{} {
	c := make(chan struct{})
	close(c)
	return &c
}()

// doneC returns a channel that kick closes, made on the first call: a
// member of the loop, which asks isDone, holds none.
func (m *member) doneC() <-chan struct{} {
	if p := m.done.Load(); p != nil {
		return *p
	}
	c := make(chan struct{})
	if m.done.CompareAndSwap(nil, &c) {
		return c
	}
	return *m.done.Load() // kicked meanwhile: closedDone
}

// isDone reports whether m was kicked.
func (m *member) isDone() bool {
	p := m.done.Load()
	if p == nil {
		return false
	}
	select {
	case <-*p:
		return true
	default:
		return false
	}
}

// queued is a private event, to be written after room event at.
type queued struct {
	ev      *event
	at      uint64
	replay  bool // a notice about a replay (its bounds, a gap): a later /since drops it unwritten
	carried bool // carried over from the room it left by a /join: not counted against Limits.Queue
}

// lag is how many room events m has still to be written, not counting a
// replay. Called with m's room's mu held.
func (m *member) lag(seq uint64) uint64 {
	if from := max(m.next.Load(), m.base.Load()); from <= seq {
		return seq - from + 1
	}
	return 0
}

// deliver queues a private event for m, after the room events posted so
// far; a member with a full queue is kicked as too slow.
func (m *member) deliver(ev *event) {
	m.mu.Lock()
	full := len(m.priv)-int(m.carried) >= m.srv.conf().Limits.Queue
	if !full {
		var at uint64
		if r := m.room; r != nil {
			r.mu.RLock()
			at = r.seq
			r.mu.RUnlock()
		}
		m.priv = append(m.priv, queued{ev: ev, at: at})
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
	m.deliver(newEvent(&proto.Event{Kind: kind, Text: fmtlite.Sprintf(format, args...)}, 0))
}

// goodbye returns the line that tells a leaving member why it leaves, or
// nil when there is nobody to tell.
func (m *member) goodbye() []byte {
	if _, streams := m.drv.(lapser); m.conn == nil && !streams {
		return nil // a legacy member cannot be told why
	}
	var e proto.Event
	switch m.why {
	case byEOF, byRead, byWrite:
		return nil
	case byQuit:
		e = proto.Event{Kind: proto.KindNotice, Text: "bye"}
	case byNoName:
		e = proto.Event{Kind: proto.KindError, Text: fmtlite.Sprintf("no name within %v; bye", m.srv.conf().Timeouts.Handshake.D())}
	case bySlow:
		e = proto.Event{Kind: proto.KindError, Text: "disconnected: too slow (" + m.slowness() + "); reconnect to resume"}
	default:
		e = proto.Event{Kind: proto.KindError, Text: "disconnected: " + m.why.String()}
	}
	switch {
	case m.codec != nil:
		return m.codec.farewell(&e)
	case m.json:
		return proto.AppendJSON(nil, &e)
	}
	return proto.AppendText(nil, &e)
}

// slowness says why m was cut as too slow: its socket took nothing for
// Timeouts.Write, its private queue was full, or its cursor was about to
// fall out of its room's history.
func (m *member) slowness() string {
	c := m.srv.conf()
	switch {
	case m.blockedAt.Load() != 0 && !time.Now().Before(m.writeBy()):
		return fmtlite.Sprintf("it took no data for %v", c.Timeouts.Write.D())
	case m.privFull():
		return fmtlite.Sprintf("more than %d private events waiting", c.Limits.Queue)
	}
	return "as far behind as the room's history goes"
}

// privFull reports whether m's private queue is full.
func (m *member) privFull() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.priv)-int(m.carried) >= m.srv.conf().Limits.Queue
}

// collect appends m's next batch to bufs and returns it: the room's
// events from the cursor on, each private event in its place among them,
// as lines of m's mode. *scratch is space for the batch, grown as needed.
// It reports false when the cursor has fallen out of the room's ring.
func (m *member) collect(scratch *[]*event, bufs net.Buffers) (net.Buffers, bool) {
	batch, json, ok := m.batch(scratch)
	if len(batch) == 0 {
		return bufs, ok
	}
	n, msgs := 0, 0 // the bytes appended, the messages among the events
	if m.codec != nil {
		for i, ev := range batch {
			from := len(bufs)
			bufs = m.codec.append(bufs, ev)
			for _, b := range bufs[from:] {
				n += len(b)
			}
			msgs += ev.message()
			batch[i] = nil
		}
		m.srv.stats.out(msgs, n)
		return bufs, ok
	}
	stamps := m.stamps.Load() && !json
	for i, ev := range batch {
		if stamps {
			if st := ev.stamped(); st != nil {
				bufs = append(bufs, st) // a buffer of its own: the line is shared as it is
				n += len(st)
			}
		}
		line := ev.line(json)
		bufs = append(bufs, line)
		n += len(line)
		msgs += ev.message()
		batch[i] = nil
	}
	m.srv.stats.out(msgs, n)
	return bufs, ok
}

// batch takes m's next batch of events into *scratch (grown as needed) and
// returns it; the caller clears each entry once done with it, and counts
// the messages and bytes it writes (see stats.out). It reports false when
// the cursor has fallen out of the room's ring.
func (m *member) batch(scratch *[]*event) (batch []*event, json, ok bool) {
	m.mu.Lock()
	r := m.room
	behind := false // more than a quarter of its bound: its batch may relax the room
	if r != nil {
		r.mu.RLock()
		behind = m.lag(r.seq) > r.relax.Load()
	}
	batch, ok = m.take(r, (*scratch)[:0], batchMax)
	if r != nil {
		if behind {
			r.caughtUp(m)
		}
		r.mu.RUnlock()
	}
	json = m.json // set by claim, under mu
	m.mu.Unlock()
	if len(batch) > 0 {
		m.srv.stats.delivered.Add(int64(len(batch))) // one count a batch, not a delivery
	}
	*scratch = batch[:0]
	return batch, json, ok
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
	private := func() { // takes the next private event
		batch = append(batch, m.priv[p].ev)
		if m.priv[p].carried {
			m.carried--
		}
		p++
	}
	if r != nil {
		seq = r.seq
		if oldest := r.oldest(); next < oldest {
			// Still replaying: the room moved on past the cursor, which
			// loses history but is not the member's fault. Past the
			// replay, it is: room.post kicks it before its cursor leaves.
			ok = next < m.base.Load()
			// What was queued before the cursor (a welcome and its
			// replay's header) goes before the notice of the gap.
			for ok && p < len(m.priv) && m.priv[p].at < next && len(batch) < limit-1 {
				private()
			}
			if ok && p < len(m.priv) && m.priv[p].at < next {
				private() // the batch is full: the notice comes in the next one
			} else if ok {
				batch = append(batch, gapNotice(r.name, next, oldest))
				next = oldest
			}
		}
	}
	for ok && len(batch) < limit {
		inRoom := r != nil && next <= seq // a room event is next
		if p < len(m.priv) && (!inRoom || m.priv[p].at < next) {
			private()
			continue
		}
		if !inRoom {
			break
		}
		ev := r.ring[next%uint64(len(r.ring))]
		next++
		if skip := ev.skip(); skip > next {
			next = skip // a hole's notice: see room.hole
		}
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
