package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"roomrelay/internal/fmtlite"
	"strconv"
	"strings"
	"time"
)

// HTTP door (the browser page and scripts). The API's paths are in
// PROTOCOL.md; this file holds its wire shapes:
//
//	POST /api/join   name=alice&room=kitchen    -> {"token":"…","name":"alice","room":"kitchen","seq":41}
//	GET  /api/events?token=T                    -> text/event-stream of SSE events
//	POST /api/send   token=T&text=hello         -> 204
//	POST /api/post   name=nas&text=backup+done  -> 204
//	errors                                      -> {"error":"…"}
//
// An event of the stream is the line door's JSON object as its data, and,
// for a room event, the room's epoch and sequence number as its id
// (EPOCH-SEQ, see [Point]), which the browser sends back as Last-Event-ID
// when it reconnects:
//
//	id: k3f9ab-42
//	data: {"type":"msg","room":"lobby","seq":42,"from":"alice","text":"hi","time":"…"}
//
// A named event "caught-up" (data {"missed":N}) follows the replay of a
// stream's opening; lines starting with ":" are keep-alive comments.

// SSE is one server-sent event: its id (empty: none), its name (empty:
// "message") and its data.
type SSE struct {
	ID    string
	At    Point // the id when ID is empty and At has an epoch: written as EPOCH-SEQ, made by no allocation
	Event string
	Data  []byte
}

// AppendSSE appends ev in the text/event-stream format. Data is written
// as one "data:" line per line of it (a final LF is not a line); an id or
// name holding a line break or a NUL would end its field, so it is
// dropped.
func AppendSSE(dst []byte, ev *SSE) []byte {
	switch {
	case ev.ID != "":
		if !strings.ContainsAny(ev.ID, "\r\n\x00") {
			dst = append(append(append(dst, "id: "...), ev.ID...), '\n')
		}
	case ev.At.Epoch != "" && !strings.ContainsAny(ev.At.Epoch, "\r\n\x00"):
		dst = append(AppendPoint(append(dst, "id: "...), ev.At), '\n')
	}
	if ev.Event != "" && !strings.ContainsAny(ev.Event, "\r\n") {
		dst = append(append(append(dst, "event: "...), ev.Event...), '\n')
	}
	data := bytes.TrimSuffix(ev.Data, []byte("\n"))
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		dst = append(append(append(dst, "data: "...), line...), '\n')
		if !more {
			break
		}
		data = rest
	}
	return append(dst, '\n')
}

// AppendSSEComment appends a comment line (a keep-alive): browsers and
// proxies see traffic, scripts see no event.
func AppendSSEComment(dst []byte, text string) []byte {
	text = strings.NewReplacer("\r", " ", "\n", " ").Replace(text)
	return append(append(append(dst, ": "...), text...), "\n\n"...)
}

// AppendSSERetry appends the field that sets how long a browser waits
// before it reconnects a stream that ended.
func AppendSSERetry(dst []byte, d time.Duration) []byte {
	return append(strconv.AppendInt(append(dst, "retry: "...), d.Milliseconds(), 10), "\n\n"...)
}

// SSEReader reads server-sent events, as a browser's EventSource does
// (for tests and scripts): fields id, event and data, comments skipped,
// lines at most max bytes.
type SSEReader struct {
	br  *bufio.Reader
	max int
}

// NewSSEReader returns a reader of the events on r.
func NewSSEReader(r io.Reader, max int) *SSEReader {
	return &SSEReader{br: bufio.NewReaderSize(r, 4096), max: max}
}

// ErrSSELine is returned for a line of a stream longer than the reader's
// maximum.
var ErrSSELine = errors.New("event stream line too long")

// Read returns the next event that has data (as EventSource dispatches
// it), with its data's lines joined by LF.
func (r *SSEReader) Read() (SSE, error) {
	var ev SSE
	var data [][]byte
	for {
		line, err := r.line()
		if err != nil {
			return SSE{}, err
		}
		if len(line) == 0 {
			if data != nil {
				ev.Data = bytes.Join(data, []byte("\n"))
				return ev, nil
			}
			ev = SSE{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, val, _ := bytes.Cut(line, []byte(":"))
		val = bytes.TrimPrefix(val, []byte(" "))
		switch string(field) {
		case "id":
			if bytes.IndexByte(val, 0) < 0 {
				ev.ID = string(val)
			}
		case "event":
			ev.Event = string(val)
		case "data":
			data = append(data, bytes.Clone(val))
		}
	}
}

// line reads one line, without its end (LF, CRLF or CR before LF).
func (r *SSEReader) line() ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > r.max+2 {
			return nil, fmtlite.Errorf("%w (at most %d bytes)", ErrSSELine, r.max)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		case err != nil:
			return nil, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		return line, nil
	}
}

// JoinForm is what POST /api/join asks: a name, and perhaps a room and where
// to resume in it.
type JoinForm struct {
	Name     string
	Room     string // "" is the relay's default room
	Since    *Point // from last_event_id: resume after it
	Password string // the relay's password, when it has one
	Key      string // the room's key, when it has one
}

// ParseJoin reads the form of POST /api/join: name, and optional room,
// last_event_id (EPOCH-SEQ), password (the relay's) and key (the room's).
// The form is a url.Values (a map, so that package proto needs no net/url).
func ParseJoin(form map[string][]string) (JoinForm, error) {
	get := func(key string) string {
		if vs := form[key]; len(vs) > 0 {
			return strings.TrimSpace(vs[0])
		}
		return ""
	}
	j := JoinForm{Name: get("name"), Room: strings.TrimPrefix(get("room"), "#"), Password: get("password"), Key: get("key")}
	if len(j.Password) > MaxSecret || len(j.Key) > MaxSecret {
		return JoinForm{}, fmtlite.Errorf("a password or key over %d bytes", MaxSecret)
	}
	if err := CheckName(j.Name); err != nil {
		return JoinForm{}, err
	}
	if j.Room != "" {
		if err := CheckRoom(j.Room); err != nil {
			return JoinForm{}, err
		}
	}
	if id := get("last_event_id"); id != "" {
		p, err := ParsePoint(id)
		if err != nil {
			return JoinForm{}, fmtlite.Errorf("last_event_id: %w", err)
		}
		j.Since = &p
	}
	return j, nil
}

// Joined is the answer to POST /api/join: the member's token (for
// /api/events and /api/send), its name as written, its room, and the
// room's last sequence number when it entered.
type Joined struct {
	Token string `json:"token"`
	Name  string `json:"name"`
	Room  string `json:"room"`
	Seq   uint64 `json:"seq"`
}

// AppendJoined appends j as one JSON object.
func AppendJoined(dst []byte, j *Joined) []byte {
	dst = append(dst, `{"token":`...)
	dst = AppendJSONString(dst, j.Token)
	dst = appendField(dst, "name", j.Name)
	dst = appendField(dst, "room", j.Room)
	dst = strconv.AppendUint(append(dst, `,"seq":`...), j.Seq, 10)
	return append(dst, "}\n"...)
}

// AppendError appends an error answer of the HTTP API: {"error":"…"}.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, `{"error":`...)
	return append(AppendJSONString(dst, msg), "}\n"...)
}
