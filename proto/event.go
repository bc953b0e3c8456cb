package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
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
// and errors carry neither.
//
// JSON layout, one object a line, empty fields left out:
//
//	{"type":"msg","room":"lobby","seq":7,"from":"alice","text":"hi","time":"2026-11-22T03:10:54.123Z"}
type Event struct {
	Kind Kind
	Room string
	Seq  uint64
	From string
	To   string // private messages
	Text string
	Time time.Time // UTC, milliseconds
}

// TimeLayout is the layout of the JSON "time" field.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendText appends the event's text-mode line, LF included.
func AppendText(dst []byte, e *Event) []byte {
	switch e.Kind {
	case KindMsg:
		dst = append(append(append(dst, e.From...), ": "...), e.Text...)
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

type jsonEvent struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	From string `json:"from"`
	To   string `json:"to"`
	Text string `json:"text"`
	Time string `json:"time"`
}

// DecodeJSON parses one JSON-mode line as written by [AppendJSON].
func DecodeJSON(line []byte) (Event, error) {
	var j jsonEvent
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	k, ok := ParseKind(j.Type)
	if !ok {
		return Event{}, fmt.Errorf("decode event: unknown type %q", j.Type)
	}
	e := Event{Kind: k, Room: j.Room, Seq: j.Seq, From: j.From, To: j.To, Text: j.Text}
	if j.Time != "" {
		t, err := time.Parse(TimeLayout, j.Time)
		if err != nil {
			return Event{}, fmt.Errorf("decode event: %w", err)
		}
		e.Time = t
	}
	return e, nil
}
