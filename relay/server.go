package relay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
)

// Logf is the relay's log function; tests pass t.Logf.
type Logf func(format string, args ...any)

// Server is a running relay. Create it with New, bind its doors with
// Start, stop it with Shutdown.
type Server struct {
	cfg   atomic.Pointer[Config] // replaced whole by Reload
	logf  Logf                   // set once
	level atomic.Int32           // the lowest level logged
	quit  chan struct{}          // closed by Shutdown
	logs  throttle
	drops throttle // one log line a second for each kind of dropped message

	mu      sync.Mutex
	closing bool
	open    map[string]*bound  // the doors, by name
	rooms   map[string]*room   // by folded name
	names   map[string]*member // by folded name
	conns   map[net.Conn]bool  // every open connection: true once it holds a slot of its address
	perIP   map[netip.Addr]int // slots held, by address (Limits.MaxClientsPerIP)
	lastID  uint64
	// The legacy door's.
	roomFreed   chan struct{}            // when not nil, closed (and cleared) when a connection ends
	fullSince   time.Time                // when the door found the relay full; zero once it had room again
	legacyCount int                      // legacy members
	legacyPerIP map[netip.Addr]int       // legacy members, by the address they registered from
	lastTicket  map[netip.Addr]*ticket   // each address's newest connection
	slotQueue   map[netip.Addr][]*ticket // connections waiting for a slot of their address, oldest first

	wg sync.WaitGroup // accept loops, connections, legacy members, retries

	loop *loop // set by Start; nil where there is no poller

	stats stats
}

// stats are the relay's counters.
type stats struct {
	accepted, refused, posted, udpDropped atomic.Int64
	legacyDropped, legacyRefused          atomic.Int64
	disconnects                           [numReasons]atomic.Int64
}

// Stats is a snapshot of the relay's counters.
type Stats struct {
	Accepted    int64            // connections accepted
	Refused     int64            // connections refused (relay or address full); never at the legacy door, which waits
	Posted      int64            // events posted to rooms
	UDPDropped  int64            // datagrams refused
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
}

// New returns a relay for cfg, which must have passed validation.
// Nothing listens until Start.
func New(cfg Config, logf Logf) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Server{
		logf: logf, quit: make(chan struct{}),
		open: map[string]*bound{}, rooms: map[string]*room{},
		names: map[string]*member{}, conns: map[net.Conn]bool{}, perIP: map[netip.Addr]int{},
		lastTicket: map[netip.Addr]*ticket{}, slotQueue: map[netip.Addr][]*ticket{}, legacyPerIP: map[netip.Addr]int{},
		drops: throttle{burst: 1},
	}
	s.cfg.Store(&cfg)
	s.level.Store(int32(parseLevel(cfg.LogLevel)))
	return s
}

// conf returns the configuration in force.
func (s *Server) conf() *Config { return s.cfg.Load() }

func ipOf(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// admit registers a new connection, or says why it is refused.
func (s *Server) admit(c net.Conn) string {
	ip := ipOf(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.conf().Limits
	switch {
	case s.closing:
		return "relay shutting down"
	case len(s.conns) >= l.MaxClients:
		return fmt.Sprintf("relay full (%d clients)", l.MaxClients)
	case s.perIP[ip] >= l.MaxClientsPerIP:
		return fmt.Sprintf("too many connections from %s (%d)", ip, l.MaxClientsPerIP)
	}
	s.conns[c] = true
	s.perIP[ip]++
	return ""
}

// release closes a connection and forgets it. Its slot goes to the first
// legacy connection of its address waiting for one, and a legacy door
// waiting for room is woken.
func (s *Server) release(c net.Conn) {
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.conns[c]
	if !ok {
		return
	}
	delete(s.conns, c)
	s.fullSince = time.Time{} // the relay has room
	if s.roomFreed != nil {
		close(s.roomFreed)
		s.roomFreed = nil
	}
	if !slot {
		return
	}
	ip := ipOf(c)
	s.perIP[ip]--
	if q := s.slotQueue[ip]; len(q) > 0 && s.perIP[ip] < s.conf().Limits.MaxClientsPerIP {
		s.grantSlot(q[0])
		s.unqueue(q[0])
	}
	if s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// grantSlot gives t's connection a slot of its address. Called with mu
// held.
func (s *Server) grantSlot(t *ticket) {
	s.perIP[t.ip]++
	s.conns[t.c] = true
	t.at = time.Now()
	close(t.slot)
}

// unqueue takes t out of the queue for its address's slots. Called with mu
// held.
func (s *Server) unqueue(t *ticket) {
	q := s.slotQueue[t.ip]
	if i := slices.Index(q, t); i >= 0 {
		q = slices.Delete(q, i, i+1)
	}
	if len(q) == 0 {
		delete(s.slotQueue, t.ip)
		return
	}
	s.slotQueue[t.ip] = q
}

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
				dropped = true
				break
			}
		}
		if !dropped {
			return nil, fmt.Errorf("%w: %d rooms, none empty", errRoomLimit, s.conf().Limits.MaxRooms)
		}
	}
	r := newRoom(name, s.conf().Limits.History)
	s.rooms[key] = r
	return r, nil
}

// roomList returns every room's name and member count, sorted by name.
func (s *Server) roomList() []string {
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
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
	if old != nil {
		// What m is still owed of the old room (its replay there, when its
		// name and this /join came in one read) goes first, in its order,
		// as private events: at most its lag (Limits.Queue) and its private
		// queue.
		m.mu.Lock()
		old.mu.Lock()
		old.removeLocked(m)
		owed, ok := m.take(old, nil, math.MaxInt)
		old.mu.Unlock()
		for _, ev := range owed {
			m.priv = append(m.priv, queued{ev, 0})
		}
		m.mu.Unlock()
		if !ok {
			m.kick(bySlow)
		}
		if old != r {
			old.post(&proto.Event{Kind: proto.KindPart, From: m.name, Text: "joined " + r.name, Time: now()}, m.id, s.maxLag())
		}
	}
	m.mu.Lock()
	e := r.add(m, since, replay)
	m.room = r
	last := proto.Point{Epoch: r.epoch, Seq: e.head - 1}
	// The welcome, any gap, and the bounds of the replay, each in its place.
	say := func(at uint64, format string, args ...any) {
		m.priv = append(m.priv, queued{newEvent(&proto.Event{Kind: proto.KindNotice, Text: fmt.Sprintf(format, args...)}, 0), at})
	}
	if old != r {
		others := r.size() - 1
		m.priv = append(m.priv, queued{newEvent(&proto.Event{Kind: proto.KindNotice, Room: r.name, Epoch: r.epoch,
			Text: fmt.Sprintf("you are %s in %s with %d other%s (last event %s); /help lists the commands",
				m.name, r.name, others, plural(others), last)}, 0), e.next - 1})
	}
	switch {
	case e.stale:
		say(e.next-1, "the relay restarted (or %s was made anew) since resume point %s: replaying all %s keeps",
			r.name, since, r.name)
	case e.ahead:
		say(e.next-1, "resume point %s is past %s's last event %s: the relay restarted or the room is new; replaying all it keeps",
			since, r.name, last)
	case e.missed > 0:
		m.priv = append(m.priv, queued{gapNotice(r.name, e.next-e.missed, e.next), e.next - 1})
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

func (s *Server) maxLag() uint64 { return uint64(s.conf().Limits.Queue) }

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
		Posted: s.stats.posted.Load(), UDPDropped: s.stats.udpDropped.Load(), Disconnects: map[string]int64{},
		LegacyDropped: s.stats.legacyDropped.Load(), LegacyRefused: s.stats.legacyRefused.Load(),
	}
	for r := range numReasons {
		if n := s.stats.disconnects[r].Load(); n > 0 {
			st.Disconnects[r.String()] = n
		}
	}
	return st
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
	members := make([]*member, 0, len(s.names))
	for _, m := range s.names {
		members = append(members, m)
	}
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, m := range members {
		m.kick(byShutdown)
	}
	if s.loop != nil {
		s.loop.kickAll(byShutdown) // and those still in their handshake
	}
	past := time.Unix(1, 0)
	for _, c := range conns {
		c.SetReadDeadline(past) // sessions still in their handshake
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		if s.loop != nil {
			s.loop.close()
		}
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

// ticket is a legacy connection's place in the order of its address:
// for a slot of the address (Limits.MaxClientsPerIP), and for posting.
type ticket struct {
	// Set once, by orderLegacy.
	c        net.Conn
	ip       netip.Addr
	accepted time.Time
	slot     chan struct{} // closed by grantSlot
	done     chan struct{} // closed when its message is handled or dropped

	prev *ticket   // the address's previous connection, until waited for
	at   time.Time // when it got its slot and its reading began; set by grantSlot
}

// wait returns when the previous connection of the same address is done,
// or its grace has passed.
func (t *ticket) wait() {
	p := t.prev
	t.prev = nil
	if p == nil {
		return
	}
	timer := time.NewTimer(time.Until(p.at.Add(orderGrace)))
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
	}
}

// orderGrace is how long a legacy message waits for the messages of
// earlier connections from the same address, so that a tutorial client's
// messages, one connection each, are posted in the order it sent them. A
// connection that sends nothing holds later ones up for at most this long
// after its reading began.
const orderGrace = 250 * time.Millisecond
