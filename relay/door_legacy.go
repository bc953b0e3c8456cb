//go:build !minimal

package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
)

func init() {
	optionalDoors = append(optionalDoors, func(s *Server) door {
		return door{name: "legacy", addr: func(c *Config) string { return c.Listen.Legacy },
			admit: s.admitLegacy, order: s.orderLegacy}
	})
}

// legacyPeer is how the relay reaches a member registered through the
// legacy door: one new connection to its endpoint per message.
type legacyPeer struct {
	addr netip.Addr // the address it registered from; set once

	last atomic.Int64 // when it last registered, posted or took a delivery, in Unix nanoseconds

	mu       sync.Mutex
	endpoint string      // host:port to dial; re-registering changes it
	lapse    *time.Timer // kicks it after Timeouts.LegacyLapse since last; see watch
	stopped  bool        // unwatch was called

	// Writer only.
	failures int    // deliveries in a row that failed
	buf      []byte // the message being delivered
}

// touch notes that the member registered, posted or took a delivery.
func (p *legacyPeer) touch() { p.last.Store(time.Now().UnixNano()) }

// watch drops m, whose peer p is, once Timeouts.LegacyLapse has passed
// since it last registered, posted or took a delivery: a registration
// whose client went away in a quiet room does not hold its name and its
// place for ever.
func (p *legacyPeer) watch(m *member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lapse = time.AfterFunc(m.srv.conf().Timeouts.LegacyLapse.D(), func() { p.check(m) })
}

// check is watch's timer: it drops m if it lapsed, and otherwise sets the
// timer again for when it would.
func (p *legacyPeer) check(m *member) {
	lapse := m.srv.conf().Timeouts.LegacyLapse.D()
	left := lapse - time.Since(time.Unix(0, p.last.Load()))
	if left <= 0 {
		m.kick(byLapsed)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.lapse.Reset(left)
	}
}

// unwatch stops watch's timer, once m has left.
func (p *legacyPeer) unwatch() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.lapse.Stop()
}

// admitLegacy registers a connection of the legacy door, whose client
// sends one message and reads nothing. While the relay holds
// Limits.MaxClients connections it waits for one to end, and the door
// accepts nothing meanwhile: later connections wait in the listener's
// backlog. Once the relay has been full for Timeouts.Message, connections
// are dropped unread until there is room again. It never refuses a
// connection for its address's limit: orderLegacy queues it for a slot.
// Nothing is ever written to a legacy connection.
func (s *Server) admitLegacy(c net.Conn, stop <-chan struct{}) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		max := s.conf().Limits.MaxClients
		switch {
		case s.closing:
			s.mu.Unlock()
			s.dropLegacy(c, "relay shutting down")
			return false
		case len(s.conns) < max:
			s.conns[c] = false
			s.fullSince = time.Time{}
			s.mu.Unlock()
			return true
		}
		now := time.Now()
		if s.fullSince.IsZero() {
			s.fullSince = now
		}
		left := s.fullSince.Add(s.conf().Timeouts.Message.D()).Sub(now)
		if left <= 0 {
			s.mu.Unlock()
			s.dropLegacy(c, "relay full (relay.limits.max_clients) for relay.timeouts.message")
			return false
		}
		if s.roomFreed == nil {
			s.roomFreed = make(chan struct{})
		}
		freed := s.roomFreed
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		select {
		case <-freed:
		case <-timer.C:
		case <-stop:
			s.dropLegacy(c, "door closed")
			return false
		}
	}
}

// orderLegacy gives a new legacy connection its ticket, and a slot of its
// address or a place in the queue for one, on the accepting goroutine, so
// that both follow the order of the connections. It returns what serves
// the connection.
func (s *Server) orderLegacy(c net.Conn) func() {
	ip := ipOf(c)
	t := &ticket{c: c, ip: ip, accepted: time.Now(), slot: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	t.prev = s.lastTicket[ip]
	s.lastTicket[ip] = t
	if len(s.slotQueue[ip]) == 0 && s.perIP[ip] < s.conf().Limits.MaxClientsPerIP {
		s.grantSlot(t)
	} else {
		s.slotQueue[ip] = append(s.slotQueue[ip], t)
	}
	s.mu.Unlock()
	return func() {
		defer func() {
			close(t.done)
			s.mu.Lock()
			if s.lastTicket[ip] == t {
				delete(s.lastTicket, ip)
			}
			s.mu.Unlock()
		}()
		s.serveLegacy(c, t)
	}
}

// awaitSlot waits, reading nothing, until t's connection has a slot of its
// address, for at most Timeouts.Message after it was accepted; then its
// message is dropped. It reports whether the connection has its slot.
func (s *Server) awaitSlot(t *ticket) bool {
	select {
	case <-t.slot:
		return true
	default:
	}
	timer := time.NewTimer(time.Until(t.accepted.Add(s.conf().Timeouts.Message.D())))
	defer timer.Stop()
	why := "waited relay.timeouts.message for a slot of its address (relay.limits.max_clients_per_ip)"
	select {
	case <-t.slot:
		return true
	case <-timer.C:
	case <-s.quit:
		why = "relay shutting down"
	}
	s.mu.Lock()
	granted := isClosed(t.slot)
	if !granted {
		s.unqueue(t)
	}
	s.mu.Unlock()
	if !granted {
		s.dropLegacy(t.c, why)
	}
	return granted
}

// dropLegacy closes c: its message is lost for why (see Server.drop).
func (s *Server) dropLegacy(c net.Conn, why string) {
	c.Close()
	s.drop(&s.stats.legacyDropped, "legacy message", c.RemoteAddr(), why)
}

// serveLegacy takes one message of the tutorial chat-room protocol: the
// whole of what the connection sends before it closes, within
// Timeouts.Message of its getting a slot of its address, and
// Limits.MaxLineBytes.
func (s *Server) serveLegacy(c net.Conn, t *ticket) {
	if !s.awaitSlot(t) {
		return
	}
	max := s.conf().Limits.MaxLineBytes
	c.SetReadDeadline(time.Now().Add(s.conf().Timeouts.Message.D()))
	payload, err := io.ReadAll(io.LimitReader(c, int64(max)+1))
	switch {
	case err != nil && isClosed(s.quit):
		s.dropLegacy(c, "relay shutting down")
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.dropLegacy(c, "not closed within relay.timeouts.message")
		return
	case err != nil:
		s.debugf("legacy %s: read: %v", c.RemoteAddr(), err)
		s.dropLegacy(c, "read failed")
		return
	case len(payload) > max:
		s.dropLegacy(c, "over relay.limits.max_line_bytes")
		return
	}
	t.wait()
	msg, err := proto.ParseLegacy(payload)
	if err != nil {
		s.stats.legacyRefused.Add(1)
		s.warnf("legacy %s: %v", c.RemoteAddr(), err)
		return
	}
	from := ipOf(c)
	switch msg.Kind {
	case proto.LegacyRegister:
		err = s.registerLegacy(from, msg)
		if err != nil {
			s.warnf("legacy %s: connect_request for %s refused: %v", c.RemoteAddr(), msg.Name, err)
		}
	case proto.LegacyPost:
		err = s.postAs(from, msg.Name, msg.Text, true)
		if err != nil {
			s.warnf("legacy %s: message from %s refused: %v", c.RemoteAddr(), msg.Name, err)
		}
	}
	if err != nil {
		s.stats.legacyRefused.Add(1)
	}
}

// registerLegacy registers, or updates, a legacy member that is reached
// at msg.Host:msg.Port. The host must resolve to the address the request
// came from: the relay never dials a third party. A name registered at
// the endpoint of another name of the same address replaces that one: an
// endpoint is one client, started again under another name.
func (s *Server) registerLegacy(from netip.Addr, msg proto.Legacy) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.conf().Timeouts.Dial.D())
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", msg.Host)
	if err != nil {
		return fmt.Errorf("host %s: %w", msg.Host, err)
	}
	if !slices.ContainsFunc(ips, func(ip netip.Addr) bool { return ip.Unmap() == from }) {
		return fmt.Errorf("host %s is not the address %s it was sent from", msg.Host, from)
	}
	endpoint := net.JoinHostPort(from.String(), fmt.Sprint(msg.Port))

	l := s.conf().Limits
	m := s.newMember(nil)
	m.name, m.key = msg.Name, proto.Fold(msg.Name)
	p := &legacyPeer{addr: from, endpoint: endpoint}
	p.touch()
	m.out = p
	s.mu.Lock()
	old, held := s.names[m.key]
	stale := s.legacyAt(from, endpoint)
	if stale == old {
		stale = nil
	}
	switch {
	case s.closing:
		s.mu.Unlock()
		return errors.New("relay shutting down")
	case held && !legacyFrom(old, from):
		s.mu.Unlock()
		return fmt.Errorf("%w: %s is in use by another member", errNameTaken, msg.Name)
	case held:
		s.mu.Unlock()
		op := old.out.(*legacyPeer)
		op.mu.Lock()
		op.endpoint = endpoint
		op.mu.Unlock()
		op.touch()
		s.dropReplaced(stale, old.name, endpoint)
		s.infof("legacy %s: %s now at %s", from, msg.Name, endpoint)
		return nil
	case stale == nil && s.legacyCount >= l.MaxLegacyMembers:
		s.mu.Unlock()
		return fmt.Errorf("legacy member limit reached (relay.limits.max_legacy_members %d)", l.MaxLegacyMembers)
	case stale == nil && s.legacyPerIP[from] >= l.MaxLegacyPerIP:
		s.mu.Unlock()
		return fmt.Errorf("%s holds %d legacy registrations already (relay.limits.max_legacy_per_ip)", from, s.legacyPerIP[from])
	}
	s.lastID++
	m.id = s.lastID
	s.names[m.key] = m
	s.legacyCount++
	s.legacyPerIP[from]++
	s.wg.Add(1)
	s.mu.Unlock()

	s.dropReplaced(stale, m.name, endpoint)
	s.infof("legacy %s: %s registered at %s", from, msg.Name, endpoint)
	p.watch(m)
	go func() {
		defer s.wg.Done()
		m.writeLoop()
		p.unwatch()
		s.leave(m)
		s.mu.Lock()
		s.legacyCount--
		if s.legacyPerIP[from]--; s.legacyPerIP[from] <= 0 {
			delete(s.legacyPerIP, from)
		}
		s.mu.Unlock()
		s.infof("legacy %s: %s dropped: %s", from, m.name, m.why)
	}()
	if err := s.join(m, s.conf().DefaultRoom, nil, 0); err != nil {
		m.kick(byShutdown)
		return err
	}
	return nil
}

// dropReplaced drops stale, when not nil: name now has its endpoint.
func (s *Server) dropReplaced(stale *member, name, endpoint string) {
	if stale != nil {
		s.infof("legacy: %s replaces %s at %s", name, stale.name, endpoint)
		stale.kick(byReplaced)
	}
}

// legacyAt returns the legacy member registered from addr at endpoint, or
// nil. Called with mu held.
func (s *Server) legacyAt(addr netip.Addr, endpoint string) *member {
	for _, m := range s.names {
		if !legacyFrom(m, addr) {
			continue
		}
		p := m.out.(*legacyPeer)
		p.mu.Lock()
		at := p.endpoint
		p.mu.Unlock()
		if at == endpoint && !m.isDone() {
			return m
		}
	}
	return nil
}

// legacyFrom reports whether m is a legacy member registered from addr.
func legacyFrom(m *member, addr netip.Addr) bool {
	p, ok := m.out.(*legacyPeer)
	return ok && p.addr == addr
}

// errNotYours is returned for a message in a name that the sender's
// address does not hold.
var errNotYours = errors.New("name not registered from this address")

// postAs posts text to the default room as name on behalf of a
// connectionless sender at from. With registered, name must be a legacy
// member registered from that address; otherwise (the UDP door) a name
// nobody holds may be used too.
func (s *Server) postAs(from netip.Addr, name, text string, registered bool) error {
	if err := proto.CheckName(name); err != nil {
		return err
	}
	if n := len(name) + 2 + len(text); n > s.conf().Limits.MaxLineBytes {
		return fmt.Errorf("message would make a %d-byte line (at most %d)", n, s.conf().Limits.MaxLineBytes)
	}
	m := s.lookup(name)
	var id uint64
	r, err := s.room(s.conf().DefaultRoom)
	if err != nil {
		return err
	}
	switch {
	case m == nil && registered:
		return fmt.Errorf("%w: send connect_request|%s|HOST|PORT first", errNotYours, name)
	case m != nil && !legacyFrom(m, from):
		return fmt.Errorf("%w: %s is held by another member", errNotYours, name)
	case m != nil:
		// Its registration publishes the name before it enters the room:
		// until then it is on its way to the default room, r.
		m.mu.Lock()
		if m.room != nil {
			r = m.room
		}
		m.mu.Unlock()
		id, name = m.id, m.name
		m.out.(*legacyPeer).touch()
	}
	r.post(&proto.Event{Kind: proto.KindMsg, From: name, Text: text, Time: now()}, id, s.maxLag())
	s.stats.posted.Add(1)
	return nil
}

// send delivers a batch to a legacy member, one connection per message,
// in order, each encoded by proto.AppendLegacy: the kinds the tutorial
// protocol lacks (notices, errors, joins, parts) are left out. A delivery
// that fails after retries is lost for this member; after
// Limits.LegacyFailures in a row it is dropped as unreachable.
func (p *legacyPeer) send(m *member, evs []*event) {
	t := m.srv.conf().Timeouts
	for _, ev := range evs {
		msg := proto.AppendLegacy(p.buf[:0], &ev.src)
		if len(msg) == 0 {
			continue
		}
		p.buf = msg
		p.mu.Lock()
		endpoint := p.endpoint
		p.mu.Unlock()
		if m.stopping() {
			return
		}
		err := deliverLegacy(m.done, m.stopping, endpoint, msg, t.Dial.D(), t.Write.D(), t.Retry.D())
		if err == nil {
			p.failures = 0
			p.touch()
			continue
		}
		p.failures++
		m.srv.warnf("legacy: delivery to %s at %s failed (%d in a row): %v", m.name, endpoint, p.failures, err)
		if p.failures >= m.srv.conf().Limits.LegacyFailures {
			m.kick(byUnreachable)
			return
		}
	}
}

// deliverLegacy opens one connection to endpoint, writes msg and closes
// it. A refused connection is retried with backoff for up to retry, since
// tutorial clients register before they listen; once done is closed,
// stop says whether to give up.
func deliverLegacy(done <-chan struct{}, stop func() bool, endpoint string, msg []byte, dial, write, retry time.Duration) error {
	deadline := time.Now().Add(retry)
	wait := 50 * time.Millisecond
	for {
		err := dialWrite(endpoint, msg, dial, write)
		if err == nil || !errors.Is(err, errRefused) || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-done:
			if stop() {
				t.Stop()
				return err
			}
			<-t.C
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

var errRefused = errors.New("connection refused")

func dialWrite(endpoint string, msg []byte, dial, write time.Duration) error {
	c, err := net.DialTimeout("tcp", endpoint, dial)
	if err != nil {
		if isRefused(err) {
			return fmt.Errorf("%w: %v", errRefused, err)
		}
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(write))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	if cw, ok := c.(*net.TCPConn); ok {
		return cw.CloseWrite()
	}
	return nil
}
