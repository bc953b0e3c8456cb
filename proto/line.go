package proto

import (
	"bytes"
	"errors"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/sortlite"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"roomrelay/internal/jsonlite"
)

// Hello is the first line of a line-door session. A person sends just a
// name; a program may send a JSON object instead:
//
//	{"name":"thermo","mode":"json","room":"alerts","epoch":"k3f9ab","since":41,"replay":0}
//
// Mode is "text" (the default) or "json". Room is the room to enter (the
// relay's default room when empty). Since, when set, asks for every event of
// that room after sequence number Since (resume) of epoch Epoch (see
// [Point]); without Epoch, Since is taken in the room's current epoch.
// Replay, when set and Since is not, is how many past events to receive on
// entering (0: none); nil leaves it to the relay. Password is the relay's
// password, Key the key of Room, for a relay and a room that have them
// (a text-mode client sends /pass before its name, and /join ROOM KEY).
type Hello struct {
	Name     string  `json:"name"`
	Mode     string  `json:"mode,omitempty"`
	Room     string  `json:"room,omitempty"`
	Epoch    string  `json:"epoch,omitempty"`
	Since    *uint64 `json:"since,omitempty"`
	Replay   *int    `json:"replay,omitempty"`
	Password string  `json:"password,omitempty"`
	Key      string  `json:"key,omitempty"`
}

// Resume returns where the hello asks to resume, or nil.
func (h *Hello) Resume() *Point {
	if h.Since == nil {
		return nil
	}
	return &Point{Epoch: h.Epoch, Seq: *h.Since}
}

// JSON reports whether the hello asks for JSON mode.
func (h *Hello) JSON() bool { return h.Mode == "json" }

// helloKeys are the keys of a JSON hello, each with what it takes, for
// errors.
var helloKeys = []struct{ key, wants string }{
	{"name", "a string"}, {"mode", `"text" or "json"`}, {"room", "a string"}, {"epoch", "a string"},
	{"since", "a sequence number from 0 to 18446744073709551615"}, {"replay", "a number of events from 0"},
	{"password", "a string"}, {"key", "a string"},
}

// fill sets h from a decoded JSON object, key by key in order: the first
// unknown key (matched as encoding/json does, exactly or else without
// regard to case) or value of the wrong kind is the error. null leaves a
// field as it is (since and replay: unset).
func (h *Hello) fill(v any) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return errors.New("bad hello: json: cannot unmarshal " + jsonKind(v) + " into a hello")
	}
	for _, k := range sortlite.Keys(obj) {
		key, wants := "", ""
		for _, f := range helloKeys { // k exactly, else the first without regard to case
			if f.key == k || key == "" && strings.EqualFold(f.key, k) {
				key, wants = f.key, f.wants
			}
		}
		var s *string
		switch key {
		case "":
			return errors.New("bad hello: json: unknown field " + strconv.Quote(k))
		case "name":
			s = &h.Name
		case "mode":
			s = &h.Mode
		case "room":
			s = &h.Room
		case "epoch":
			s = &h.Epoch
		case "password":
			s = &h.Password
		case "key":
			s = &h.Key
		}
		x := obj[k]
		what := jsonKind(x)
		if n, ok := x.(jsonlite.Number); ok {
			what = "number " + string(n)
		}
		switch x := x.(type) {
		case string:
			if s != nil {
				*s = x
				continue
			}
			what = "string"
		case nil: // leaves a string as it is
			if key == "since" {
				h.Since = nil
			} else if key == "replay" {
				h.Replay = nil
			}
			continue
		case jsonlite.Number:
			if s != nil {
				what = "number"
				break
			}
			if key == "since" {
				if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
					h.Since = &u
					continue
				}
			} else if r, err := strconv.Atoi(string(x)); err == nil {
				h.Replay = &r
				continue
			}
		}
		return errors.New("bad hello: " + key + ": want " + wants + ", not " + what)
	}
	return nil
}

// MaxSecret is the longest secret (password or key) taken, in bytes.
const MaxSecret = 512

// ParsePass reads the line "/pass SECRET" that a text-mode client sends
// before its name to a relay with a password: ok reports whether the line
// is one, and secret is the rest of the line, its spaces around trimmed.
func ParsePass(line []byte) (secret string, ok bool) {
	cmd, rest, _ := strings.Cut(string(bytes.TrimSpace(line)), " ")
	if !strings.EqualFold(cmd, "/pass") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// ErrQuit is returned by ParseHello for /quit (or /exit) in place of a
// name: the client leaves before it has one.
var ErrQuit = errors.New("quit")

// ParseHello decodes the first line of a session and validates it.
func ParseHello(line []byte) (Hello, error) {
	line = bytes.TrimSpace(line)
	if bytes.EqualFold(line, []byte("/quit")) || bytes.EqualFold(line, []byte("/exit")) {
		return Hello{}, ErrQuit
	}
	var h Hello
	if len(line) > 0 && line[0] == '{' {
		v, end, dups, err := jsonlite.Parse(line)
		if err != nil {
			return Hello{}, fmtlite.Errorf("bad hello: %w", err)
		}
		if len(dups) > 0 {
			return Hello{}, fmtlite.Errorf("bad hello: key %q given twice", dups[0])
		}
		if err := h.fill(v); err != nil {
			return Hello{}, err
		}
		if len(bytes.TrimSpace(line[end:])) > 0 {
			return Hello{}, errors.New("bad hello: data after the object")
		}
	} else {
		h.Name = string(line)
	}
	if err := CheckName(h.Name); err != nil {
		return Hello{}, err
	}
	switch h.Mode {
	case "", "text", "json":
	default:
		return Hello{}, fmtlite.Errorf("bad hello: mode %q is neither \"text\" nor \"json\"", h.Mode)
	}
	if h.Room != "" {
		if err := CheckRoom(h.Room); err != nil {
			return Hello{}, err
		}
	}
	if h.Epoch != "" {
		if h.Since == nil {
			return Hello{}, errors.New("bad hello: epoch without since")
		}
		if err := CheckEpoch(h.Epoch); err != nil {
			return Hello{}, fmtlite.Errorf("bad hello: %w", err)
		}
	}
	if h.Replay != nil && *h.Replay < 0 {
		return Hello{}, errors.New("bad hello: replay is negative")
	}
	if len(h.Password) > MaxSecret || len(h.Key) > MaxSecret {
		return Hello{}, fmtlite.Errorf("bad hello: a password or key over %d bytes", MaxSecret)
	}
	return h, nil
}

// Op is what a line asks of the relay.
type Op uint8

// The operations. Say is a plain line; the others are the slash commands
// of the same name.
const (
	Say    Op = iota + 1 // text: a message to the room
	Me                   // /me ACTION
	Msg                  // /msg NAME TEXT, a space in NAME written '_'
	Join                 // /join ROOM [SINCE]
	Since                // /since SINCE: resume the current room after SINCE
	Part                 // /part [ROOM]: leave the room for the default room
	Who                  // /who
	Rooms                // /rooms
	Time                 // /time [on|off]: text-mode time stamps
	Help                 // /help
	Quit                 // /quit: disconnect
	Ping                 // /ping [TOKEN]: the relay answers "--- pong TOKEN"
	Topic                // /topic [TEXT|-]: show, or (an admin) set or clear, this room's topic
	Admin                // /admin SECRET: become an admin
	Kick                 // /kick NAME [REASON] (admin)
	Ban                  // /ban NAME|ADDRESS DURATION [REASON] (admin)
	Unban                // /unban NAME|ADDRESS (admin)
	Bans                 // /bans (admin)
	SetKey               // /key ROOM KEY|- (admin)
	Stats                // /stats: the relay's counters, one line of JSON (admins, or from relay.stats_allow)
	Pass                 // /pass SECRET, once the member has a name
)

// Request is one parsed line.
type Request struct {
	Op     Op
	Arg    string        // room for Join, Part and SetKey; name for Msg and Kick; "on" or "off" for Time; name or address for Ban and Unban
	Text   string        // for Say, Me, Msg and Topic; the reason for Kick and Ban
	Since  *Point        // for Since, and Join when it resumes
	Key    string        // the key for Join (see parseJoin) and SetKey ("" for SetKey: none); the secret for Admin and Pass
	Either bool          // Join: Key and Since are one word, the key or the resume point (see parseJoin)
	For    time.Duration // for Ban
	RawLen int           // bytes of text as received, before cleaning
}

// ErrUnknownCommand is wrapped by the error for a line starting with an
// unknown slash command.
var ErrUnknownCommand = errors.New("unknown command")

// Commands is the text of /help, one command a line.
var Commands = []string{
	"/join ROOM [KEY] [SINCE]  enter ROOM (created if new), with its KEY if it has one; SINCE (EPOCH-SEQ from the welcome, or SEQ) resumes after that event",
	"/since SINCE        replay this room's events after SINCE (EPOCH-SEQ or SEQ)",
	"/part               leave this room for the default room",
	"/who                list the members of this room",
	"/rooms              list the rooms",
	"/me ACTION          say an action: * you ACTION",
	"/msg NAME TEXT      send TEXT to NAME only (a space in NAME is written _)",
	"/time on|off        put [HH:MM] before messages (text mode)",
	"/ping [TOKEN]       the relay answers pong TOKEN",
	"/topic              show this room's topic",
	"/admin PASSWORD     become an admin (then /admin help lists the admin commands)",
	"/stats              the relay's counters, one line of JSON (from relay.stats_allow)",
	"/quit               disconnect (/exit too)",
	"/help               this list",
	"//text              send a line that starts with /",
}

// AdminCommands is the text of /admin help.
var AdminCommands = []string{
	"/kick NAME [REASON]            disconnect NAME (a space in NAME is written _)",
	"/ban NAME|ADDRESS TIME [REASON] refuse a name, an address or a network (CIDR) for TIME (such as 30m, 2h, 7d)",
	"/unban NAME|ADDRESS            lift a ban",
	"/bans                          list the bans in force",
	"/topic TEXT|-                  set (or, with -, clear) this room's topic until the relay restarts",
	"/key ROOM KEY|-                set (or, with -, remove) ROOM's key until the relay restarts",
	"/stats                         the relay's counters",
}

// MaxBan is the longest ban.
const MaxBan = 365 * 24 * time.Hour

// Parse turns one line of an established session into a request. Text is
// cleaned with [Clean].
func Parse(line []byte) (Request, error) {
	if len(line) == 0 || line[0] != '/' || len(line) > 1 && line[1] == '/' {
		if len(line) > 1 && line[0] == '/' {
			line = line[1:]
		}
		return Request{Op: Say, Text: Clean(line), RawLen: len(line)}, nil
	}
	cmd, rest, _ := strings.Cut(string(line[1:]), " ")
	rest = strings.TrimLeft(rest, " ")
	switch strings.ToLower(cmd) {
	case "me":
		if strings.TrimSpace(rest) == "" {
			return Request{}, errors.New("usage: /me ACTION: no action")
		}
		return Request{Op: Me, Text: Clean([]byte(rest)), RawLen: len(rest)}, nil
	case "msg":
		name, text, _ := strings.Cut(rest, " ")
		if err := CheckName(name); err != nil {
			return Request{}, fmtlite.Errorf("usage: /msg NAME TEXT: %w", err)
		}
		if text == "" {
			return Request{}, errors.New("usage: /msg NAME TEXT: no text")
		}
		return Request{Op: Msg, Arg: name, Text: Clean([]byte(text)), RawLen: len(text)}, nil
	case "join":
		return parseJoin(rest)
	case "since":
		p, err := ParsePoint(strings.TrimSpace(rest))
		if err != nil {
			return Request{}, fmtlite.Errorf("usage: /since SINCE (EPOCH-SEQ or SEQ): %w", err)
		}
		return Request{Op: Since, Since: &p}, nil
	case "part":
		room := strings.TrimPrefix(strings.TrimSpace(rest), "#")
		if room != "" {
			if err := CheckRoom(room); err != nil {
				return Request{}, fmtlite.Errorf("usage: /part [ROOM]: %w", err)
			}
		}
		return Request{Op: Part, Arg: room}, nil
	case "time":
		switch arg := strings.ToLower(strings.TrimSpace(rest)); arg {
		case "", "on", "off":
			return Request{Op: Time, Arg: arg}, nil
		}
		return Request{}, errors.New("usage: /time on|off")
	case "ping":
		return Request{Op: Ping, Text: Clean([]byte(rest))}, nil
	case "who":
		return Request{Op: Who}, nil
	case "stats":
		return Request{Op: Stats}, nil
	case "rooms", "list":
		return Request{Op: Rooms}, nil
	case "help", "?":
		return Request{Op: Help}, nil
	case "quit", "exit":
		return Request{Op: Quit}, nil
	case "topic":
		return Request{Op: Topic, Text: Clean([]byte(strings.TrimSpace(rest)))}, nil
	case "pass":
		return Request{Op: Pass, Key: strings.TrimSpace(rest)}, nil
	case "admin":
		return Request{Op: Admin, Key: strings.TrimSpace(rest)}, nil
	case "kick":
		name, why, _ := strings.Cut(rest, " ")
		if err := CheckName(name); err != nil {
			return Request{}, fmtlite.Errorf("usage: /kick NAME [REASON]: %w", err)
		}
		return Request{Op: Kick, Arg: name, Text: Clean([]byte(strings.TrimSpace(why)))}, nil
	case "ban":
		return parseBan(rest)
	case "unban":
		who := strings.TrimSpace(rest)
		if who == "" {
			return Request{}, errors.New("usage: /unban NAME|ADDRESS")
		}
		return Request{Op: Unban, Arg: Clean([]byte(who))}, nil
	case "bans":
		return Request{Op: Bans}, nil
	case "key":
		words := strings.Fields(rest)
		if len(words) != 2 {
			return Request{}, errors.New("usage: /key ROOM KEY|- (a key is one word)")
		}
		room := strings.TrimPrefix(words[0], "#")
		if err := CheckRoom(room); err != nil {
			return Request{}, fmtlite.Errorf("usage: /key ROOM KEY|-: %w", err)
		}
		r := Request{Op: SetKey, Arg: room, Key: words[1]}
		if r.Key == "-" {
			r.Key = ""
		}
		return r, nil
	}
	return Request{}, fmtlite.Errorf("%w /%s (try /help)", ErrUnknownCommand, Clean([]byte(cmd)))
}

// parseJoin parses the arguments of /join: ROOM, then perhaps its key,
// then perhaps where to resume:
//
//	/join ROOM
//	/join ROOM WORD        WORD is in Key; and in Since too when it is a resume point; Either is set
//	/join ROOM KEY SINCE
//
// The relay takes a lone WORD for the key of a room that has one, and
// for a resume point (Since) in a room that has none (see PROTOCOL.md),
// so the old /join ROOM SINCE still works and a key may be any word.
func parseJoin(rest string) (Request, error) {
	const usage = "usage: /join ROOM [KEY] [SINCE]"
	words := strings.Fields(rest)
	if len(words) == 0 {
		return Request{}, fmtlite.Errorf("%s: %w: empty room name", usage, ErrBadName)
	}
	room := strings.TrimPrefix(words[0], "#")
	if err := CheckRoom(room); err != nil {
		return Request{}, fmtlite.Errorf("%s: %w", usage, err)
	}
	r := Request{Op: Join, Arg: room}
	switch len(words) {
	case 1:
		return r, nil
	case 2:
		r.Key, r.Either = words[1], true
		if p, err := ParsePoint(words[1]); err == nil {
			r.Since = &p
		}
		return r, nil
	case 3:
		p, err := ParsePoint(words[2])
		if err != nil {
			return Request{}, fmtlite.Errorf("%s: %w", usage, err)
		}
		r.Key, r.Since = words[1], &p
		return r, nil
	}
	return Request{}, fmtlite.Errorf("%s: room names have no spaces, nor keys", usage)
}

// parseBan parses the arguments of /ban: who, for how long, why.
func parseBan(rest string) (Request, error) {
	const usage = "usage: /ban NAME|ADDRESS TIME [REASON]"
	words := strings.SplitN(strings.TrimSpace(rest), " ", 3)
	if len(words) < 2 || words[0] == "" {
		return Request{}, errors.New(usage)
	}
	d, err := parseBanTime(words[1])
	if err != nil {
		return Request{}, fmtlite.Errorf("%s: %w", usage, err)
	}
	r := Request{Op: Ban, Arg: Clean([]byte(words[0])), For: d}
	if len(words) == 3 {
		r.Text = Clean([]byte(strings.TrimSpace(words[2])))
	}
	return r, nil
}

// parseBanTime reads a ban's time: a Go duration ("90m", "2h30m") or a
// number of days ("7d"), more than 0 and at most MaxBan.
func parseBanTime(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n uint64
		n, err = strconv.ParseUint(days, 10, 16)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 || d > MaxBan {
		return 0, fmtlite.Errorf("time %q is not from 1s to %dd (such as 30m, 2h, 7d)", s, MaxBan/(24*time.Hour))
	}
	return d, nil
}

// IsClean reports whether b is safe to show as it is: Clean would return
// its text unchanged.
func IsClean(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if unsafeRune(r, n) {
			return false
		}
		i += n
	}
	return true
}

// Clean makes received text safe to show on a terminal: invalid UTF-8
// becomes U+FFFD, a tab becomes a space, and every other control character
// (C0, DEL, C1, which start terminal escape sequences) and the Unicode
// bidirectional overrides become U+FFFD.
func Clean(b []byte) string {
	if IsClean(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		i += n
		switch {
		case r == '\t':
			sb.WriteByte(' ')
		case r < 0x20 || r == 0x7f || unsafeRune(r, n):
			sb.WriteRune(utf8.RuneError)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

func unsafeRune(r rune, n int) bool {
	return r == utf8.RuneError && n == 1 || // invalid UTF-8
		0x80 <= r && r < 0xa0 || // C1 controls
		0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069 // bidi overrides
}
