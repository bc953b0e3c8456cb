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
	"strings"
	"sync"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/peer"
)

func init() {
	optionalDoors = append(optionalDoors, func(s *Server) door {
		return &legacyDoor{s: s, last: map[netip.Addr]*ticket{}, perIP: map[netip.Addr]int{},
			budgets: newLimiterTable[budgetKey](legacySources)}
	})
}

// legacyDoor is the tutorial chat-room protocol's door: one TCP
// connection per message, members reached by dialling back. Its
// connections wait for room rather than being refused (see admit.go):
// the protocol has no reply, so a refusal would lose the message silently.
type legacyDoor struct {
	s *Server

	// Guarded by s.mu.
	last    map[netip.Addr]*ticket // each address's newest connection
	members int                    // legacy members
	perIP   map[netip.Addr]int     // legacy members, by the address they registered from

	// Guarded by budgetMu.
	budgetMu sync.Mutex
	budgets  *limiterTable[budgetKey] // each sender's budget (Limits.Rate, Limits.Burst)

	saveMu   sync.Mutex // held while the registrations are saved (see save), so that the last save wins
	restored sync.Once  // the saved registrations are read back once (see prepare)
}

// legacySources bounds how many senders' budgets the legacy door keeps
// (see limiterTable): a sweep of new addresses or names cannot reset
// anyone's.
const legacySources = 1024

// budgetKey is whose budget a legacy message is held to: its name's, as
// posted from an address (a post can come only from the address that
// registered the name), or, for a registration, its address's.
type budgetKey struct {
	ip   netip.Addr
	name string // folded; "" for registrations
}

// pace holds t's message, of key, until its turn
// within its budget (Limits.Rate, Limits.Burst): at once within the burst,
// later over it. Turns are taken as the messages are handled, which is in
// the order of their address's connections (see ticket.wait), so waiting
// messages keep their order. It reports false, taking nothing, when the
// turn would come later than Timeouts.Message after t was accepted, when the
// table of budgets is full of budgets in use, or when the relay shuts
// down meanwhile.
func (d *legacyDoor) pace(key budgetKey, t *ticket) bool {
	l := d.s.conf().Limits
	if l.Rate <= 0 {
		return true
	}
	now := time.Now()
	d.budgetMu.Lock()
	b := d.budgets.get(key, now, l.Rate, l.Burst)
	var wait time.Duration
	if b != nil {
		var ok bool
		if wait, ok = b.reserveBy(now, t.accepted.Add(d.s.conf().Timeouts.Message.D()), l.Rate, l.Burst); !ok {
			b = nil
		}
	}
	d.budgetMu.Unlock()
	if b == nil {
		return false
	}
	if wait <= 0 {
		return true // and the next connection of the address waits for its end
	}
	// The next connection of the address may take its turn now: it comes
	// after this one's, which is posted as soon as it comes.
	t.turnTaken()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-d.s.quit:
		return false
	case <-timer.C:
		return true
	}
}

func (*legacyDoor) name() string                 { return "legacy" }
func (*legacyDoor) addr(c *config.Config) string { return c.Listen.Legacy }

// ticket is a legacy connection's place in the order of its address:
// for a slot of the address, and for posting.
type ticket struct {
	slotWait               // set once, by serve
	accepted time.Time     // likewise
	done     chan struct{} // closed when its message is handled or dropped
	turn     chan struct{} // closed when its message waits for its turn in its budget (see pace), or is done
	turnOnce sync.Once

	prev *ticket // the address's previous connection, until waited for
}

// orderGrace is how long a legacy message waits for the messages of
// earlier connections from the same address, so that a tutorial client's
// messages, one connection each, are posted in the order it sent them. A
// connection that sends nothing holds later ones up for at most this long
// after its reading began.
const orderGrace = 250 * time.Millisecond

// turnTaken says that t's message has its turn: a later message of the
// address may take its own.
func (t *ticket) turnTaken() { t.turnOnce.Do(func() { close(t.turn) }) }

// wait returns when the previous connection of the same address is done
// or waits for its turn in its budget (it is posted before any turn taken
// after it), or its grace has passed.
func (t *ticket) wait() {
	p := t.prev
	t.prev = nil
	if p == nil {
		return
	}
	timer := time.NewTimer(time.Until(p.at.Add(orderGrace)))
	defer timer.Stop()
	select {
	case <-p.turn:
	case <-timer.C:
	}
}

// serve admits a legacy connection, waiting while the relay is full (see
// Server.admitWaiting), and gives it its ticket and a slot of its address
// or a place in the queue for one, on the accepting goroutine, so that
// both follow the order of the connections; its message is taken on a
// goroutine of its own. Nothing is ever written to a legacy connection.
func (d *legacyDoor) serve(c net.Conn, stop <-chan struct{}) {
	s := d.s
	if ip := ipOf(c); !allowed(s.conf().LegacyAllow, ip) {
		c.Close()
		s.drop(&s.stats.legacyRefused, "legacy connection", c.RemoteAddr(), "not in relay.legacy_allow")
		return
	} else if _, banned := s.banned(ip, "", time.Now()); banned {
		c.Close()
		s.drop(&s.stats.banned, "legacy connection", c.RemoteAddr(), "banned by an admin")
		return
	}
	if why, ok := s.admitWaiting(c, s.conf().Timeouts.Message.D(), stop); !ok {
		d.dropped(c, why)
		return
	}
	ip := ipOf(c)
	t := &ticket{slotWait: slotWait{c: c, ip: ip, slot: make(chan struct{})}, accepted: time.Now(), done: make(chan struct{}), turn: make(chan struct{})}
	s.mu.Lock()
	t.prev = d.last[ip]
	d.last[ip] = t
	s.queueSlot(&t.slotWait)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.release(c)
		defer func() {
			close(t.done)
			t.turnTaken()
			s.mu.Lock()
			if d.last[ip] == t {
				delete(d.last, ip)
			}
			s.mu.Unlock()
		}()
		defer func() {
			if p := recover(); p != nil {
				s.errorf("legacy %s: panic: %v", c.RemoteAddr(), p)
			}
		}()
		d.take(c, t)
	}()
}

// dropped closes c: its message is lost for why (see Server.drop).
func (d *legacyDoor) dropped(c net.Conn, why string) {
	c.Close()
	d.s.drop(&d.s.stats.legacyDropped, "legacy message", c.RemoteAddr(), why)
}

// take takes one message of the tutorial chat-room protocol: the whole of
// what the connection sends before it closes, within Timeouts.Message of
// its getting a slot of its address, and Limits.MaxLineBytes.
func (d *legacyDoor) take(c net.Conn, t *ticket) {
	s := d.s
	if why, ok := s.awaitSlot(&t.slotWait, t.accepted, s.conf().Timeouts.Message.D()); !ok {
		d.dropped(c, why)
		return
	}
	max := s.conf().Limits.MaxLineBytes
	c.SetReadDeadline(time.Now().Add(s.conf().Timeouts.Message.D()))
	read := make(chan struct{})
	go func() { // the relay shutting down ends the read at once
		select {
		case <-s.quit:
			c.SetReadDeadline(time.Unix(1, 0))
		case <-read:
		}
	}()
	payload, err := io.ReadAll(io.LimitReader(c, int64(max)+1))
	close(read)
	switch {
	case err != nil && isClosed(s.quit):
		d.dropped(c, "relay shutting down")
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		d.dropped(c, "not closed within relay.timeouts.message")
		return
	case err != nil:
		s.debugf("legacy %s: read: %v", c.RemoteAddr(), err)
		d.dropped(c, "read failed")
		return
	case len(payload) > max:
		d.dropped(c, "over relay.limits.max_line_bytes")
		return
	}
	s.stats.bytesIn.Add(int64(len(payload)))
	t.wait()
	msg, err := proto.ParseLegacy(payload)
	if err != nil {
		s.stats.legacyRefused.Add(1)
		s.warnf("legacy %s: %v", c.RemoteAddr(), err)
		return
	}
	from := ipOf(c)
	key := budgetKey{ip: from}
	if msg.Kind == proto.LegacyPost {
		key.name = proto.Fold(msg.Name)
	}
	// A post in a name not registered from its address is refused without
	// touching a budget; any other message waits its turn, its connection
	// (and slot) held meanwhile.
	if m := s.lookup(msg.Name); (msg.Kind != proto.LegacyPost || m != nil && legacyFrom(m, from)) && !d.pace(key, t) {
		d.dropped(c, "over its budget (relay.limits.rate) for relay.timeouts.message")
		return
	}
	switch msg.Kind {
	case proto.LegacyRegister:
		err = d.register(from, msg)
		if err != nil {
			s.warnf("legacy %s: connect_request for %s refused: %v", c.RemoteAddr(), msg.Name, err)
		}
	case proto.LegacyPost:
		err = s.postAs(from, msg.Name, msg.Text, true)
		if errors.Is(err, errEmpty) {
			d.dropped(c, err.Error())
			return
		}
		if err != nil {
			s.warnf("legacy %s: message from %s refused: %v", c.RemoteAddr(), msg.Name, err)
		}
	}
	if err != nil {
		s.stats.legacyRefused.Add(1)
	}
}

// register registers, or updates, a legacy member that is reached at
// msg.Host:msg.Port. The host must resolve to the address the request
// came from: the relay never dials a third party. A name registered at
// the endpoint of another name of the same address replaces that one: an
// endpoint is one client, started again under another name.
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
	changed, err := d.enrol(from, msg.Name, endpoint)
	if changed {
		d.save()
	}
	return err
}

// enrol registers name, or updates its endpoint, as register does once
// the endpoint is checked, and reports whether the registrations changed:
// only an error before any change (a name taken, banned, a limit) leaves
// them as they were.
func (d *legacyDoor) enrol(from netip.Addr, name, endpoint string) (changed bool, err error) {
	s := d.s
	if b, ok := s.banned(netip.Addr{}, name, time.Now()); ok {
		s.stats.banned.Add(1)
		return false, fmt.Errorf("the name %s is %s", name, bannedWhy(b))
	}

	l := s.conf().Limits
	p := &legacyPeer{addr: from, endpoint: endpoint, wakeC: make(chan struct{}, 1)}
	m := s.newMember(nil, "legacy", p)
	m.name, m.key, m.from = name, proto.Fold(name), from
	m.named.Store(true)
	s.mu.Lock()
	old, held := s.names[m.key]
	stale := s.legacyAt(from, endpoint)
	if stale == old {
		stale = nil
	}
	switch {
	case s.closing:
		s.mu.Unlock()
		return false, errors.New("relay shutting down")
	case held && !legacyFrom(old, from):
		s.mu.Unlock()
		return false, fmt.Errorf("%w: %s is in use by another member", errNameTaken, name)
	case held:
		s.mu.Unlock()
		op := old.drv.(*legacyPeer)
		op.mu.Lock()
		moved := op.endpoint != endpoint
		op.endpoint = endpoint
		op.mu.Unlock()
		old.lastIn.Store(time.Now().UnixNano())
		d.replaced(stale, old.name, endpoint)
		s.infof("legacy %s: %s now at %s", from, name, endpoint)
		return moved || stale != nil, nil // the same again: nothing to write
	case stale == nil && d.members >= l.MaxLegacyMembers:
		s.mu.Unlock()
		return false, fmt.Errorf("legacy member limit reached (relay.limits.max_legacy_members %d)", l.MaxLegacyMembers)
	case stale == nil && d.perIP[from] >= l.MaxLegacyPerIP:
		s.mu.Unlock()
		return false, fmt.Errorf("%s holds %d legacy registrations already (relay.limits.max_legacy_per_ip)", from, d.perIP[from])
	}
	s.lastID++
	m.id = s.lastID
	s.names[m.key] = m
	d.members++
	d.perIP[from]++
	s.wg.Add(1)
	s.mu.Unlock()

	d.replaced(stale, m.name, endpoint)
	s.infof("legacy %s: %s registered at %s", from, name, endpoint)
	if registeredHook != nil {
		registeredHook(m)
	}
	// In its room before its driver runs: a kick meanwhile (a shutdown, a
	// registration replacing it) is seen by the driver when it starts, and
	// its end then finds it in the room to leave.
	err = s.join(m, s.conf().DefaultRoom, nil, 0)
	if err != nil {
		m.kick(byShutdown)
	}
	go func() {
		defer s.wg.Done()
		p.run(m)
		m.end(nil)
		s.mu.Lock()
		d.members--
		if d.perIP[from]--; d.perIP[from] <= 0 {
			delete(d.perIP, from)
		}
		s.mu.Unlock()
		d.save() // a drop: not at a shutdown, which keeps everyone's
	}()
	return true, err
}

// registeredHook, when set (by tests only), runs as soon as a legacy
// member's name is published, before it enters its room.
var registeredHook func(*member)

// replaced drops stale, when not nil: name now has its endpoint.
func (d *legacyDoor) replaced(stale *member, name, endpoint string) {
	if stale != nil {
		d.s.infof("legacy: %s replaces %s at %s", name, stale.name, endpoint)
		stale.kick(byReplaced)
	}
}

// legacyAt returns the legacy member registered from addr at endpoint, or
// nil. Called with s.mu held.
func (s *Server) legacyAt(addr netip.Addr, endpoint string) *member {
	for _, m := range s.names {
		if !legacyFrom(m, addr) {
			continue
		}
		p := m.drv.(*legacyPeer)
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
	p, ok := m.drv.(*legacyPeer)
	return ok && p.addr == addr
}

// errNotYours is returned for a message in a name that the sender's
// address does not hold.
var errNotYours = errors.New("name not registered from this address")

// errEmpty is returned for a message whose text is empty or white space
// only: no message, as a blank line is none at the line door.
var errEmpty = errors.New("empty message")

// postAs posts text to the default room as name on behalf of a
// connectionless sender at from. With registered, name must be a legacy
// member registered from that address; otherwise (the UDP door) a name
// nobody holds may be used too, and is shown as name@udp (see
// udpMarker), which no member can hold. An empty text is not posted
// (errEmpty), but counts as a sign of life of the member that holds name.
func (s *Server) postAs(from netip.Addr, name, text string, registered bool) error {
	if err := proto.CheckName(name); err != nil {
		return err
	}
	if _, ok := s.banned(from, name, time.Now()); ok {
		s.stats.banned.Add(1)
		return errors.New("banned by an admin")
	}
	n := len(name) + 2 + len(text)
	if !registered {
		n += len(udpMarker) // at most: a sender that holds the name has none
	}
	if n > s.conf().Limits.MaxLineBytes {
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
	case m == nil:
		name += udpMarker
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
		m.lastIn.Store(time.Now().UnixNano()) // it posted: not lapsing
	}
	if strings.TrimSpace(text) == "" {
		return errEmpty
	}
	r.post(&proto.Event{Kind: proto.KindMsg, From: name, Text: text, Time: now()}, id, s.maxLag())
	s.stats.posted.Add(1)
	return nil
}

// udpMarker and httpMarker follow a name posted over the UDP door, or
// the HTTP door's POST /api/post, by a sender that does not hold it: no
// member's name has an '@' (see proto.CheckName), so such a post cannot
// pass for a member of any door.
const (
	udpMarker  = "@udp"
	httpMarker = "@http"
)

// legacyPeer is the driver of a member registered through the legacy
// door: a goroutine that delivers each event it is owed on a connection
// of its own to the member's endpoint, and waits for the session's
// deadline (its lapse: see member.readBy) in between.
type legacyPeer struct {
	addr  netip.Addr    // the address it registered from; set once
	wakeC chan struct{} // capacity 1: something may be ready, or the deadline moved

	mu       sync.Mutex
	endpoint string // host:port to dial; re-registering changes it

	// The driver's goroutine's.
	failures int // deliveries in a row that failed
	batch    []*event
	buf      []byte // the message being delivered
}

func (p *legacyPeer) wake(*member) {
	select {
	case p.wakeC <- struct{}{}:
	default:
	}
}

func (p *legacyPeer) stop(m *member) { p.wake(m) }

// run delivers what m is owed until it leaves, and what a flush promises
// it then.
func (p *legacyPeer) run(m *member) {
	defer m.recovered()
	timer := time.NewTimer(time.Until(m.readBy()))
	defer timer.Stop()
	for {
		select {
		case <-p.wakeC:
			p.send(m)
		case <-timer.C:
			if why, ok := m.expired(time.Now()); ok {
				m.kick(why)
			}
		case <-m.doneC():
			if m.why.flushes() {
				p.send(m)
			}
			return
		}
		timer.Reset(time.Until(m.readBy()))
	}
}

// send delivers m's events, one connection per message, in order, each
// encoded by proto.AppendLegacy: the kinds the tutorial protocol lacks
// (notices, errors, joins, parts) are left out. A delivery that fails
// after retries is lost for this member; after Limits.LegacyFailures in
// a row it is dropped as unreachable.
func (p *legacyPeer) send(m *member) {
	t := m.srv.conf().Timeouts
	stopping := func() bool { return m.isDone() && m.flushOver(time.Now()) }
	for {
		batch, _, ok := m.batch(&p.batch)
		if !ok {
			m.kick(bySlow)
			return
		}
		if len(batch) == 0 {
			return
		}
		for _, ev := range batch {
			m.srv.stats.out(ev.message(), 0) // taken to send, as for every member: sent or not
			e := ev.full()
			msg := proto.AppendLegacy(p.buf[:0], &e)
			if len(msg) == 0 || stopping() {
				continue
			}
			p.buf = msg
			p.mu.Lock()
			endpoint := p.endpoint
			p.mu.Unlock()
			if err := deliverLegacy(m.doneC(), stopping, endpoint, msg, t.Dial.D(), t.Retry.D()); err != nil {
				m.srv.stats.legacyFailed.Add(1)
				if isResource(err) {
					// The relay's own shortage (out of file descriptors,
					// buffers): not the member's failure.
					m.srv.warnf("legacy: delivery to %s at %s failed: %v (the relay's resources, not counted against %s)", m.name, endpoint, err, m.name)
					continue
				}
				p.failures++
				m.srv.warnf("legacy: delivery to %s at %s failed (%d in a row): %v", m.name, endpoint, p.failures, err)
				if p.failures >= m.srv.conf().Limits.LegacyFailures {
					m.kick(byUnreachable)
				}
				continue
			}
			p.failures = 0
			m.srv.stats.legacySent.Add(1)
			m.srv.stats.bytesOut.Add(int64(len(msg)))
			m.lastIn.Store(time.Now().UnixNano()) // it took a delivery: not lapsing
		}
		clear(batch)
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
