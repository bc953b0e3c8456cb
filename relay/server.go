package relay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/store"
)

// Server is a running relay. Create it with New, bind its doors with
// Start, stop it with Shutdown.
type Server struct {
	cfg   atomic.Pointer[config.Config] // replaced whole by Reload
	logf  config.Logf                   // set once
	level atomic.Int32                  // the lowest level logged
	quit  chan struct{}                 // closed by Shutdown
	logs  throttle
	drops throttle // one log line a second for each kind of dropped message

	// Guarded by mu.
	mu      sync.Mutex
	closing bool
	open    map[string]*bound          // the doors, by name
	rooms   map[string]*room           // by folded name
	names   map[string]*member         // by folded name
	conns   map[net.Conn]connInfo      // every open connection
	perIP   map[netip.Addr]int         // slots held, by address (Limits.MaxClientsPerIP)
	lastID  uint64                     // the last member id given
	waiting map[netip.Addr][]*slotWait // connections waiting for a slot of their address, oldest first; see admitWaiting
	freed   chan struct{}              // when not nil, closed (and cleared) when a connection ends
	full    time.Time                  // when a waiting door found the relay full; zero once it had room

	wg sync.WaitGroup // accept loops, connections, legacy members, retries

	doors    []door                 // set by New
	loop     *loop                  // set by Start; nil where there is no poller
	store    *store.Store           // set by Start; nil without relay.store.path. Closed by Shutdown
	storeErr atomic.Pointer[string] // why the store is not written; see storeFailed

	stats stats
}

// stats are the relay's counters.
type stats struct {
	accepted, refused, posted, udpDropped atomic.Int64
	legacyDropped, legacyRefused          atomic.Int64
	delivered                             atomic.Int64 // events taken by members' drivers to write, counted a batch at a time
	paced                                 atomic.Int64 // times a member's driver stopped reading it for its budget
	stalled                               atomic.Int64 // times a publisher stalled for a room under pressure
	disconnects                           [numReasons]atomic.Int64
}

// Stats is a snapshot of the relay's counters.
type Stats struct {
	Accepted    int64            // connections accepted (refused ones among them)
	Refused     int64            // connections refused (relay or address full); never at the legacy door, which waits
	Posted      int64            // events posted to rooms
	Delivered   int64            // events handed to members' drivers to write or send (room events, private messages, notices)
	UDPDropped  int64            // datagrams refused
	Paced       int64            // times a member was read no more until its budget refilled (see member.paceBy)
	Stalled     int64            // times a publisher was read no more for a few milliseconds, its room under pressure (see member.stallBy)
	Disconnects map[string]int64 // members disconnected, by reason
	// LegacyDropped counts legacy-door messages lost to a bound: the relay
	// full, or its address's slots taken, for Timeouts.Message; a message
	// not complete within Timeouts.Message or over Limits.MaxLineBytes;
	// the relay shutting down.
	LegacyDropped int64
	// LegacyRefused counts legacy-door messages read and refused: not the
	// tutorial protocol, a post in a name not registered from its address,
	// a registration over a limit.
	LegacyRefused int64
	// StoreFailed says why relay.store.path is not written (the rooms are
	// kept in memory only); "" when it is, or when it is not set.
	StoreFailed string
}

// New returns a relay for cfg, which must have passed validation.
// Nothing listens until Start.
func New(cfg config.Config, logf config.Logf) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Server{
		logf: logf, quit: make(chan struct{}),
		open: map[string]*bound{}, rooms: map[string]*room{},
		names: map[string]*member{}, conns: map[net.Conn]connInfo{}, perIP: map[netip.Addr]int{},
		waiting: map[netip.Addr][]*slotWait{}, drops: throttle{burst: 1},
	}
	s.doors = s.newDoors()
	s.cfg.Store(&cfg)
	s.level.Store(int32(parseLevel(cfg.LogLevel)))
	return s
}

// conf returns the configuration in force.
func (s *Server) conf() *config.Config { return s.cfg.Load() }

// hangUp closes c gracefully: it sends a FIN, then reads and drops what
// the peer still sends for at most d, so that unread input does not make
// the close a reset that destroys the last lines written.
func hangUp(c net.Conn, d time.Duration) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.SetReadDeadline(time.Now().Add(d))
		var buf [512]byte // not io.Discard's 8 KB: at shutdown every member drains at once
		for n := 0; n < 64<<10; {
			k, err := c.Read(buf[:])
			if err != nil {
				break
			}
			n += k
		}
	}
	c.Close()
}

// errNameTaken is returned by claim for a name someone holds.
var errNameTaken = errors.New("name taken")

// claim gives m the name, unless someone holds it.
func (s *Server) claim(m *member, name string, json bool) error {
	m.mu.Lock() // its writer may be collecting its greeting's answers meanwhile
	defer m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("relay shutting down")
	}
	key := proto.Fold(name)
	if _, ok := s.names[key]; ok {
		return fmt.Errorf("%w: %s is in use", errNameTaken, name)
	}
	s.lastID++
	m.id, m.name, m.key, m.json = s.lastID, name, key, json
	s.names[key] = m
	return nil
}

// lookup returns the member holding name, or nil.
func (s *Server) lookup(name string) *member {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[proto.Fold(name)]
}

// errRoomLimit is returned when a new room would exceed Limits.MaxRooms.
var errRoomLimit = errors.New("room limit reached")

// room returns the room of that name, creating it if need be. When the
// relay holds MaxRooms rooms, an empty one other than the default room
// is dropped to make space; if none is empty, that is an error.
func (s *Server) room(name string) (*room, error) {
	key := proto.Fold(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[key]; r != nil {
		return r, nil
	}
	if len(s.rooms) >= s.conf().Limits.MaxRooms {
		dropped := false
		for k, r := range s.rooms {
			if k != proto.Fold(s.conf().DefaultRoom) && r.size() == 0 {
				delete(s.rooms, k)
				s.store.Drop(r.name)
				dropped = true
				break
			}
		}
		if !dropped {
			return nil, fmt.Errorf("%w: %d rooms, none empty", errRoomLimit, s.conf().Limits.MaxRooms)
		}
	}
	r := newRoomBytes(name, s.conf().Limits.History, s.conf().Limits.HistoryBytes)
	r.log = s.store.Log(r.name, r.epoch)
	s.rooms[key] = r
	return r, nil
}

// allRooms returns every room, in no order.
func (s *Server) allRooms() []*room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

// roomList returns every room's name and member count, sorted by name.
func (s *Server) roomList() []string {
	rooms := s.allRooms()
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = fmt.Sprintf("%s (%d)", r.name, r.size())
	}
	sort.Strings(out)
	return out
}

// join moves m into the room called name. since, when not nil, resumes
// after that point; otherwise replay past events are replayed. A resume
// in the room m is in (/since) is told only what it replays, not welcomed
// again.
func (s *Server) join(m *member, name string, since *proto.Point, replay int) error {
	r, err := s.room(name)
	if err != nil {
		return err
	}
	old := m.room
	if old == r && since == nil {
		m.notify(proto.KindNotice, "you are already in %s", r.name)
		return nil
	}
	if old != nil && old != r {
		// What m is still owed of the old room (its replay there, when its
		// name and this /join came in one read) goes first, in its order,
		// as private events: at most its lag (less than Limits.History)
		// and its private queue. It does not count against Limits.Queue
		// (m is not slow for what its writer has not had a turn to write)
		// but as a replay (see paceBy), so /join cannot be made to copy
		// without bound.
		m.mu.Lock()
		old.mu.Lock()
		old.removeLocked(m)
		owed, ok := m.take(old, nil, math.MaxInt)
		old.mu.Unlock()
		n := 0
		for _, ev := range owed {
			m.priv = append(m.priv, queued{ev: ev, carried: true})
			n += len(ev.text)
		}
		m.carried = len(m.priv) // take took the whole queue: all of it is carried over
		m.chargeReplay(time.Now(), n)
		m.mu.Unlock()
		if !ok {
			m.kick(bySlow)
		}
		old.post(&proto.Event{Kind: proto.KindPart, From: m.name, Text: "joined " + r.name, Time: now()}, m.id, s.maxLag())
	}
	m.mu.Lock()
	var e entry
	if old == r {
		e = r.resume(m, since)
		// The notices of a replay not yet written are dropped (this one
		// replaces it), and what waits for a later place is written first:
		// the private queue stays in order, and as long as it was.
		kept := m.priv[:0]
		for _, q := range m.priv {
			if !q.replay {
				q.at = min(q.at, e.next-1)
				kept = append(kept, q)
			}
		}
		clear(m.priv[len(kept):])
		m.priv = kept
	} else {
		e = r.add(m, since, replay)
	}
	m.room = r
	m.chargeReplay(time.Now(), e.bytes)
	last := proto.Point{Epoch: r.epoch, Seq: e.head - 1}
	// The welcome, any gap, and the bounds of the replay, each in its place.
	say := func(at uint64, format string, args ...any) {
		m.priv = append(m.priv, queued{ev: newEvent(&proto.Event{Kind: proto.KindNotice, Text: fmt.Sprintf(format, args...)}, 0), at: at, replay: true})
	}
	if old != r {
		others := r.size() - 1
		m.priv = append(m.priv, queued{ev: newEvent(&proto.Event{Kind: proto.KindNotice, Room: r.name, Epoch: r.epoch,
			Text: fmt.Sprintf("you are %s in %s with %d other%s (last event %s); /help lists the commands",
				m.name, r.name, others, plural(others), last)}, 0), at: e.next - 1})
	}
	switch {
	case e.stale:
		say(e.next-1, "the relay restarted (or %s was made anew) since resume point %s: replaying all %s keeps",
			r.name, since, r.name)
	case e.ahead:
		say(e.next-1, "resume point %s is past %s's last event %s: the relay restarted or the room is new; replaying all it keeps",
			since, r.name, last)
	case e.missed > 0:
		m.priv = append(m.priv, queued{ev: gapNotice(r.name, e.next-e.missed, e.next), at: e.next - 1, replay: true})
	}
	if e.next < e.head {
		say(e.next-1, "earlier in %s, events %d to %d:", r.name, e.next, e.head-1)
		say(e.head-1, "end of earlier events")
	} else if old == r {
		say(e.head-1, "nothing in %s after %s", r.name, last)
	}
	m.mu.Unlock()
	if old != r {
		r.post(&proto.Event{Kind: proto.KindJoin, From: m.name, Time: now()}, m.id, s.maxLag())
	}
	m.poke()
	return nil
}

// gapNotice tells a member that events from up to next of room are lost.
func gapNotice(room string, from, next uint64) *event {
	return newEvent(&proto.Event{Kind: proto.KindNotice, Text: fmt.Sprintf(
		"%d events of %s fell out of the history window: %d to %d are lost; replaying from %d",
		next-from, room, from, next-1, next)}, 0)
}

// leave takes m out of its room and frees its name.
func (s *Server) leave(m *member) {
	if r := m.room; r != nil {
		r.remove(m)
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if !closing { // at shutdown everyone is told once, not of each other
			r.post(&proto.Event{Kind: proto.KindPart, From: m.name, Text: m.why.String(), Time: now()}, m.id, s.maxLag())
		}
	}
	if m.id == 0 {
		return // it never had a name
	}
	s.mu.Lock()
	if s.names[m.key] == m {
		delete(s.names, m.key)
	}
	s.mu.Unlock()
	s.stats.disconnects[m.why].Add(1)
}

// maxLag is how far behind a member may fall in its room: one less than
// the history, so that it is cut (and can resume) before it loses an
// event. Lag is no sign of a slow member before that: a burst larger than
// Limits.Queue waits in the ring until each member's writer has its turn.
func (s *Server) maxLag() uint64 { return uint64(max(s.conf().Limits.History-1, 1)) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// now is the time stamped on events: UTC, to the millisecond.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Accepted: s.stats.accepted.Load(), Refused: s.stats.refused.Load(),
		Posted: s.stats.posted.Load(), Delivered: s.stats.delivered.Load(), UDPDropped: s.stats.udpDropped.Load(), Disconnects: map[string]int64{},
		Paced: s.stats.paced.Load(), Stalled: s.stats.stalled.Load(),
		LegacyDropped: s.stats.legacyDropped.Load(), LegacyRefused: s.stats.legacyRefused.Load(),
	}
	if msg := s.storeErr.Load(); msg != nil {
		st.StoreFailed = *msg
	}
	for r := range numReasons {
		if n := s.stats.disconnects[r].Load(); n > 0 {
			st.Disconnects[r.String()] = n
		}
	}
	return st
}

// members returns every member: named, or with a connection still in its
// handshake. Called with s.mu held.
func (s *Server) members() []*member {
	ms := make([]*member, 0, len(s.names)+len(s.conns))
	for _, m := range s.names {
		ms = append(ms, m)
	}
	for _, c := range s.conns {
		if c.m != nil && c.m.id == 0 {
			ms = append(ms, c.m)
		}
	}
	return ms
}

// Shutdown stops accepting, tells every member, lets the writers flush
// within Timeouts.Shutdown, and waits for every connection to end or ctx
// to expire, when it closes what is left and returns ctx's error. It may
// be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.quit)
	}
	s.closing = true
	s.mu.Unlock()
	s.closeDoors()
	s.mu.Lock()
	members := s.members()
	s.mu.Unlock()
	// A member made after this is seen off by its own session, for which
	// every deadline has passed once the relay is closing (see expired).
	for _, m := range members {
		m.kick(byShutdown)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		if s.loop != nil {
			s.loop.close()
		}
		s.store.Close() // after the last post
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}
