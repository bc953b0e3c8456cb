//go:build !minimal

package relay

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"roomrelay/internal/netaddr"
	"roomrelay/proto"
	"roomrelay/relay/config"
)

// udpSources bounds how many senders' rate limiters the UDP door keeps
// (see limiterTable).
const udpSources = 1024

func init() {
	optionalDoors = append(optionalDoors, func(s *Server) door {
		return udpDoor{s}
	})
}

// udpDoor takes datagrams "from:name|text" into the default room.
type udpDoor struct{ s *Server }

func (udpDoor) name() string                 { return "udp" }
func (udpDoor) addr(c *config.Config) string { return c.Listen.UDP }

// udpReader is what the UDP door keeps while it reads a socket.
type udpReader struct {
	srv   *Server
	pc    net.PacketConn
	allow []netip.Prefix

	// Reader only.
	limits *limiterTable[netip.Addr]
}

// packets reads datagrams from pc until it is closed.
func (u udpDoor) packets(pc net.PacketConn) {
	s := u.s
	defer s.wg.Done()
	d := &udpReader{srv: s, pc: pc, limits: newLimiterTable[netip.Addr](udpSources)}
	for _, n := range s.conf().UDPAllow {
		if p, ok := netaddr.ParsePrefix(n); ok {
			d.allow = append(d.allow, p.Masked())
		}
	}
	d.serve()
}

// serve reads datagrams until the socket is closed.
func (d *udpReader) serve() {
	max := d.srv.conf().Limits.MaxLineBytes
	buf := make([]byte, max+1) // one byte more shows a datagram was cut
	for {
		d.pc.SetReadDeadline(time.Now().Add(time.Hour))
		n, addr, err := d.pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // a deadline, or an ICMP error reported on the socket
		}
		ap, ok := netip.AddrFromSlice(addr.(*net.UDPAddr).IP)
		ip := ap.Unmap()
		switch {
		case !ok || !d.allowed(ip):
			d.drop("not in relay.udp_allow", addr)
		case n > max:
			d.drop("over relay.limits.max_line_bytes", addr)
		case !d.budget(ip, time.Now()):
			d.drop("over the rate limit", addr)
		default:
			d.take(ip, addr, buf[:n])
		}
	}
}

func (d *udpReader) take(ip netip.Addr, addr net.Addr, b []byte) {
	d.srv.stats.bytesIn.Add(int64(len(b)))
	msg, err := proto.ParseLegacy(b)
	if err == nil && msg.Kind != proto.LegacyPost {
		err = errors.New("only from:NAME|TEXT is taken over UDP")
	}
	if err == nil {
		err = d.srv.postAs(ip, msg.Name, msg.Text, false)
	}
	if err != nil {
		d.drop(err.Error(), addr)
	}
}

func (d *udpReader) allowed(ip netip.Addr) bool {
	for _, p := range d.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// budget reports whether a datagram from ip at t is within its sender's
// budget; a new sender while udpSources others are using theirs has none.
func (d *udpReader) budget(ip netip.Addr, t time.Time) bool {
	l := d.srv.conf().Limits
	b := d.limits.get(ip, t, l.Rate, l.Burst)
	return b != nil && b.allow(t, l.Rate, l.Burst)
}

// drop counts and logs a refused datagram, each kind at most once a
// second.
func (d *udpReader) drop(why string, from net.Addr) {
	d.srv.drop(&d.srv.stats.udpDropped, "udp datagram", from, why)
}
