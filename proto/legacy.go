package proto

import (
	"bytes"
	"errors"
	"net/netip"
	"roomrelay/internal/fmtlite"
	"strconv"
	"strings"
	"unicode"
)

// LegacyKind is the kind of a tutorial chat-room message sent to a server.
type LegacyKind uint8

// The kinds of message a tutorial client sends.
const (
	LegacyRegister LegacyKind = iota + 1 // connect_request|NAME|HOST|PORT
	LegacyPost                           // from:NAME|TEXT
)

func (k LegacyKind) String() string {
	switch k {
	case LegacyRegister:
		return "register"
	case LegacyPost:
		return "post"
	}
	return "legacykind" + strconv.Itoa(int(k))
}

// Legacy is one decoded message of the tutorial chat-room protocol. A
// registration sets Name, Host and Port; a post sets Name and Text.
//
// The tutorial chat-room protocol ("legacy") is spoken by the tutorials'
// messenger_server.py and messenger_client.py, and in its bare form by the
// P2P messenger.py. Every message travels on a TCP connection of its own:
// the sender connects, writes the message as UTF-8 and closes. There is no
// newline, length prefix, header or reply; the message ends when its
// connection closes. Three messages exist:
//
//	connect_request|NAME|HOST|PORT   to the server: register NAME, reached by dialling HOST:PORT
//	from:NAME|TEXT                   to the server: post TEXT to the room
//	NAME: TEXT                       from the server to every other member, on a connection it opens
//
// roomrelay's legacy door also delivers actions and private messages from
// its other doors' members (see [AppendLegacy]).
//
// A receiver strips leading and trailing whitespace of the whole payload
// before it looks at it (the tutorial's full_message.strip()). The P2P
// messenger sends the bare TEXT and prints what it receives as
// ('127.0.0.1', 47893): TEXT (see [AppendLegacyAddr]).
type Legacy struct {
	Kind LegacyKind
	Name string
	Host string
	Text string
	Port int
}

// ErrLegacyUnknown is wrapped by the error for a payload that is neither a
// registration nor a post.
var ErrLegacyUnknown = errors.New("unknown tutorial message")

// MaxLegacyHost is the longest host a registration may give.
const MaxLegacyHost = 253

const (
	legacyRegister = "connect_request"
	legacyPost     = "from:"
)

// ParseLegacy decodes the whole payload of one connection, as a tutorial
// server does, with the tutorial's faults fixed:
//
//   - The payload is decoded as a whole, so a character split across reads
//     survives. Invalid UTF-8 is not an error: the text is cleaned with
//     [Clean], which turns it, and every control character, into U+FFFD.
//   - Leading and trailing whitespace of the whole payload is stripped as
//     Python's str.strip does; spaces at the start of a text are kept
//     (from:bob|  hi posts "  hi").
//   - The formats are matched as prefixes, not anywhere in the payload.
//   - A registration is exactly connect_request|NAME|HOST|PORT: NAME,
//     trimmed by [LegacyName], passes [CheckName] (so it keeps its
//     spelling: "first client" stays "first client"), HOST is a host name
//     or IP address (letters, digits and . - _ : %, at most MaxLegacyHost
//     bytes) and PORT is a decimal number from 1 to 65535.
//   - In a post the name (trimmed the same way) ends at the first '|' and
//     the text is all the rest, so the text may hold '|'. The text may be
//     empty (the tutorial relays "name: ").
//
// A payload that starts with neither form gives an error wrapping
// [ErrLegacyUnknown]; a malformed registration or post gives an error
// saying what is wrong.
func ParseLegacy(payload []byte) (Legacy, error) {
	p := bytes.TrimFunc(payload, isPySpace)
	switch {
	case bytes.HasPrefix(p, []byte(legacyPost)):
		name, text, ok := bytes.Cut(p[len(legacyPost):], []byte{'|'})
		if !ok {
			return Legacy{}, errors.New("bad post: want from:name|text, found no '|'")
		}
		n := LegacyName(string(name))
		if err := CheckName(n); err != nil {
			return Legacy{}, fmtlite.Errorf("bad post: %w", err)
		}
		return Legacy{Kind: LegacyPost, Name: n, Text: Clean(text)}, nil
	case bytes.Equal(p, []byte(legacyRegister)) || bytes.HasPrefix(p, []byte(legacyRegister+"|")):
		return parseRegister(string(p))
	}
	const show = 32
	if len(p) > show {
		p = p[:show]
	}
	return Legacy{}, fmtlite.Errorf("%w (neither connect_request|... nor from:...): %q", ErrLegacyUnknown, Clean(p))
}

func parseRegister(s string) (Legacy, error) {
	f := strings.Split(s, "|")
	if len(f) != 4 {
		return Legacy{}, fmtlite.Errorf("bad connect_request: want connect_request|name|host|port, got %d fields", len(f))
	}
	name, host, port := LegacyName(f[1]), f[2], f[3]
	if err := CheckName(name); err != nil {
		return Legacy{}, fmtlite.Errorf("bad connect_request: %w", err)
	}
	if err := checkHost(host); err != nil {
		return Legacy{}, fmtlite.Errorf("bad connect_request: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] < '0' || port[0] > '9' {
		return Legacy{}, fmtlite.Errorf("bad connect_request: port %q is not a number from 1 to 65535", Clean([]byte(port)))
	}
	return Legacy{Kind: LegacyRegister, Name: name, Host: host, Port: n}, nil
}

// LegacyName returns a name as a tutorial client gave it, white space at
// either end trimmed as the tutorial's strip() trims a whole message; the
// spaces inside stay ("first client", as in the tutorial's transcript).
// The result still has to pass [CheckName].
func LegacyName(s string) string { return strings.TrimFunc(s, isPySpace) }

func checkHost(h string) error {
	switch {
	case h == "":
		return errors.New("empty host")
	case len(h) > MaxLegacyHost:
		return fmtlite.Errorf("host longer than %d characters", MaxLegacyHost)
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !alnum(c) && c != '.' && c != '-' && c != '_' && c != ':' && c != '%' {
			return fmtlite.Errorf("host %q: want a host name or IP address (not %q)", Clean([]byte(h)), rune(c))
		}
	}
	return nil
}

// LegacyText returns a whole payload as the tutorial programs print it:
// leading and trailing whitespace stripped as Python's str.strip does,
// then cleaned with [Clean].
func LegacyText(payload []byte) string {
	return Clean(bytes.TrimFunc(payload, isPySpace))
}

// isPySpace reports whether Python's str.strip removes r: Unicode white
// space, and the separators U+001C to U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || 0x1c <= r && r <= 0x1f
}

// AppendLegacy appends what the legacy door delivers to a member for e:
// its text-mode line without the line end. A message is "NAME: TEXT", as
// the tutorial's server delivers a post; an action is "* NAME TEXT" and a
// private message "[private] NAME: TEXT". Nothing is appended for any
// other kind: the tutorial protocol has no notices, errors, joins or parts.
func AppendLegacy(dst []byte, e *Event) []byte {
	switch e.Kind {
	case KindMsg, KindAction, KindPrivate:
		dst = AppendText(dst, e)
		return dst[:len(dst)-1]
	}
	return dst
}

// AppendLegacyRegister appends a client's registration,
// "connect_request|name|host|port".
func AppendLegacyRegister(dst []byte, name, host string, port int) []byte {
	dst = append(append(dst, legacyRegister+"|"...), name...)
	dst = append(append(append(dst, '|'), host...), '|')
	return strconv.AppendInt(dst, int64(port), 10)
}

// AppendLegacyPost appends a client's post, "from:name|text".
func AppendLegacyPost(dst []byte, name, text string) []byte {
	return append(append(append(append(dst, legacyPost...), name...), '|'), text...)
}

// AppendLegacyAddr appends an address as the tutorial programs print a
// sender: Python's repr of a socket address, ('127.0.0.1', 47893) for
// IPv4 (an IPv4-mapped IPv6 address included) and ('::1', 47893, 0, 0) for
// IPv6, the last field being a numeric zone or 0.
func AppendLegacyAddr(dst []byte, ap netip.AddrPort) []byte {
	ip := ap.Addr().Unmap()
	dst = append(dst, "('"...)
	dst = ip.WithZone("").AppendTo(dst)
	dst = append(dst, "', "...)
	dst = strconv.AppendUint(dst, uint64(ap.Port()), 10)
	if ip.Is6() {
		scope, _ := strconv.ParseUint(ip.Zone(), 10, 32)
		dst = append(dst, ", 0, "...)
		dst = strconv.AppendUint(dst, scope, 10)
	}
	return append(dst, ')')
}
