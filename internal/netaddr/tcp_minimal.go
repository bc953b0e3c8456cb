//go:build minimal

package netaddr

import (
	"net"
	"net/netip"
)

// AddrPort is a's address and port, as a.AddrPort() but for a zone: the
// minimal build's connections (listen.Conn) have none, and a zone's
// handle is what this package leaves out.
func AddrPort(a *net.TCPAddr) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip, uint16(a.Port))
}
