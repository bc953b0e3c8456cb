//go:build !minimal

package config

import "net"

// ports reports each TCP door (all but udp, which may share a TCP door's
// port) at the port of another where their hosts overlap: the same host,
// or one of them every address. Port 0 is a fresh port each time.
func (p *problems) ports(l *Listen) {
	every := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	doors := l.fields()
	for i, a := range doors {
		va := *a.ptr.(*string)
		ha, pa, err := net.SplitHostPort(va)
		for _, b := range doors[:i] {
			vb := *b.ptr.(*string)
			hb, pb, err2 := net.SplitHostPort(vb)
			if err == nil && err2 == nil && pa == pb && pa != "0" && a.key != "udp" && b.key != "udp" && (ha == hb || every(ha) || every(hb)) {
				p.bad("relay.listen."+a.key, "%s takes relay.listen.%s's port too (%s)", va, b.key, vb)
				break
			}
		}
	}
}
