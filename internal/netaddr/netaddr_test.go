package netaddr

import (
	"net"
	"net/netip"
	"testing"
)

// inputs are addresses and networks, good and bad, as people and
// programs write them, and strings one edit away from them.
func inputs() []string {
	base := []string{
		"", ".", ":", "::", ":::", "%", "%eth0", "::%eth0", "::%", "1", "1.2.3", "1.2.3.4", "1.2.3.4.5",
		"0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.02.3.4", "1..2.3", ".1.2.3", "1.2.3.",
		"1.2.3.4%eth0", "127.0.0.1", "192.168.0.0", "10.0.0.0", "::1", "::1%lo", "fe80::1%eth0", "fe80::1%",
		"2001:db8::", "2001:db8::1", "2001:DB8::Ab", "2001:db8:0:0:0:0:0:1", "2001:db8:0:0:0:0:0:0:1",
		"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::", "1::2::3",
		"12345::", "1:2:3:4:5:6:7", "::ffff:1.2.3.4", "::ffff:1.2.3.4%eth0", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
		"1:2:3:4:5:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::ffff:1.2.3", "::ffff:01.2.3.4", "::ffff:1a.2.3.4",
		"1:2:3:4:5:6::1.2.3.4", "g::", "::g", "1:", ":1", "1::", "[::1]", "0:0:0:0:0:0:0:0", "ffff::ffff:ffff",
		"999.0.0.1", "localhost", "1.2.3.4 ", " 1.2.3.4",
	}
	var out []string
	for _, s := range base {
		out = append(out, s)
		for _, bits := range []string{"/0", "/8", "/24", "/32", "/33", "/64", "/96", "/128", "/129", "/", "/08", "/-1", "/+8", "/1000", "/a", "/8/8"} {
			out = append(out, s+bits)
		}
		for i := 0; i < len(s); i++ { // one character dropped, or doubled
			out = append(out, s[:i]+s[i+1:], s[:i+1]+s[i:])
		}
	}
	return out
}

// TestParseAddrLikeNetip: ParseAddr takes what netip.ParseAddr takes,
// and the same address and zone.
func TestParseAddrLikeNetip(t *testing.T) {
	for _, s := range inputs() {
		want, err := netip.ParseAddr(s)
		ip, zone, ok := ParseAddr(s)
		if ok != (err == nil) {
			t.Errorf("ParseAddr(%q): ok %v; netip: %v", s, ok, err)
			continue
		}
		if ok && (ip.Zone() != "" || ip.WithZone(zone) != want) {
			t.Errorf("ParseAddr(%q) = %v, %q; netip: %v", s, ip, zone, want)
		}
	}
}

// TestParsePrefixLikeNetip: ParsePrefix takes what netip.ParsePrefix
// takes, and gives the same network.
func TestParsePrefixLikeNetip(t *testing.T) {
	for _, s := range inputs() {
		want, err := netip.ParsePrefix(s)
		p, ok := ParsePrefix(s)
		if ok != (err == nil) {
			t.Errorf("ParsePrefix(%q): ok %v; netip: %v", s, ok, err)
			continue
		}
		if ok && p != want {
			t.Errorf("ParsePrefix(%q) = %v; netip: %v", s, p, want)
		}
	}
}

// TestAddrPort: a TCP address's address and port, as its AddrPort gives
// them (but for a zone in the minimal build).
func TestAddrPort(t *testing.T) {
	for _, a := range []*net.TCPAddr{
		{IP: net.IPv4(192, 0, 2, 1), Port: 7777},
		{IP: net.IP{192, 0, 2, 1}, Port: 1},
		{IP: net.ParseIP("2001:db8::1"), Port: 65535},
		{},
	} {
		if got, want := AddrPort(a), a.AddrPort(); got != want {
			t.Errorf("AddrPort(%v) = %v, want %v", a, got, want)
		}
	}
}
