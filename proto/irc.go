package proto

import (
	"errors"
	"roomrelay/internal/fmtlite"
	"strings"
	"time"
	"unicode/utf8"
)

// # IRC
//
// The IRC door speaks the client side of IRC (RFC 1459, RFC 2812, and
// IRCv3's message tags for server-time). A message is one line:
//
//	[@tag=value;tag2 ][:prefix ]COMMAND[ param ...][ :trailing]\r\n
//
// at most MaxIRC bytes with its CRLF, not counting the tags. Rooms are
// channels (room "kitchen" is "#kitchen") and names are nicks; a name
// with spaces ("first client") is the nick first_client, which [Fold]
// takes for the same name (see [IRCName]).

// MaxIRC is the longest IRC message in bytes, CRLF included and tags
// (which have a budget of their own) not.
const MaxIRC = 512

// maxIRCParams is the most parameters a message has (RFC 2812).
const maxIRCParams = 15

// Host is the relay's name on IRC: its messages' prefix, and the host
// part of every member's nick!user@host.
const Host = "roomrelay"

// The numeric replies the IRC door sends.
const (
	RplWelcome          = "001"
	RplYourHost         = "002"
	RplCreated          = "003"
	RplMyInfo           = "004"
	RplISupport         = "005"
	RplUModeIs          = "221"
	RplLUserClient      = "251"
	RplLUserOp          = "252"
	RplLUserUnknown     = "253"
	RplLUserChannels    = "254"
	RplLUserMe          = "255"
	RplWhoisUser        = "311"
	RplEndOfWho         = "315"
	RplEndOfWhois       = "318"
	RplListStart        = "321"
	RplList             = "322"
	RplListEnd          = "323"
	RplChannelModeIs    = "324"
	RplNoTopic          = "331"
	RplTopic            = "332"
	RplWhoReply         = "352"
	RplNamReply         = "353"
	RplEndOfNames       = "366"
	RplEndOfBanList     = "368"
	RplMotd             = "372"
	RplMotdStart        = "375"
	RplEndOfMotd        = "376"
	RplYoureOper        = "381"
	ErrNoSuchNick       = "401"
	ErrNoSuchChannel    = "403"
	ErrCannotSend       = "404"
	ErrTooManyChans     = "405"
	ErrUnknown          = "421"
	ErrNoNickGiven      = "431"
	ErrBadNick          = "432"
	ErrNickInUse        = "433"
	ErrUserNotInChannel = "441"
	ErrNotOnChannel     = "442"
	ErrNotRegistered    = "451"
	ErrNeedMoreParam    = "461"
	ErrRegistered       = "462"
	ErrPasswdMismatch   = "464"
	ErrYoureBanned      = "465"
	ErrBadChannelKey    = "475"
	ErrNoPrivileges     = "481"
	ErrChanOpNeeded     = "482"
)

// IRC is one IRC message.
type IRC struct {
	Tags    []Tag  // IRCv3 message tags, in order
	Prefix  string // who sent it: a server, or nick!user@host; "" from a client
	Command string // a word ("PRIVMSG") or a three-digit numeric
	Params  []string
}

// Tag is one IRCv3 message tag; a tag without a value has Value "".
type Tag struct{ Key, Value string }

// ErrIRC is wrapped by every error parsing an IRC message.
var ErrIRC = errors.New("bad IRC message")

// ParseIRC parses one IRC message, without its line end. The command is
// returned in upper case.
func ParseIRC(line []byte) (IRC, error) {
	s := strings.TrimRight(string(line), "\r\n")
	var m IRC
	if strings.HasPrefix(s, "@") {
		tags, rest, _ := strings.Cut(s[1:], " ")
		for _, t := range strings.Split(tags, ";") {
			k, v, _ := strings.Cut(t, "=")
			if k == "" {
				continue // no tag
			}
			m.Tags = append(m.Tags, Tag{k, unescapeTag(v)})
		}
		s = strings.TrimLeft(rest, " ")
	}
	if strings.HasPrefix(s, ":") {
		m.Prefix, s, _ = strings.Cut(s[1:], " ")
		s = strings.TrimLeft(s, " ")
	}
	m.Command, s, _ = strings.Cut(s, " ")
	if m.Command == "" {
		return IRC{}, fmtlite.Errorf("%w: no command in %q", ErrIRC, Clean(line))
	}
	for i := 0; i < len(m.Command); i++ {
		if c := m.Command[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return IRC{}, fmtlite.Errorf("%w: command %q is not letters or digits", ErrIRC, Clean([]byte(m.Command)))
		}
	}
	m.Command = strings.ToUpper(m.Command)
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		if s[0] == ':' || len(m.Params) == maxIRCParams-1 {
			m.Params = append(m.Params, strings.TrimPrefix(s, ":"))
			break
		}
		var p string
		p, s, _ = strings.Cut(s, " ")
		m.Params = append(m.Params, p)
	}
	return m, nil
}

// Param returns the i-th parameter, or "" when there are fewer.
func (m *IRC) Param(i int) string {
	if i < len(m.Params) {
		return m.Params[i]
	}
	return ""
}

// AppendIRC appends m as one line, CRLF included. The last parameter is
// sent as trailing (after " :") when it is empty, holds a space or starts
// with ':'; a parameter before it should hold none of these. CR, LF and
// NUL, which would end or break the line, are sent as spaces. It does not
// split: see [AppendIRCText] for text that may be long.
func AppendIRC(dst []byte, m *IRC) []byte {
	if len(m.Tags) > 0 {
		dst = append(dst, '@')
		for i, t := range m.Tags {
			if i > 0 {
				dst = append(dst, ';')
			}
			dst = append(dst, t.Key...)
			if t.Value != "" {
				dst = appendTagValue(append(dst, '='), t.Value)
			}
		}
		dst = append(dst, ' ')
	}
	if m.Prefix != "" {
		dst = append(append(append(dst, ':'), m.Prefix...), ' ')
	}
	dst = append(dst, m.Command...)
	for i, p := range m.Params {
		dst = append(dst, ' ')
		if i == len(m.Params)-1 && (p == "" || p[0] == ':' || strings.ContainsAny(p, " \r\n\x00")) {
			dst = append(dst, ':')
		}
		dst = appendSafe(dst, p)
	}
	return append(dst, '\r', '\n')
}

// appendSafe appends s with CR, LF and NUL as spaces.
func appendSafe(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r', '\n', 0:
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendTagValue appends v escaped as an IRCv3 tag value: \ \: \s \r
// \n for a backslash, ';', a space, CR and LF. (By hand: a
// strings.Replacer held in a variable would be built at start-up in every
// build, its code about 10 KB of a mipsle binary.)
func appendTagValue(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case ';':
			dst = append(dst, '\\', ':')
		case ' ':
			dst = append(dst, '\\', 's')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\n':
			dst = append(dst, '\\', 'n')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func unescapeTag(v string) string {
	if strings.IndexByte(v, '\\') < 0 {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(v) {
			break // a lone backslash at the end is dropped
		}
		switch v[i] {
		case ':':
			b.WriteByte(';')
		case 's':
			b.WriteByte(' ')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// AppendIRCText appends one message per part of text: head is everything
// before the text (":nick!nick@roomrelay PRIVMSG #room :"), tail what
// ends each part before its CRLF ("" but for a CTCP action's "\x01"), and
// text is cut so that no message is longer than MaxIRC: after a space in
// the second half of a part, otherwise at a UTF-8 character boundary.
// Empty text makes one message.
func AppendIRCText(dst []byte, head, text, tail string) []byte {
	room := max(MaxIRC-len(head)-len(tail)-len("\r\n"), utf8.UTFMax)
	for first := true; first || text != ""; first = false {
		part := text
		if len(part) > room {
			n := room
			for n > 0 && !utf8.RuneStart(part[n]) {
				n--
			}
			if n == 0 {
				n = room // not UTF-8 at all: cut anywhere
			}
			if sp := strings.LastIndexByte(part[:n], ' '); sp >= n/2 {
				n = sp + 1 // between words, when that loses little
			}
			part = part[:n]
		}
		text = text[len(part):]
		dst = append(append(appendSafe(append(dst, head...), part), tail...), '\r', '\n')
	}
	return dst
}

// IRCName is how a member's name is written on IRC: a nick holds no
// spaces, so each space is '_' ("first client" is first_client). [Fold]
// takes '_' for a space, so the nick names the same member. The '@' of a
// name posted over UDP by a sender that does not hold it (nas@udp) is '|'
// (nas|udp): an IRC prefix is nick!user@host.
func IRCName(name string) string {
	if strings.IndexByte(name, ' ') < 0 && strings.IndexByte(name, '@') < 0 {
		return name
	}
	b := []byte(name)
	for i, c := range b {
		switch c {
		case ' ':
			b[i] = '_'
		case '@':
			b[i] = '|'
		}
	}
	return string(b)
}

// IRCUser is the nick!user@host prefix of a member's messages.
func IRCUser(name string) string {
	n := IRCName(name)
	return n + "!" + n + "@" + Host
}

// AppendIRCEvent appends e as IRC messages for a member whose nick is to:
// a room's message, action, join or part as the channel sees it, a
// private message as a PRIVMSG to to, and a notice or error from the
// relay as a NOTICE from Host to target (the member's channel or nick).
// Long text is split over several messages (see [AppendIRCText]).
func AppendIRCEvent(dst []byte, e *Event, target string) []byte {
	switch e.Kind {
	case KindMsg:
		return AppendIRCText(dst, ":"+IRCUser(e.From)+" PRIVMSG #"+e.Room+" :", e.Text, "")
	case KindAction:
		return AppendIRCText(dst, ":"+IRCUser(e.From)+" PRIVMSG #"+e.Room+" :\x01ACTION ", e.Text, "\x01")
	case KindPrivate:
		return AppendIRCText(dst, ":"+IRCUser(e.From)+" PRIVMSG "+IRCName(target)+" :", e.Text, "")
	case KindJoin:
		return AppendIRC(dst, &IRC{Prefix: IRCUser(e.From), Command: "JOIN", Params: []string{"#" + e.Room}})
	case KindPart:
		return AppendIRC(dst, &IRC{Prefix: IRCUser(e.From), Command: "PART", Params: []string{"#" + e.Room, e.Text}})
	}
	text := e.Text
	if e.Kind == KindError {
		text = "error: " + text
	}
	return AppendIRCText(dst, ":"+Host+" NOTICE "+IRCName(target)+" :", text, "")
}

// AppendIRCTime appends the server-time tag of t and the space after it:
// "@time=2026-11-22T03:10:54.123Z ".
func AppendIRCTime(dst []byte, t time.Time) []byte {
	return append(appendTime(append(dst, "@time="...), t.UTC()), ' ')
}

// StripIRC removes IRC's formatting codes from text a client sent: bold,
// colours (with their numbers), italics, underline, strike-through,
// monospace, reverse and reset. Other control characters are left for
// [Clean].
func StripIRC(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 }) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0x02, 0x0f, 0x11, 0x16, 0x1d, 0x1e, 0x1f:
		case 0x03: // colour: up to two digits, then perhaps ,up to two digits
			i += digits(s[i+1:])
			if i+2 < len(s) && s[i+1] == ',' && digits(s[i+2:]) > 0 {
				i += 1 + digits(s[i+2:])
			}
		case 0x04: // hex colour: six hex digits, then perhaps ,six more
			i += hexes(s[i+1:])
			if i+2 < len(s) && s[i+1] == ',' && hexes(s[i+2:]) > 0 {
				i += 1 + hexes(s[i+2:])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// digits is how many decimal digits, up to two, s starts with.
func digits(s string) int {
	n := 0
	for n < 2 && n < len(s) && '0' <= s[n] && s[n] <= '9' {
		n++
	}
	return n
}

// hexes is 6 when s starts with six hex digits, else 0.
func hexes(s string) int {
	if len(s) < 6 {
		return 0
	}
	for i := range 6 {
		if _, ok := fmtlite.HexDigit(s[i]); !ok {
			return 0
		}
	}
	return 6
}
