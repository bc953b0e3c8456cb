//go:build !minimal

package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/peer"
)

func init() {
	optionalDoors = append(optionalDoors, func(s *Server) door {
		return &legacyDoor{s: s, last: map[netip.Addr]*ticket{}}
	})
}

// legacyDoor is the tutorial chat-room protocol's door: one TCP
// connection per message, members reached by dialling back.
type legacyDoor struct {
	s *Server

	mu   sync.Mutex
	last map[netip.Addr]*ticket // each address's newest connection

	members atomic.Int32 // legacy members registered; raised under s.mu
}

func (*legacyDoor) name() string                 { return "legacy" }
func (*legacyDoor) addr(c *config.Config) string { return c.Listen.Legacy }

// serve gives a new legacy connection its ticket, on the accepting
// goroutine, and takes its message on a goroutine of its own.
func (d *legacyDoor) serve(c net.Conn) {
	s := d.s
	ip := ipOf(c)
	d.mu.Lock()
	t := &ticket{prev: d.last[ip], at: time.Now(), done: make(chan struct{})}
	d.last[ip] = t
	d.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.release(c)
		defer func() {
			close(t.done)
			d.mu.Lock()
			if d.last[ip] == t {
				delete(d.last, ip)
			}
			d.mu.Unlock()
		}()
		defer func() {
			if p := recover(); p != nil {
				s.errorf("legacy %s: panic: %v", c.RemoteAddr(), p)
			}
		}()
		d.take(c, t)
	}()
}

// legacyPeer is the driver of a member registered through the legacy
// door: a writer goroutine that delivers each event on a connection of
// its own to the member's endpoint.
type legacyPeer struct {
	d     *legacyDoor
	addr  netip.Addr    // the address it registered from; set once
	wakeC chan struct{} // capacity 1: something may be ready to send

	mu       sync.Mutex
	endpoint string // host:port to dial; re-registering changes it

	// Writer only.
	failures int // deliveries in a row that failed
	batch    []*event
}

func (p *legacyPeer) wake(*member) {
	select {
	case p.wakeC <- struct{}{}:
	default:
	}
}

func (p *legacyPeer) stop(m *member) { p.wake(m) }

// take takes one message of the tutorial chat-room protocol: the whole of
// what the connection sends before it closes, within Timeouts.Message and
// Limits.MaxLineBytes.
func (d *legacyDoor) take(c net.Conn, t *ticket) {
	s := d.s
	max := s.conf().Limits.MaxLineBytes
	c.SetReadDeadline(time.Now().Add(s.conf().Timeouts.Message.D()))
	payload, err := io.ReadAll(io.LimitReader(c, int64(max)+1))
	switch {
	case err != nil:
		s.warnf("legacy %s: message not taken: %v", c.RemoteAddr(), err)
		return
	case len(payload) > max:
		s.warnf("legacy %s: message over %d bytes, dropped", c.RemoteAddr(), max)
		return
	}
	t.wait()
	msg, err := proto.ParseLegacy(payload)
	if err != nil {
		s.warnf("legacy %s: %v", c.RemoteAddr(), err)
		return
	}
	from := ipOf(c)
	switch msg.Kind {
	case proto.LegacyRegister:
		if err := d.register(from, msg); err != nil {
			s.warnf("legacy %s: connect_request for %s refused: %v", c.RemoteAddr(), msg.Name, err)
		}
	case proto.LegacyPost:
		if err := s.postAs(from, msg.Name, msg.Text, true); err != nil {
			s.warnf("legacy %s: message from %s refused: %v", c.RemoteAddr(), msg.Name, err)
		}
	}
}

// register registers, or updates, a legacy member that is reached at
// msg.Host:msg.Port. The host must resolve to the address the request
// came from: the relay never dials a third party.
func (d *legacyDoor) register(from netip.Addr, msg proto.Legacy) error {
	s := d.s
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

	p := &legacyPeer{d: d, addr: from, endpoint: endpoint, wakeC: make(chan struct{}, 1)}
	m := s.newMember(nil, "legacy", p)
	m.name, m.key = msg.Name, proto.Fold(msg.Name)
	m.named.Store(true)
	s.mu.Lock()
	old, held := s.names[m.key]
	switch {
	case s.closing:
		s.mu.Unlock()
		return errors.New("relay shutting down")
	case held && !legacyFrom(old, from):
		s.mu.Unlock()
		return fmt.Errorf("%w: %s is in use by another member", errNameTaken, msg.Name)
	case held:
		s.mu.Unlock()
		p := old.drv.(*legacyPeer)
		p.mu.Lock()
		p.endpoint = endpoint
		p.mu.Unlock()
		s.infof("legacy %s: %s now at %s", from, msg.Name, endpoint)
		return nil
	case int(d.members.Load()) >= s.conf().Limits.MaxLegacyMembers:
		s.mu.Unlock()
		return fmt.Errorf("legacy member limit reached (%d)", s.conf().Limits.MaxLegacyMembers)
	}
	s.lastID++
	m.id = s.lastID
	s.names[m.key] = m
	d.members.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()

	s.infof("legacy %s: %s registered at %s", from, msg.Name, endpoint)
	go func() {
		defer s.wg.Done()
		p.run(m)
		m.end(nil)
		d.members.Add(-1)
	}()
	if err := s.join(m, s.conf().DefaultRoom, nil, 0); err != nil {
		m.kick(byShutdown)
		return err
	}
	return nil
}

// legacyFrom reports whether m is a legacy member registered from addr.
func legacyFrom(m *member, addr netip.Addr) bool {
	p, ok := m.drv.(*legacyPeer)
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
		id, r = m.id, m.room
		name = m.name
	}
	r.post(&proto.Event{Kind: proto.KindMsg, From: name, Text: text, Time: now()}, id, s.maxLag())
	s.stats.posted.Add(1)
	return nil
}

// run delivers what the member is owed until it is kicked, then what a
// flush promises it.
func (p *legacyPeer) run(m *member) {
	defer m.recovered()
	for {
		select {
		case <-p.wakeC:
			p.send(m)
		case <-m.done:
			if m.why.flushes() {
				p.send(m)
			}
			return
		}
	}
}

// send delivers the member's events, one connection per message, in
// order, until nothing is ready. Only what the tutorial protocol carries
// is sent (messages, actions, private messages; see
// proto.AppendLegacyEvent). A delivery that fails after retries is lost
// for this member; after Limits.LegacyFailures in a row it is dropped.
func (p *legacyPeer) send(m *member) {
	t := m.srv.conf().Timeouts
	for {
		batch, ok := m.batch(&p.batch)
		if !ok {
			m.kick(bySlow)
			return
		}
		if len(batch) == 0 {
			return
		}
		for i, ev := range batch {
			batch[i] = nil
			msg, ok := proto.AppendLegacyEvent(nil, &ev.src)
			if !ok || m.isDone() && m.flushOver(time.Now()) {
				continue
			}
			p.mu.Lock()
			endpoint := p.endpoint
			p.mu.Unlock()
			stopping := func() bool { return m.flushOver(time.Now()) }
			err := deliverLegacy(m.done, stopping, endpoint, msg, t.Dial.D(), t.Retry.D())
			if err == nil {
				p.failures = 0
				continue
			}
			p.failures++
			m.srv.warnf("legacy: delivery to %s at %s failed (%d in a row): %v", m.name, endpoint, p.failures, err)
			if p.failures >= m.srv.conf().Limits.LegacyFailures {
				m.kick(byUnreachable)
			}
		}
	}
}

// deliverLegacy sends msg to endpoint on a connection of its own (see
// peer.Send), each step within timeout. A refused connection is retried
// with backoff for up to retry, since tutorial clients register before
// they listen; once done is closed, stop says whether to give up.
func deliverLegacy(done <-chan struct{}, stop func() bool, endpoint string, msg []byte, timeout, retry time.Duration) error {
	deadline := time.Now().Add(retry)
	wait := 50 * time.Millisecond
	for {
		err := peer.Send(context.Background(), endpoint, msg, timeout)
		if err == nil || !isRefused(err) || time.Now().Add(wait).After(deadline) {
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

// ticket is a legacy connection's place in the order of its address.
type ticket struct {
	prev *ticket // the address's previous connection, until waited for
	at   time.Time
	done chan struct{} // closed when its message is handled or dropped
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
// after it was accepted.
const orderGrace = 250 * time.Millisecond
