package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
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
	cfg  Config // set once
	logf Logf   // set once

	mu          sync.Mutex
	closing     bool
	listeners   map[string]net.Listener // by door name
	packets     net.PacketConn          // the UDP door
	rooms       map[string]*room        // by folded name
	names       map[string]*member      // by folded name
	conns       map[net.Conn]struct{}   // every open connection
	perIP       map[netip.Addr]int
	lastID      uint64
	legacyCount int                    // legacy members
	lastTicket  map[netip.Addr]*ticket // legacy door: each address's newest connection

	wg sync.WaitGroup // accept loops and connections

	stats stats
}

// stats are the relay's counters.
type stats struct {
	accepted, refused, posted, udpDropped atomic.Int64
	disconnects                           [numReasons]atomic.Int64
}

// Stats is a snapshot of the relay's counters.
type Stats struct {
	Accepted    int64            // connections accepted
	Refused     int64            // connections refused (relay or address full)
	Posted      int64            // events posted to rooms
	UDPDropped  int64            // datagrams refused
	Disconnects map[string]int64 // members disconnected, by reason
}

// New returns a relay for cfg, which must have passed validation.
// Nothing listens until Start.
func New(cfg Config, logf Logf) *Server {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Server{
		cfg: cfg, logf: logf,
		listeners: map[string]net.Listener{}, rooms: map[string]*room{},
		names: map[string]*member{}, conns: map[net.Conn]struct{}{}, perIP: map[netip.Addr]int{},
		lastTicket: map[netip.Addr]*ticket{},
	}
}

// door is one listener kind. serve runs on a goroutine of its own for
// each connection; order, when set, runs first on the accepting goroutine
// and returns what serve runs instead, so that a door can note the order
// of its connections.
type door struct {
	name  string
	addr  string
	serve func(net.Conn)
	order func(net.Conn) func()
}

func (s *Server) doors() []door {
	return []door{
		{"line", s.cfg.Listen.Line, s.serveLine, nil},
		{"legacy", s.cfg.Listen.Legacy, nil, s.orderLegacy},
	}
}

// Start binds every configured door and serves them in the background.
// A door that cannot be bound is an error and nothing keeps listening.
func (s *Server) Start() error {
	keepalive := s.cfg.Timeouts.Keepalive.D()
	if keepalive == 0 {
		keepalive = -1 // off
	}
	lc := net.ListenConfig{KeepAlive: keepalive}
	for _, d := range s.doors() {
		if d.addr == "" {
			continue
		}
		ln, err := lc.Listen(context.Background(), "tcp", d.addr)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("%s door: %w", d.name, err)
		}
		s.mu.Lock()
		s.listeners[d.name] = ln
		s.mu.Unlock()
		s.logf("%s door listening on %s", d.name, ln.Addr())
		s.wg.Add(1)
		go s.accept(ln, d)
	}
	if err := s.startUDP(&lc); err != nil {
		s.closeListeners()
		return fmt.Errorf("udp door: %w", err)
	}
	return nil
}

// Addr returns the bound address of a door ("line", "legacy", "udp"), or
// nil.
func (s *Server) Addr(door string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if door == "udp" && s.packets != nil {
		return s.packets.LocalAddr()
	}
	if ln := s.listeners[door]; ln != nil {
		return ln.Addr()
	}
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ln := range s.listeners {
		ln.Close()
		delete(s.listeners, name)
	}
	if s.packets != nil {
		s.packets.Close()
		s.packets = nil
	}
}

// accept serves one listener until it is closed.
func (s *Server) accept(ln net.Listener, d door) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("%s door: accept: %v; retrying in %v", d.name, err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if why := s.admit(c); why != "" {
			s.stats.refused.Add(1)
			s.logf("%s door: refused %s: %s", d.name, c.RemoteAddr(), why)
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(proto.AppendText(nil, &proto.Event{Kind: proto.KindError, Text: "refused: " + why}))
			c.Close()
			continue
		}
		s.stats.accepted.Add(1)
		serve := func() { d.serve(c) }
		if d.order != nil {
			serve = d.order(c)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.release(c)
			defer func() {
				if p := recover(); p != nil {
					s.logf("%s door: %s: panic: %v", d.name, c.RemoteAddr(), p)
				}
			}()
			serve()
		}()
	}
}

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
	l := s.cfg.Limits
	switch {
	case s.closing:
		return "relay shutting down"
	case len(s.conns) >= l.MaxClients:
		return fmt.Sprintf("relay full (%d clients)", l.MaxClients)
	case s.perIP[ip] >= l.MaxClientsPerIP:
		return fmt.Sprintf("too many connections from %s (%d)", ip, l.MaxClientsPerIP)
	}
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	return ""
}

// release closes a connection and forgets it.
func (s *Server) release(c net.Conn) {
	c.Close()
	ip := ipOf(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// hangUp closes c gracefully: it sends a FIN, then reads and drops what
// the peer still sends for at most d, so that unread input does not make
// the close a reset that destroys the last lines written.
func hangUp(c net.Conn, d time.Duration) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.SetReadDeadline(time.Now().Add(d))
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}
	c.Close()
}

// errNameTaken is returned by claim for a name someone holds.
var errNameTaken = errors.New("name taken")

// claim makes a member of name on c, unless the name is held.
func (s *Server) claim(c net.Conn, name string, json bool) (*member, error) {
	m := s.newMember(c, name, json)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errors.New("relay shutting down")
	}
	if _, ok := s.names[m.key]; ok {
		return nil, fmt.Errorf("%w: %s is in use, choose another", errNameTaken, name)
	}
	s.lastID++
	m.id = s.lastID
	s.names[m.key] = m
	return m, nil
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
	if len(s.rooms) >= s.cfg.Limits.MaxRooms {
		dropped := false
		for k, r := range s.rooms {
			if k != proto.Fold(s.cfg.DefaultRoom) && r.size() == 0 {
				delete(s.rooms, k)
				dropped = true
				break
			}
		}
		if !dropped {
			return nil, fmt.Errorf("%w: %d rooms, none empty", errRoomLimit, s.cfg.Limits.MaxRooms)
		}
	}
	r := newRoom(name, s.cfg.Limits.History)
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
// after that sequence number; otherwise replay past events are replayed.
func (s *Server) join(m *member, name string, since *uint64, replay int) error {
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
		old.remove(m)
		if old != r {
			old.post(&proto.Event{Kind: proto.KindPart, From: m.name, Time: now()}, m.id, s.maxLag())
		}
	}
	m.mu.Lock()
	next, missed := r.add(m, since, replay)
	m.room = r
	for i := range m.priv {
		m.priv[i].at = 0 // what was queued in the old room goes first
	}
	// The welcome and any gap come before the replay.
	others := r.size() - 1
	m.priv = append(m.priv, queued{newEvent(&proto.Event{Kind: proto.KindNotice, Text: fmt.Sprintf(
		"you are %s in %s with %d other%s; /help lists the commands", m.name, r.name, others, plural(others))}, 0), next - 1})
	if missed > 0 {
		m.priv = append(m.priv, queued{gapNotice(r.name, next-missed, next), next - 1})
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
		r.post(&proto.Event{Kind: proto.KindPart, From: m.name, Text: m.why.String(), Time: now()}, m.id, s.maxLag())
	}
	s.mu.Lock()
	if s.names[m.key] == m {
		delete(s.names, m.key)
	}
	s.mu.Unlock()
	s.stats.disconnects[m.why].Add(1)
}

func (s *Server) maxLag() uint64 { return uint64(s.cfg.Limits.Queue) }

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
	s.closing = true
	s.mu.Unlock()
	s.closeListeners()
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
	past := time.Unix(1, 0)
	for _, c := range conns {
		c.SetReadDeadline(past) // sessions still in their handshake
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
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
