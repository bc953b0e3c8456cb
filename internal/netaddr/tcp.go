//go:build !minimal

package netaddr

import (
	"net"
	"net/netip"
)

// AddrPort is a's address (with its zone) and port: a.AddrPort().
func AddrPort(a *net.TCPAddr) netip.AddrPort { return a.AddrPort() }
