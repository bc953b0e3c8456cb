package relay

import (
	"net"
	"net/netip"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/netaddr"
	"slices"
	"time"
)

// Admission: every connection holds a place among Limits.MaxClients and,
// once it may be read, a slot of its address among
// Limits.MaxClientsPerIP. A door either refuses a connection over a limit
// at once (admit: the line door, which can say why) or has it wait, unread,
// within a bound (admitWaiting and awaitSlot: the legacy door, whose
// one-message connections are slowed, not dropped, since its protocol has
// no reply).

// connInfo is what the relay keeps of an open connection.
type connInfo struct {
	m    *member // its member, once it has one
	slot bool    // it holds a slot of its address
}

// slotWait is a connection waiting for a slot of its address.
type slotWait struct {
	c    net.Conn
	ip   netip.Addr
	slot chan struct{} // closed by grantSlot
	at   time.Time     // when it got its slot; set by grantSlot
}

// ipOf is the address c connects from (IPv4 unmapped); none unless c is
// a TCP connection (net.TCPConn, listen.Conn, fdConn, or a TLS
// connection over one of them).
func ipOf(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return netaddr.AddrPort(a).Addr().Unmap()
	}
	return netip.Addr{}
}

// admit registers a new connection, with a slot of its address, or says
// why it is refused (the zero refusal: it is not).
func (s *Server) admit(c net.Conn) refusal {
	ip := ipOf(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.conf().Limits
	if why, ok := s.refusedBan(ip, time.Now()); ok {
		return refusal{why, refusedOther}
	}
	switch {
	case s.closing:
		return refusal{"relay shutting down", refusedShutdown}
	case len(s.conns) >= l.MaxClients:
		return refusal{fmtlite.Sprintf("relay full (%d clients)", l.MaxClients), refusedFull}
	case s.perIP[ip] >= l.MaxClientsPerIP:
		return refusal{fmtlite.Sprintf("too many connections from %s (%d)", ip, l.MaxClientsPerIP), refusedAddress}
	}
	s.conns[c] = connInfo{slot: true}
	s.perIP[ip]++
	return refusal{}
}

// admitWaiting registers a new connection without a slot of its address
// (see queueSlot): while the relay holds Limits.MaxClients connections it
// waits for one to end, and its door accepts nothing meanwhile, leaving
// later connections in the listener's backlog. Once the relay has been
// full for within, or stop is closed, or the relay is closing, it gives
// up and says why: c is not registered then.
func (s *Server) admitWaiting(c net.Conn, within time.Duration, stop <-chan struct{}) (why string, ok bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		switch {
		case s.closing:
			s.mu.Unlock()
			return "relay shutting down", false
		case len(s.conns) < s.conf().Limits.MaxClients:
			s.conns[c] = connInfo{}
			s.full = time.Time{}
			s.mu.Unlock()
			return "", true
		}
		now := time.Now()
		if s.full.IsZero() {
			s.full = now
		}
		left := s.full.Add(within).Sub(now)
		if left <= 0 {
			s.mu.Unlock()
			return "relay full (relay.limits.max_clients) for relay.timeouts.message", false
		}
		if s.freed == nil {
			s.freed = make(chan struct{})
		}
		freed := s.freed
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
			return "door closed", false
		}
	}
}

// queueSlot gives w's connection, registered by admitWaiting, a slot of
// its address, or a place in the queue for one, in the order of the
// calls. Called with mu held.
func (s *Server) queueSlot(w *slotWait) {
	if len(s.waiting[w.ip]) == 0 && s.perIP[w.ip] < s.conf().Limits.MaxClientsPerIP {
		s.grantSlot(w)
	} else {
		s.waiting[w.ip] = append(s.waiting[w.ip], w)
	}
}

// awaitSlot waits, reading nothing, until w's connection has a slot of
// its address, for at most within after accepted; otherwise it says why
// it gave up.
func (s *Server) awaitSlot(w *slotWait, accepted time.Time, within time.Duration) (why string, ok bool) {
	select {
	case <-w.slot:
		return "", true
	default:
	}
	timer := time.NewTimer(time.Until(accepted.Add(within)))
	defer timer.Stop()
	why = "waited relay.timeouts.message for a slot of its address (relay.limits.max_clients_per_ip)"
	select {
	case <-w.slot:
		return "", true
	case <-timer.C:
	case <-s.quit:
		why = "relay shutting down"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if isClosed(w.slot) {
		return "", true
	}
	s.unqueue(w)
	return why, false
}

// detach gives the loop c's socket alone (see fdConn), keeping what
// admission knows of c under the connection that replaces it.
func (s *Server) detach(c net.Conn) net.Conn {
	d := detach(c)
	if d != c {
		s.mu.Lock()
		if info, ok := s.conns[c]; ok {
			delete(s.conns, c)
			s.conns[d] = info
		}
		s.mu.Unlock()
	}
	return d
}

// release closes a connection and forgets it. Its slot goes to the first
// connection of its address waiting for one, and a door waiting for room
// is woken.
func (s *Server) release(c net.Conn) {
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.conns[c]
	if !ok {
		return
	}
	delete(s.conns, c)
	s.full = time.Time{} // the relay has room
	if s.freed != nil {
		close(s.freed)
		s.freed = nil
	}
	if !info.slot {
		return
	}
	ip := ipOf(c)
	s.perIP[ip]--
	if q := s.waiting[ip]; len(q) > 0 && s.perIP[ip] < s.conf().Limits.MaxClientsPerIP {
		s.grantSlot(q[0])
		s.unqueue(q[0])
	}
	if s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// grantSlot gives w's connection a slot of its address. Called with mu
// held.
func (s *Server) grantSlot(w *slotWait) {
	s.perIP[w.ip]++
	info := s.conns[w.c]
	info.slot = true
	s.conns[w.c] = info
	w.at = time.Now()
	close(w.slot)
}

// unqueue takes w out of the queue for its address's slots. Called with mu
// held.
func (s *Server) unqueue(w *slotWait) {
	q := s.waiting[w.ip]
	if i := slices.Index(q, w); i >= 0 {
		q = slices.Delete(q, i, i+1)
	}
	if len(q) == 0 {
		delete(s.waiting, w.ip)
		return
	}
	s.waiting[w.ip] = q
}

// allowed reports whether ip is in one of the networks of list.
func allowed(list []string, ip netip.Addr) bool {
	for _, n := range list {
		if p, ok := netaddr.ParsePrefix(n); ok && p.Masked().Contains(ip) {
			return true
		}
	}
	return false
}
