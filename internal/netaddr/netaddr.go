// Package netaddr reads IP addresses and networks as net/netip's
// ParseAddr and ParsePrefix do, for the minimal build's paths: netip's
// parsers (some 12 KB of a mipsle binary with their error texts) bring
// the making of a zone's handle, which this package leaves to its
// callers, giving the zone apart.
package netaddr

import (
	"net/netip"

	"roomrelay/internal/fmtlite"
)

// ParseAddr parses s as netip.ParseAddr does: an IPv4 address in
// dotted decimal ("192.0.2.1"), or an IPv6 address ("2001:db8::1",
// "::ffff:192.0.2.1"), perhaps with a zone ("fe80::1%eth0"). The zone is
// returned apart; ip has none.
func ParseAddr(s string) (ip netip.Addr, zone string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			var b [4]byte
			if !parse4(s, b[:]) {
				return netip.Addr{}, "", false
			}
			return netip.AddrFrom4(b), "", true
		case ':':
			return parse6(s)
		case '%':
			return netip.Addr{}, "", false
		}
	}
	return netip.Addr{}, "", false
}

// parse4 parses the four fields of an IPv4 address into b: each a
// decimal number up to 255 without leading zeros.
func parse4(s string, b []byte) bool {
	field, val, digits := 0, 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if digits == 1 && val == 0 {
				return false // a leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.':
			if digits == 0 || i == len(s)-1 || field == 3 {
				return false
			}
			b[field] = byte(val)
			field, val, digits = field+1, 0, 0
		default:
			return false
		}
	}
	if field < 3 || digits == 0 {
		return false
	}
	b[3] = byte(val)
	return true
}

// parse6 parses an IPv6 address, with a zone after '%' if any.
func parse6(s string) (netip.Addr, string, bool) {
	zone := ""
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			s, zone = s[:i], s[i+1:]
			if zone == "" {
				return netip.Addr{}, "", false
			}
			break
		}
	}
	var ip [16]byte
	ellipsis := -1 // where "::" is, in ip
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if s == "" {
			return netip.IPv6Unspecified(), zone, true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, 0
		for ; off < len(s); off++ {
			d, ok := fmtlite.HexDigit(s[off])
			if !ok {
				break
			}
			if off > 3 {
				return netip.Addr{}, "", false // more than 4 digits
			}
			acc = acc<<4 + int(d)
		}
		if off == 0 {
			return netip.Addr{}, "", false
		}
		if off < len(s) && s[off] == '.' { // an IPv4 address in the last 32 bits
			if ellipsis < 0 && i != 12 || i+4 > 16 || !parse4(s, ip[i:i+4]) {
				return netip.Addr{}, "", false
			}
			s = ""
			i += 4
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if s == "" {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, "", false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, "", false // a second "::"
			}
			ellipsis = i
			s = s[1:]
			if s == "" {
				break
			}
		}
	}
	if s != "" {
		return netip.Addr{}, "", false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, "", false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, "", false // "::" stands for no field
	}
	return netip.AddrFrom16(ip), zone, true
}

// ParsePrefix parses s as netip.ParsePrefix does: an address, '/' and
// the number of its leading bits that make the network ("10.0.0.0/8",
// "2001:db8::/32"), without a zone. The address is kept as given, not
// masked.
func ParsePrefix(s string) (netip.Prefix, bool) {
	slash := -1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			slash = i
			break
		}
	}
	if slash < 0 {
		return netip.Prefix{}, false
	}
	ip, zone, ok := ParseAddr(s[:slash])
	if !ok || zone != "" {
		return netip.Prefix{}, false
	}
	digits := s[slash+1:]
	if digits == "" || len(digits) > 3 || len(digits) > 1 && digits[0] == '0' {
		return netip.Prefix{}, false
	}
	bits := 0
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return netip.Prefix{}, false
		}
		bits = bits*10 + int(digits[i]-'0')
	}
	if bits > ip.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, bits), true
}
