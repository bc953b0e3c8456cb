package proto

import (
	"errors"
	"math"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/jsonlite"
	"roomrelay/internal/sortlite"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Kind is the type of an event.
type Kind uint8

// The kinds of event, with their JSON "type" names.
const (
	KindMsg     Kind = iota + 1 // "msg": a message to a room
	KindAction                  // "action": /me
	KindPrivate                 // "private": /msg, to one member
	KindJoin                    // "join": From entered Room
	KindPart                    // "part": From left Room; Text may say why
	KindNotice                  // "notice": the relay speaking
	KindError                   // "error": the relay refusing something
)

var kindNames = [...]string{
	KindMsg: "msg", KindAction: "action", KindPrivate: "private", KindJoin: "join",
	KindPart: "part", KindNotice: "notice", KindError: "error",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind" + strconv.Itoa(int(k))
}

// ParseKind returns the kind of a JSON "type" name.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s && n != "" {
			return Kind(k), true
		}
	}
	return 0, false
}

// Event is what the relay sends a member. Room events (msg, action, join,
// part) carry the room and its sequence number; private messages, notices
// and errors carry neither. The welcome notice, which answers a hello or a
// /join, carries the room and its epoch (see [Point]).
//
// JSON layout, one object a line, empty fields left out:
//
//	{"type":"msg","room":"lobby","seq":7,"from":"alice","text":"hi","time":"2026-11-22T03:10:54.123Z"}
//	{"type":"notice","room":"lobby","epoch":"k3f9ab","text":"you are bob in lobby with 1 other (last event k3f9ab-7); /help lists the commands"}
type Event struct {
	Kind  Kind
	Room  string
	Seq   uint64
	Epoch string // the welcome's: the room's epoch
	From  string
	To    string // private messages
	Text  string
	Time  time.Time // UTC, milliseconds
}

// TimeLayout is the layout of the JSON "time" field.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendText appends the event's text-mode line, LF included.
func AppendText(dst []byte, e *Event) []byte {
	switch e.Kind {
	case KindMsg:
		dst = append(appendFrom(dst, e.From), e.Text...)
	case KindAction:
		dst = append(append(append(append(dst, "* "...), e.From...), ' '), e.Text...)
	case KindPrivate:
		dst = append(append(append(append(dst, "[private] "...), e.From...), ": "...), e.Text...)
	case KindJoin:
		dst = append(append(append(append(dst, "--- "...), e.From...), " joined "...), e.Room...)
	case KindPart:
		dst = append(append(append(append(dst, "--- "...), e.From...), " left "...), e.Room...)
		if e.Text != "" {
			dst = append(append(append(dst, " ("...), e.Text...), ')')
		}
	case KindError:
		dst = append(append(dst, "!!! "...), e.Text...)
	default:
		dst = append(append(dst, "--- "...), e.Text...)
	}
	return append(dst, '\n')
}

// AppendSaid appends the text-mode line of a message from from whose
// text is text, LF included: AppendText's for that [KindMsg] event,
// without making text a string.
func AppendSaid(dst []byte, from string, text []byte) []byte {
	return append(append(appendFrom(dst, from), text...), '\n')
}

// appendFrom appends what goes before a message's text in its text-mode
// line.
func appendFrom(dst []byte, from string) []byte {
	return append(append(dst, from...), ": "...)
}

// AppendJSON appends the event's JSON-mode line, LF included.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, e.Kind.String()...)
	dst = append(dst, '"')
	if e.Room != "" {
		dst = appendField(dst, "room", e.Room)
	}
	if e.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, e.Seq, 10)
	}
	if e.Epoch != "" {
		dst = appendField(dst, "epoch", e.Epoch)
	}
	if e.From != "" {
		dst = appendField(dst, "from", e.From)
	}
	if e.To != "" {
		dst = appendField(dst, "to", e.To)
	}
	if e.Text != "" {
		dst = appendField(dst, "text", e.Text)
	}
	if !e.Time.IsZero() {
		dst = append(dst, `,"time":"`...)
		dst = appendTime(dst, e.Time.UTC())
		dst = append(dst, '"')
	}
	return append(dst, "}\n"...)
}

// second is one second of time in TimeLayout, up to its fraction.
type second struct {
	unix int64
	text []byte
}

// lastSecond is the second appendTime formatted last: events come many a
// second, and only the milliseconds change.
var lastSecond atomic.Pointer[second]

// appendTime appends t, which is in UTC, in TimeLayout.
func appendTime(dst []byte, t time.Time) []byte {
	sec := lastSecond.Load()
	if sec == nil || sec.unix != t.Unix() {
		sec = &second{unix: t.Unix(), text: t.AppendFormat(nil, "2006-01-02T15:04:05")}
		lastSecond.Store(sec)
	}
	ms := t.Nanosecond() / 1e6
	return append(append(dst, sec.text...), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func appendField(dst []byte, key, val string) []byte {
	dst = append(append(append(dst, ',', '"'), key...), '"', ':')
	return AppendJSONString(dst, val)
}

const hex = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD; control characters, U+2028 and U+2029 are escaped. Unlike
// encoding/json it leaves <, > and & alone (the lines are not HTML), so
// an escaped string is at most twice as long as clean text.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	return append(append(dst, s[start:]...), '"')
}

// DecodeJSON parses one JSON-mode line as written by [AppendJSON].
func DecodeJSON(line []byte) (Event, error) {
	v, _, _, err := jsonlite.Parse(line)
	if err != nil {
		return Event{}, fmtlite.Errorf("decode event: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Event{}, errors.New("decode event: json: cannot unmarshal " + jsonKind(v) + " into Go value of type proto.jsonEvent")
	}
	var j struct{ Type, Room, Epoch, From, To, Text, Time string }
	var seq uint64
	for _, k := range sortlite.Keys(obj) { // the first bad key in order is the error
		x := obj[k]
		var s *string
		switch eventKey(k) {
		case "type":
			s = &j.Type
		case "room":
			s = &j.Room
		case "epoch":
			s = &j.Epoch
		case "from":
			s = &j.From
		case "to":
			s = &j.To
		case "text":
			s = &j.Text
		case "time":
			s = &j.Time
		case "seq":
			if x == nil {
				continue
			}
			n, ok := x.(jsonlite.Number)
			if ok {
				seq, err = strconv.ParseUint(string(n), 10, 64)
			}
			if !ok || err != nil {
				what := jsonKind(x)
				if ok {
					what += " " + string(n)
				}
				return Event{}, errors.New("decode event: json: cannot unmarshal " + what + " into Go struct field jsonEvent.seq of type uint64")
			}
			continue
		default:
			return Event{}, fmtlite.Errorf("decode event: json: unknown field %q", k)
		}
		switch x := x.(type) {
		case string:
			*s = x
		case nil:
		default:
			return Event{}, errors.New("decode event: json: cannot unmarshal " + jsonKind(x) + " into Go struct field jsonEvent." + k + " of type string")
		}
	}
	k, ok := ParseKind(j.Type)
	if !ok {
		return Event{}, fmtlite.Errorf("decode event: unknown type %q", j.Type)
	}
	e := Event{Kind: k, Room: j.Room, Seq: seq, Epoch: j.Epoch, From: j.From, To: j.To, Text: j.Text}
	if j.Time != "" {
		t, err := time.Parse(TimeLayout, j.Time)
		if err != nil {
			return Event{}, fmtlite.Errorf("decode event: %w", err)
		}
		e.Time = t
	}
	return e, nil
}

// eventKey is the field of a JSON-mode line that k names, matched as
// encoding/json does: exactly, or else without regard to case; k itself
// when it names none.
func eventKey(k string) string {
	const keys = "type room seq epoch from to text time"
	for f := range strings.FieldsSeq(keys) {
		if f == k {
			return f
		}
	}
	for f := range strings.FieldsSeq(keys) {
		if strings.EqualFold(f, k) {
			return f
		}
	}
	return k
}

// AppendStamp appends the time stamp that text mode puts before a line
// when a member asks for them (/time on): "[HH:MM] ", in t's location.
func AppendStamp(dst []byte, t time.Time) []byte {
	return t.AppendFormat(append(dst, '['), "15:04] ")
}

// Point is a place in a room's log, where a resume starts after: an epoch
// and a sequence number in it, written EPOCH-SEQ ("k3f9ab-42"). A room's
// sequence numbers start from 1 in each epoch, a token the relay draws
// when it makes the room, so a number from an earlier epoch (before a
// restart, or before the room was dropped and made anew) is told from one
// of this epoch. A bare number ("42") has no epoch: it is taken in the
// room's current epoch.
type Point struct {
	Epoch string // "" for the room's current epoch
	Seq   uint64
}

// MaxEpoch is the longest epoch, in bytes.
const MaxEpoch = 16

// String returns p as EPOCH-SEQ, or SEQ when it has no epoch.
func (p Point) String() string { return string(AppendPoint(nil, p)) }

// AppendPoint appends p as EPOCH-SEQ, or SEQ when it has no epoch.
func AppendPoint(dst []byte, p Point) []byte {
	if p.Epoch != "" {
		dst = append(append(dst, p.Epoch...), '-')
	}
	return strconv.AppendUint(dst, p.Seq, 10)
}

// CheckEpoch reports whether s is a valid epoch: 1 to MaxEpoch lowercase
// ASCII letters and digits.
func CheckEpoch(s string) error {
	if s == "" || len(s) > MaxEpoch {
		return fmtlite.Errorf("epoch %q is not 1 to %d letters and digits", s, MaxEpoch)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return fmtlite.Errorf("epoch %q holds %q: only a-z and 0-9", s, c)
		}
	}
	return nil
}

// ParsePoint parses EPOCH-SEQ, or a bare SEQ. The epoch is taken in lower
// case, as people may type it otherwise. SEQ is at most the largest
// uint64.
func ParsePoint(s string) (Point, error) {
	var p Point
	num := s
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		p.Epoch, num = strings.ToLower(s[:i]), s[i+1:]
		if err := CheckEpoch(p.Epoch); err != nil {
			return Point{}, fmtlite.Errorf("resume point %q: %w", s, err)
		}
	}
	if num == "" || num[0] < '0' || num[0] > '9' { // ParseUint takes no sign, but says "invalid syntax"
		return Point{}, fmtlite.Errorf("resume point %q: no sequence number (want SEQ or EPOCH-SEQ)", s)
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return Point{}, fmtlite.Errorf("resume point %q: sequence number past %d", s, uint64(math.MaxUint64))
	}
	if err != nil {
		return Point{}, fmtlite.Errorf("resume point %q: %q is not a sequence number (want SEQ or EPOCH-SEQ)", s, num)
	}
	p.Seq = n
	return p, nil
}

// jsonKind names the kind of a decoded JSON value as encoding/json's
// errors do.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case jsonlite.Number:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}
