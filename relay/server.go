package relay

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/sortlite"
	"runtime"
	"strconv"
	"strings"
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
	cfg   atomic.Pointer[config.Config] // replaced whole by setConf (New, Reload)
	logf  config.Logf                   // set once
	level atomic.Int32                  // the lowest level logged
	quit  chan struct{}                 // closed by Shutdown
	logs  throttle
	drops throttle // one log line a second for each kind of dropped message

	// The bounds of a publisher's stall (see stallBy and presses): set
	// once, to stallFor and pressFor; a test may stretch them.
	stallMax, pressMax time.Duration

	refusing chan struct{} // a slot for each refusal being told on a TLS door (see refuseIn)
	hashing  chan struct{} // a slot for each secret being checked (see hashers)

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
	auth  auth // secrets, bans, admins' changes: see auth.go
}

// stats are the relay's counters.
type stats struct {
	accepted, refused, posted, udpDropped atomic.Int64
	legacyDropped, legacyRefused          atomic.Int64
	delivered                             atomic.Int64 // events taken by members' drivers to write, counted a batch at a time
	badSecret, slowed, banned             atomic.Int64 // see Stats
	paced                                 atomic.Int64 // times a member's driver stopped reading it for its budget
	stalled                               atomic.Int64 // times a publisher stalled for a room under pressure
	disconnects                           [numReasons]atomic.Int64
	refusals                              [numRefusals]atomic.Int64
	private, messagesOut                  atomic.Int64
	bytesIn, bytesOut                     atomic.Int64
	replays, replayed                     atomic.Int64
	legacySent, legacyFailed              atomic.Int64
	reclaims                              atomic.Int64 // memory released to the system after a burst; see reclaim
}

// out counts msgs messages (see event.message) and n bytes handed to a
// member's connection.
func (c *stats) out(msgs, n int) {
	if msgs > 0 {
		c.messagesOut.Add(int64(msgs))
	}
	if n > 0 {
		c.bytesOut.Add(int64(n))
	}
}

// refusalKind is the kind of a refusal, for the counters.
type refusalKind uint8

const (
	refusedFull     refusalKind = iota // relay.limits.max_clients
	refusedAddress                     // relay.limits.max_clients_per_ip
	refusedShutdown                    // the relay is stopping
	refusedOther                       // a ban
	numRefusals
)

var refusalText = [numRefusals]string{"relay full", "address full", "shutting down", "other"}

// refusal is why a connection is refused (see admit): what it is told,
// and its kind, which it is counted by. The zero refusal is none.
type refusal struct {
	why  string
	kind refusalKind
}

// Stats is a snapshot of the relay's counters (see the README's
// Counters). Every count is since the relay started.
type Stats struct {
	Accepted int64            `json:"accepted"` // connections accepted (refused ones among them)
	Refused  int64            `json:"refused"`  // connections refused (relay or address full); never at the legacy door, which waits
	Refusals map[string]int64 `json:"refusals"` // Refused by reason: "relay full", "address full", "shutting down", "other"
	// Posted counts the messages and actions posted to rooms, from every
	// door; MessagesIn is Posted and the private messages.
	Posted     int64 `json:"posted"`
	MessagesIn int64 `json:"messages_in"`
	// Delivered counts the events handed to members' drivers to write or
	// send (room events, private messages, notices); MessagesOut those of
	// them that are messages, actions and private messages.
	Delivered   int64 `json:"delivered"`
	MessagesOut int64 `json:"messages_out"`
	// BytesIn counts the bytes of the lines members sent (each with one
	// byte for its end of line), of UDP datagrams and legacy messages
	// taken; BytesOut the bytes handed to members' connections (lines,
	// IRC messages, server-sent events, legacy deliveries).
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Replays counts the joins and resumes that replayed past events,
	// Replayed those events.
	Replays  int64 `json:"replays"`
	Replayed int64 `json:"replayed"`
	// LegacySent and LegacyFailed count the legacy door's deliveries
	// made, and failed after retries.
	LegacySent   int64            `json:"legacy_sent"`
	LegacyFailed int64            `json:"legacy_failed"`
	UDPDropped   int64            `json:"udp_dropped"` // datagrams refused
	Disconnects  map[string]int64 `json:"disconnects"` // members disconnected, by reason
	// Paced counts the times a member was read no more until its budget
	// refilled (see member.paceBy); Stalled the times a publisher was read
	// no more for a few milliseconds, its room under pressure (see
	// member.stallBy).
	Paced   int64 `json:"paced"`
	Stalled int64 `json:"stalled"`
	// LegacyDropped counts legacy-door messages lost to a bound: the relay
	// full, or its address's slots taken, for Timeouts.Message; a message
	// not complete within Timeouts.Message or over Limits.MaxLineBytes;
	// over its sender's budget for Timeouts.Message; the relay shutting
	// down.
	LegacyDropped int64 `json:"legacy_dropped"`
	// LegacyRefused counts legacy-door messages read and refused: not the
	// tutorial protocol, a post in a name not registered from its address,
	// a registration over a limit.
	LegacyRefused int64 `json:"legacy_refused"`
	// StoreWrites counts the events written to relay.store.path,
	// StoreErrors the errors that stopped it (at most 1: it then writes
	// nothing more). Both 0 without a store.
	StoreWrites int64 `json:"store_writes"`
	StoreErrors int64 `json:"store_errors"`
	// BadSecret counts wrong passwords, admin passwords and room keys;
	// Slowed the secrets not tried because their address was to wait
	// after wrong ones; Banned the connections, names and datagrams
	// refused by an admin's ban.
	BadSecret int64 `json:"bad_secret"`
	Slowed    int64 `json:"slowed"`
	Banned    int64 `json:"banned"`
	// StoreFailed says why relay.store.path is not written (the rooms are
	// kept in memory only); "" when it is, or when it is not set.
	StoreFailed string `json:"store_failed,omitempty"`
	// Doors and Rooms are the members now, by door and by room.
	Doors map[string]int64 `json:"doors"`
	Rooms map[string]int64 `json:"rooms"`
	// Goroutines is how many goroutines the process runs now (a leak
	// shows as growth while the members do not grow).
	Goroutines int `json:"goroutines"`
}

// New returns a relay for cfg, which must have passed validation.
// Nothing listens until Start.
func New(cfg config.Config, logf config.Logf) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	n := registrySize(cfg)
	s := &Server{
		logf: logf, quit: make(chan struct{}),
		open: map[string]*bound{}, rooms: map[string]*room{},
		names: make(map[string]*member, n), conns: make(map[net.Conn]connInfo, n), perIP: map[netip.Addr]int{},
		waiting: map[netip.Addr][]*slotWait{}, drops: throttle{burst: 1},
		stallMax: stallFor, pressMax: pressFor,
		refusing: make(chan struct{}, maxTLSRefusals), hashing: make(chan struct{}, hashers),
	}
	s.doors = s.newDoors()
	s.setConf(cfg)
	s.level.Store(int32(parseLevel(cfg.LogLevel)))
	return s
}

// registryMax bounds registrySize.
const registryMax = 1024

// registrySize is how many members the registries that grow with them
// (Server.names and conns, the loop's members and run queue) are made for
// at start: Limits.MaxClients, up to registryMax. A registry that grew by
// doubling as members came would leave each smaller table behind as
// garbage, and take memory of a new size for each (the Go runtime keeps
// metadata for every size it has served, for good): made for the relay's
// bound at once, a burst of joins leaves less behind than the growth did.
// A later reload that raises the bound grows them as before.
func registrySize(cfg config.Config) int { return min(cfg.Limits.MaxClients, registryMax) }

// conf returns the configuration in force.
func (s *Server) conf() *config.Config { return s.cfg.Load() }

// setConf puts cfg in force, its Rooms keyed by folded name (see
// roomSettings).
func (s *Server) setConf(cfg config.Config) {
	rooms := make(map[string]config.Room, len(cfg.Rooms))
	for name, r := range cfg.Rooms {
		rooms[proto.Fold(name)] = r
	}
	cfg.Rooms = rooms
	s.cfg.Store(&cfg)
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
	if b, ok := s.banned(netip.Addr{}, name, time.Now()); ok {
		s.stats.banned.Add(1)
		return fmtlite.Errorf("the name %s is %s", name, bannedWhy(b))
	}
	m.mu.Lock() // its writer may be collecting its greeting's answers meanwhile
	defer m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errors.New("relay shutting down")
	}
	key := proto.Fold(name)
	if key == name {
		key = name // one string for both: no copy kept for the key
	}
	if _, ok := s.names[key]; ok {
		return fmtlite.Errorf("%w: %s is in use", errNameTaken, name)
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
// is dropped to make space (with what an admin set for it, unless it is
// in relay.rooms: see setRoom); if none is empty, that is an error.
func (s *Server) room(name string) (*room, error) {
	s.mu.Lock()
	r, err := s.roomLocked(name)
	s.mu.Unlock()
	return r, err
}

// roomLocked is room, called with mu held.
func (s *Server) roomLocked(name string) (*room, error) {
	key := proto.Fold(name)
	if key == name {
		key = name // one string for both: no copy kept for the key
	}
	if r := s.rooms[key]; r != nil {
		return r, nil
	}
	if len(s.rooms) >= s.conf().Limits.MaxRooms {
		dropped := false
		for k, r := range s.rooms {
			if k != proto.Fold(s.conf().DefaultRoom) && r.size() == 0 {
				delete(s.rooms, k)
				s.store.Drop(r.name)
				if _, ok := s.confRoom(k); !ok { // what an admin set for it goes with it
					s.auth.mu.Lock()
					delete(s.auth.keys, k)
					delete(s.auth.topics, k)
					s.auth.mu.Unlock()
				}
				dropped = true
				break
			}
		}
		if !dropped {
			return nil, fmtlite.Errorf("%w: %d rooms, none empty", errRoomLimit, s.conf().Limits.MaxRooms)
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

// roomList returns every room's name and member count, sorted by name;
// a room with a key says so; a hidden room is left out unless all.
func (s *Server) roomList(all bool) []string {
	rooms := s.allRooms()
	out := make([]string, 0, len(rooms))
	for _, r := range rooms {
		key, _, hidden := s.roomSettings(r.name)
		switch {
		case hidden && !all:
		case key != "":
			out = append(out, fmtlite.Sprintf("%s (%d, key)", r.name, r.size()))
		default:
			out = append(out, fmtlite.Sprintf("%s (%d)", r.name, r.size()))
		}
	}
	sortlite.Strings(out)
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
		m.carried = int32(len(m.priv)) // take took the whole queue: all of it is carried over
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
		m.priv = append(m.priv, queued{ev: newEvent(&proto.Event{Kind: proto.KindNotice, Text: fmtlite.Sprintf(format, args...)}, 0), at: at, replay: true})
	}
	if old != r {
		others := r.size() - 1
		m.priv = append(m.priv, queued{ev: newEvent(&proto.Event{Kind: proto.KindNotice, Room: r.name, Epoch: r.epoch,
			Text: fmtlite.Sprintf("you are %s in %s with %d other%s (last event %s); /help lists the commands",
				m.name, r.name, others, plural(others), last)}, 0), at: e.next - 1})
		if _, topic, _ := s.roomSettings(r.name); topic != "" && m.codec == nil { // IRC has it in its JOIN's replies
			say(e.next-1, "topic of %s: %s", r.name, topic)
		}
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
		s.stats.replays.Add(1)
		s.stats.replayed.Add(int64(e.head - e.next))
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
	return newEvent(&proto.Event{Kind: proto.KindNotice, Text: fmtlite.Sprintf(
		"%d events of %s fell out of the history window: %d to %d are lost; replaying from %d",
		next-from, room, from, next-1, next)}, 0)
}

// leave takes m out of its room and frees its name.
func (s *Server) leave(m *member) {
	if m.id != 0 {
		s.stats.disconnects[m.why].Add(1) // counted before the room is told
	}
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
	c := &s.stats
	st := Stats{
		Accepted: c.accepted.Load(), Refused: c.refused.Load(), Refusals: map[string]int64{},
		Posted: c.posted.Load(), MessagesIn: c.posted.Load() + c.private.Load(),
		Delivered: c.delivered.Load(), MessagesOut: c.messagesOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		Replays: c.replays.Load(), Replayed: c.replayed.Load(),
		LegacySent: c.legacySent.Load(), LegacyFailed: c.legacyFailed.Load(),
		UDPDropped: c.udpDropped.Load(), Disconnects: map[string]int64{},
		LegacyDropped: c.legacyDropped.Load(), LegacyRefused: c.legacyRefused.Load(),
		Doors: map[string]int64{}, Rooms: map[string]int64{}, Goroutines: runtime.NumGoroutine(),
		BadSecret: c.badSecret.Load(), Slowed: c.slowed.Load(), Banned: c.banned.Load(),
		Paced: c.paced.Load(), Stalled: c.stalled.Load(),
	}
	st.StoreWrites, st.StoreErrors = s.store.Counts()
	if msg := s.storeErr.Load(); msg != nil {
		st.StoreFailed = *msg
		st.StoreErrors = 1 // it stopped at its first error, perhaps before it opened
	}
	for r := range numReasons {
		if n := c.disconnects[r].Load(); n > 0 {
			st.Disconnects[r.String()] = n
		}
	}
	for r := range numRefusals {
		if n := c.refusals[r].Load(); n > 0 {
			st.Refusals[refusalText[r]] = n
		}
	}
	s.mu.Lock()
	for _, m := range s.names {
		st.Doors[m.door]++
	}
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		st.Rooms[r.name] = int64(r.size())
	}
	return st
}

// Summary is st in one line, for the log (see relay.stats_interval).
func (st Stats) Summary() string {
	var members int64
	for _, n := range st.Doors {
		members += n
	}
	var gone int64
	for _, n := range st.Disconnects {
		gone += n
	}
	return fmtlite.Sprintf("stats: %d members in %d rooms; messages %d in, %d out; bytes %d in, %d out; "+
		"%d refused, %d disconnected, %d replays; legacy %d sent, %d failed, %d dropped; udp %d dropped; store %d written, %d errors",
		members, len(st.Rooms), st.MessagesIn, st.MessagesOut, st.BytesIn, st.BytesOut,
		st.Refused, gone, st.Replays, st.LegacySent, st.LegacyFailed, st.LegacyDropped, st.UDPDropped, st.StoreWrites, st.StoreErrors)
}

// mayReadStats reports whether m may read the counters with /stats: it
// is an admin, or connects from relay.stats_allow.
func (s *Server) mayReadStats(m *member) bool {
	return s.isAdmin(m) || m.conn != nil && allowed(s.conf().StatsAllow, ipOf(m.conn))
}

// statsLine is the counters as one line of JSON, as /api/stats has them.
func (s *Server) statsLine() []byte {
	st := s.Stats()
	return append(st.AppendJSON(nil), '\n')
}

// AppendJSON appends st as a JSON object, as encoding/json writes it
// (its fields in order, its maps' keys sorted), except that <, > and &
// in strings are left as they are (see proto.AppendJSONString). It is
// written out by hand so that the minimal build has no encoding/json.
func (st *Stats) AppendJSON(b []byte) []byte {
	num := func(b []byte, key string, n int64) []byte {
		return strconv.AppendInt(append(append(append(b, '"'), key...), '"', ':'), n, 10)
	}
	b = num(append(b, '{'), "accepted", st.Accepted)
	b = num(append(b, ','), "refused", st.Refused)
	b = appendCounts(append(b, `,"refusals":`...), st.Refusals)
	for _, f := range []struct {
		key string
		n   int64
	}{
		{"posted", st.Posted}, {"messages_in", st.MessagesIn}, {"delivered", st.Delivered},
		{"messages_out", st.MessagesOut}, {"bytes_in", st.BytesIn}, {"bytes_out", st.BytesOut},
		{"replays", st.Replays}, {"replayed", st.Replayed}, {"legacy_sent", st.LegacySent},
		{"legacy_failed", st.LegacyFailed}, {"udp_dropped", st.UDPDropped},
	} {
		b = num(append(b, ','), f.key, f.n)
	}
	b = appendCounts(append(b, `,"disconnects":`...), st.Disconnects)
	for _, f := range []struct {
		key string
		n   int64
	}{
		{"paced", st.Paced}, {"stalled", st.Stalled}, {"legacy_dropped", st.LegacyDropped},
		{"legacy_refused", st.LegacyRefused}, {"store_writes", st.StoreWrites},
		{"store_errors", st.StoreErrors}, {"bad_secret", st.BadSecret}, {"slowed", st.Slowed},
		{"banned", st.Banned},
	} {
		b = num(append(b, ','), f.key, f.n)
	}
	if st.StoreFailed != "" {
		b = proto.AppendJSONString(append(b, `,"store_failed":`...), st.StoreFailed)
	}
	b = appendCounts(append(b, `,"doors":`...), st.Doors)
	b = appendCounts(append(b, `,"rooms":`...), st.Rooms)
	b = num(append(b, ','), "goroutines", int64(st.Goroutines))
	return append(b, '}')
}

// appendCounts appends m as a JSON object, its keys sorted. (Not
// generic: one copy of it in the binary.)
func appendCounts(b []byte, m map[string]int64) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortlite.Strings(keys) // not slices.Sorted(maps.Keys(m)): their iterators are about 2 KB of a mipsle binary
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(append(proto.AppendJSONString(b, k), ':'), m[k], 10)
	}
	return append(b, '}')
}

// answerStats answers /stats: the counters, to a member that may read
// them (see mayReadStats).
func (s *Server) answerStats(m *member) {
	if !s.mayReadStats(m) {
		m.notify(proto.KindError, "/stats is answered for admins and relay.stats_allow only")
		return
	}
	if m.codec != nil { // a notice in the door's own format
		m.notify(proto.KindNotice, "%s", bytes.TrimSpace(s.statsLine()))
		return
	}
	m.deliver(lineEvent(s.statsLine()))
}

// isStats reports whether line is the command /stats.
func isStats(line []byte) bool {
	return strings.EqualFold(strings.TrimSpace(string(line)), "/stats")
}

// summarize logs a one-line summary of the counters every
// relay.stats_interval (read again after each, so a reload applies) until
// the relay shuts down.
func (s *Server) summarize() {
	defer s.wg.Done()
	for {
		every := s.conf().StatsInterval.D()
		if every <= 0 {
			every = time.Minute // off: look again in a while, for a reload
		}
		t := time.NewTimer(every)
		select {
		case <-s.quit:
			t.Stop()
			return
		case <-t.C:
		}
		if s.conf().StatsInterval.D() > 0 {
			s.infof("%s", s.Stats().Summary())
		}
	}
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
// within Timeouts.Shutdown, drops the legacy messages being read, and
// waits for every connection to end or ctx
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
