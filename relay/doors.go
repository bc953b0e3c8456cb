package relay

import (
	"context"
	"errors"
	"maps"
	"net"
	"os"
	"roomrelay/internal/errlite"
	"roomrelay/internal/fmtlite"
	"slices"
	"strings"
	"time"

	"roomrelay/internal/listen"
	"roomrelay/proto"
	"roomrelay/relay/config"
)

// door is one kind of listener: a value that owns its state, knows its
// address in the configuration, and serves what arrives there. A
// streamDoor serves accepted connections, a packetDoor datagrams.
type door interface {
	name() string               // as in relay.listen: "line", "legacy", "udp"
	addr(*config.Config) string // its address in cfg; "" is off
}

// streamDoor serves each accepted connection. serve runs on the accepting
// goroutine: it admits c (see admit.go), or refuses it, and hands it to a
// driver. It may hold the accepting goroutine up while the relay is full
// (the door then accepts nothing more), until stop, closed when the door
// closes.
type streamDoor interface {
	door
	serve(c net.Conn, stop <-chan struct{})
}

// packetDoor reads datagrams from pc until it is closed, then calls
// s.wg.Done.
type packetDoor interface {
	door
	packets(pc net.PacketConn)
}

// preparer is a door with something to ready before it listens, read
// from the configuration: a TLS door's certificate, the legacy door's
// registrations saved in the store. Start and Reload call
// prepare for each such door that is on; a door whose prepare fails does
// not open (at Start, nothing does). It returns a note for a reload's log
// line, or "".
type preparer interface {
	prepare(cfg *config.Config) (note string, err error)
}

// handshaker is a connection with a handshake of its own before any chat
// (a *tls.Conn: see tls.go). Its handshake reads from the client, so it
// is made by the goroutine that serves the connection (see handshake),
// never by an accepting goroutine.
type handshaker interface {
	HandshakeContext(ctx context.Context) error
}

// handshake makes c's handshake, if it has one, which has to be over by
// by, and reports whether it succeeded; it logs why not. The relay
// closing ends it at once.
func (s *Server) handshake(c net.Conn, door string, by time.Time) bool {
	hs, ok := c.(handshaker)
	if !ok {
		return true
	}
	c.SetDeadline(by)
	err := hs.HandshakeContext(quitContext{context.Background(), s.quit})
	c.SetDeadline(time.Time{})
	switch {
	case err == nil:
		return true
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.infof("%s door: %s: no TLS handshake within relay.timeouts.handshake (%v); closed", door, c.RemoteAddr(), s.conf().Timeouts.Handshake.D())
	case isClosed(s.quit):
	default:
		s.infof("%s door: %s: TLS handshake failed: %v", door, c.RemoteAddr(), err)
	}
	return false
}

// quitContext is a context done when the relay closes (quit).
type quitContext struct {
	context.Context
	quit chan struct{}
}

func (q quitContext) Done() <-chan struct{} { return q.quit }

func (q quitContext) Err() error {
	if isClosed(q.quit) {
		return context.Canceled
	}
	return nil
}

// optionalDoors adds the doors that a minimal build (-tags minimal) leaves
// out; their files append to it.
var optionalDoors []func(*Server) door

// newDoors returns the doors of this build, the line door first.
func (s *Server) newDoors() []door {
	ds := []door{lineDoor{s}}
	for _, d := range optionalDoors {
		ds = append(ds, d(s))
	}
	return ds
}

// bound is an open door: listening, or waiting for its address to become
// available.
type bound struct {
	addr  string // as configured
	ln    net.Listener
	pc    net.PacketConn
	close chan struct{} // closed to end the door (and a pending retry)
}

// Start binds every configured door and serves them in the background.
// When a door cannot listen, none does, and the error says so of every
// such door (a *BindError each, joined).
// A door whose address is not available yet (its interface is still down,
// or its host name does not resolve yet) is retried in the background with
// backoff while the rest runs. Any other failure, such as a port in use,
// is an error and nothing keeps listening.
func (s *Server) Start() error {
	cfg := s.conf()
	if n := fdLimit(); n > 0 {
		if w := fdWarning(n, cfg); w != "" {
			s.warnf("%s", w)
		}
	}
	if l, err := newLoop(s); err == nil {
		s.loop = l
	} else {
		s.debugf("line door: a goroutine pair per member (connDriver): %v", err)
	}
	for _, name := range config.DoorNames() {
		if addr := *cfg.Listen.Door(name); addr != "" && !slices.ContainsFunc(s.doors, func(d door) bool { return d.name() == name }) {
			s.warnf("%s door: not in this build (built with -tags minimal); relay.listen.%s is ignored", name, name)
		}
	}
	s.openStore()
	var errs, unready []error
	for _, d := range s.doors {
		addr := d.addr(s.conf())
		if addr == "" {
			s.infof("%s door: off (relay.listen.%s is empty)", d.name(), d.name())
			continue
		}
		if p, ok := d.(preparer); ok {
			if _, err := p.prepare(cfg); err != nil {
				if !slices.Contains(unready, err) { // doors sharing a certificate say it once
					unready = append(unready, err)
					errs = append(errs, fmtlite.Errorf("%s door: %w", d.name(), err))
				}
				continue
			}
		}
		if err := s.openDoor(d, addr); err != nil {
			errs = append(errs, err) // and the others are tried, to report each
		}
	}
	if len(errs) > 0 {
		s.closeDoors()
		if s.loop != nil {
			s.loop.close()
		}
		s.store.Close()
		return errors.Join(errs...)
	}
	s.wg.Add(2)
	go s.summarize()
	go s.reclaim()
	return nil
}

// openDoor binds d at addr and serves it, or, when addr is not available
// yet, keeps trying in the background.
func (s *Server) openDoor(d door, addr string) error {
	b := &bound{addr: addr, close: make(chan struct{})}
	err := s.bind(d, b)
	if err == nil {
		return nil
	}
	if !notYet(err) {
		return &BindError{Door: d.name(), Addr: addr, Err: err}
	}
	s.warnf("%s door: %s is not available yet (%v); retrying in the background", d.name(), addr, err)
	s.mu.Lock()
	s.open[d.name()] = b
	s.mu.Unlock()
	s.wg.Add(1)
	go s.retry(d, b)
	return nil
}

// retry binds b until it works or the door is closed.
func (s *Server) retry(d door, b *bound) {
	defer s.wg.Done()
	wait := time.Second
	for tries := 1; ; tries++ {
		t := time.NewTimer(wait)
		select {
		case <-b.close:
			t.Stop()
			return
		case <-t.C:
		}
		err := s.bind(d, b)
		if err == nil {
			s.infof("%s door: %s available after %d tries", d.name(), b.addr, tries)
			return
		}
		if !notYet(err) {
			s.errorf("%s door: %v; giving up on %s", d.name(), explain(err), b.addr)
			return
		}
		wait = min(2*wait, 30*time.Second)
		s.debugf("%s door: %s still not available (%v); next try in %v", d.name(), b.addr, err, wait)
	}
}

// bind listens on b.addr and starts serving, unless b has been closed or
// replaced meanwhile.
func (s *Server) bind(d door, b *bound) error {
	keepalive := s.conf().Timeouts.Keepalive.D()
	if keepalive == 0 {
		keepalive = -1 // off
	}
	pd, packets := d.(packetDoor)
	var err error
	if packets {
		b.pc, err = listen.UDP(b.addr)
	} else {
		b.ln, err = listen.TCP(b.addr, keepalive)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	if cur, ok := s.open[d.name()]; s.closing || ok && cur != b || isClosed(b.close) {
		s.mu.Unlock()
		b.closeSockets()
		return nil
	}
	s.open[d.name()] = b
	s.wg.Add(1)
	s.mu.Unlock()
	if packets {
		s.infof("%s door listening on %s", d.name(), b.pc.LocalAddr())
		go pd.packets(b.pc)
	} else {
		s.infof("%s door listening on %s", d.name(), b.ln.Addr())
		go s.accept(b, d.(streamDoor))
	}
	return nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (b *bound) closeSockets() {
	if b.ln != nil {
		b.ln.Close()
	}
	if b.pc != nil {
		b.pc.Close()
	}
}

// notYet reports whether a bind failed only because the address is not
// there yet: the interface is down or the name does not resolve.
func notYet(err error) bool {
	_, isDNS := errlite.As[*net.DNSError](err)
	return isDNS || addrNotAvailable(err)
}

// explain makes the commonest bind failure plain.
func explain(err error) error {
	if addrInUse(err) {
		return fmtlite.Errorf("%w (another program, or another roomrelay, listens there)", err)
	}
	return err
}

// BindError is a door that cannot listen at its address for a reason
// other than the address not being there yet, such as a port in use.
type BindError struct {
	Door string // "line", "legacy", "udp": its key is relay.listen.Door
	Addr string // as configured
	Err  error
}

func (e *BindError) Error() string {
	err := e.Err
	if op, ok := errlite.As[*net.OpError](err); ok {
		err = op.Err // the address is said once, below
	}
	return fmtlite.Sprintf("%s door: cannot listen on %s (relay.listen.%s): %v", e.Door, e.Addr, e.Door, explain(err))
}

func (e *BindError) Unwrap() error { return e.Err }

// Addr returns the bound address of a door ("line", "legacy", "udp"), or
// nil when it is off or not bound yet.
func (s *Server) Addr(door string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.open[door]
	switch {
	case b == nil:
		return nil
	case b.ln != nil:
		return b.ln.Addr()
	case b.pc != nil:
		return b.pc.LocalAddr()
	}
	return nil
}

// closeDoor closes one door, or all of them with name "".
func (s *Server) closeDoor(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, b := range s.open {
		if name == "" || n == name {
			close(b.close)
			b.closeSockets()
			delete(s.open, n)
		}
	}
}

func (s *Server) closeDoors() { s.closeDoor("") }

// accept serves one listener until it is closed.
func (s *Server) accept(b *bound, d streamDoor) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, then go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.warnf("%s door: accept: %v; retrying in %v", d.name(), err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.stats.accepted.Add(1)
		d.serve(c, b.close)
	}
}

// maxTLSRefusals bounds the refusals told at once on TLS doors, each a
// handshake on a goroutine of its own for up to a second.
const maxTLSRefusals = 16

// refuse tells c why the relay will not serve it (r, from admit), in the
// line protocol, and closes it.
func (s *Server) refuse(door string, c net.Conn, r refusal) {
	s.refuseIn(door, c, r, func(e *proto.Event) []byte { return proto.AppendText(nil, e) })
}

// refuseIn is refuse on a door with a wire format of its own, in which
// say writes the refusal.
func (s *Server) refuseIn(door string, c net.Conn, r refusal, say func(e *proto.Event) []byte) {
	s.stats.refused.Add(1)
	s.stats.refusals[r.kind].Add(1)
	why := r.why
	s.warnf("%s door: refused %s: %s", door, c.RemoteAddr(), why)
	tell := func() {
		c.SetDeadline(time.Now().Add(time.Second))
		c.Write(say(&proto.Event{Kind: proto.KindError, Text: "refused: " + why}))
		c.Close()
	}
	if _, ok := c.(handshaker); ok {
		// Its handshake comes first, and reads: not on the accepting
		// goroutine, but within the same second, and for at most
		// maxTLSRefusals at a time: past them (a flood) it is closed
		// untold, not handshaken.
		select {
		case s.refusing <- struct{}{}:
		default:
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.refusing }()
			tell()
		}()
		return
	}
	tell()
}

// Reload puts cfg, which must have passed validation, in force without
// dropping anyone: limits, timeouts, the default room and the log level
// apply at once (to new connections for max_line_bytes and keepalive, to
// new rooms for history); a door whose address changed is re-bound, and
// the UDP door is re-bound when udp_allow changed. It returns what it did
// and what applies only partly, for the log.
func (s *Server) Reload(cfg config.Config) []string {
	old := s.conf()
	s.setConf(cfg)
	s.level.Store(int32(parseLevel(cfg.LogLevel)))
	var notes []string
	for _, d := range s.doors {
		was, now := d.addr(old), d.addr(&cfg)
		if p, ok := d.(preparer); ok && now != "" {
			note, err := p.prepare(&cfg)
			if note != "" {
				notes = append(notes, note)
			}
			if err != nil {
				s.errorf("reload: %s door: %v", d.name(), err)
				if was == now {
					notes = append(notes, fmtlite.Sprintf("%s door keeps its certificate", d.name()))
				} else {
					notes = append(notes, fmtlite.Sprintf("%s door NOT re-bound: %v", d.name(), err))
				}
				continue
			}
		}
		if _, packets := d.(packetDoor); was == now && !(packets && !slices.Equal(old.UDPAllow, cfg.UDPAllow)) {
			continue
		}
		s.closeDoor(d.name())
		if now == "" {
			notes = append(notes, d.name()+" door closed")
			continue
		}
		if err := s.openDoor(d, now); err != nil {
			s.errorf("reload: %v", err)
			notes = append(notes, fmtlite.Sprintf("%s door NOT re-bound: %v", d.name(), err))
			continue
		}
		notes = append(notes, fmtlite.Sprintf("%s door re-bound at %s", d.name(), now))
	}
	s.mu.Lock()
	for _, m := range s.members() {
		m.drv.stop(m) // its deadlines may have moved
	}
	s.mu.Unlock()
	if old.Limits.History != cfg.Limits.History {
		notes = append(notes, "relay.limits.history applies to rooms created from now on")
	}
	if old.Limits.HistoryBytes != cfg.Limits.HistoryBytes {
		notes = append(notes, "relay.limits.history_bytes applies to rooms created from now on")
	}
	if old.Limits.MaxLineBytes != cfg.Limits.MaxLineBytes {
		notes = append(notes, "relay.limits.max_line_bytes applies to connections made from now on")
	}
	if old.Timeouts.LegacyLapse != cfg.Timeouts.LegacyLapse {
		notes = append(notes, "relay.timeouts.legacy_lapse applies to legacy members registered from now on, and to the others once their lapse under the old value is due")
	}
	if old.Timeouts.Keepalive != cfg.Timeouts.Keepalive {
		notes = append(notes, "relay.timeouts.keepalive applies to connections made from now on")
	}
	if old.Store != cfg.Store {
		notes = append(notes, "relay.store applies when the relay restarts")
	}
	if old.Password != cfg.Password || old.AdminPassword != cfg.AdminPassword || !maps.Equal(old.Rooms, s.conf().Rooms) {
		notes = append(notes, "passwords and rooms' settings apply to what members give and join from now on (who is in stays; what an admin set wins)")
	}
	if old.MemoryLimitMB != cfg.MemoryLimitMB {
		notes = append(notes, "relay.memory_limit_mb applied")
	}
	s.infof("config reloaded: %s", strings.Join(append([]string{"limits and timeouts in force"}, notes...), "; "))
	return notes
}
