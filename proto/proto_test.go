package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestLineReader(t *testing.T) {
	in := "one\r\ntwo\n" + strings.Repeat("x", 20) + "\nthree\n\nlast"
	for _, r := range map[string]io.Reader{
		"whole":   strings.NewReader(in),
		"onebyte": iotest.OneByteReader(strings.NewReader(in)),
	} {
		lr := NewLineReader(r, 10)
		var got []string
		for {
			l, err := lr.ReadLine()
			if err == io.EOF {
				break
			}
			if err == ErrLineTooLong {
				got = append(got, "<too long>")
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(l))
		}
		want := []string{"one", "two", "<too long>", "three", "", "last"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lines (-want +got):\n%s", diff)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Request
		err  string
	}{
		{line: "hello", want: Request{Op: Say, Text: "hello", RawLen: 5}},
		{line: "", want: Request{Op: Say}},
		{line: "//etc", want: Request{Op: Say, Text: "/etc", RawLen: 4}},
		{line: "/me waves", want: Request{Op: Me, Text: "waves", RawLen: 5}},
		{line: "/msg bob hi there", want: Request{Op: Msg, Arg: "bob", Text: "hi there", RawLen: 8}},
		{line: "/msg bob", err: "usage: /msg NAME TEXT: no text"},
		// A space in a name is written '_' in a command; Fold makes them one.
		{line: "/msg first_client hi", want: Request{Op: Msg, Arg: "first_client", Text: "hi", RawLen: 2}},
		{line: "/msg 山田 こんにちは", want: Request{Op: Msg, Arg: "山田", Text: "こんにちは", RawLen: 15}},
		{line: "/msg b!ob hi", err: "usage: /msg NAME TEXT: invalid name: name may hold only letters, digits, spaces, _ - and . (not '!')"},
		{line: "/join 台所", want: Request{Op: Join, Arg: "台所"}},
		{line: "/join #Kitchen", want: Request{Op: Join, Arg: "Kitchen"}},
		{line: "/join kitchen k3f9ab-42", want: Request{Op: Join, Arg: "kitchen", Either: true, Key: "k3f9ab-42", Since: &Point{"k3f9ab", 42}}},
		{line: "/join kitchen 42", want: Request{Op: Join, Arg: "kitchen", Either: true, Key: "42", Since: &Point{Seq: 42}}},
		{line: "/join kitchen opensesame", want: Request{Op: Join, Arg: "kitchen", Either: true, Key: "opensesame"}},
		{line: "/join kitchen 4x2", want: Request{Op: Join, Arg: "kitchen", Either: true, Key: "4x2"}},
		{line: "/join kitchen pâté k3f9ab-42", want: Request{Op: Join, Arg: "kitchen", Key: "pâté", Since: &Point{"k3f9ab", 42}}},
		{line: "/join kitchen 1234 7", want: Request{Op: Join, Arg: "kitchen", Key: "1234", Since: &Point{Seq: 7}}},
		{line: "/join the big room", err: `usage: /join ROOM [KEY] [SINCE]: resume point "room": no sequence number (want SEQ or EPOCH-SEQ)`},
		{line: "/join a b c d", err: `usage: /join ROOM [KEY] [SINCE]: room names have no spaces, nor keys`},
		{line: "/join kitchen key k3f9ab-", err: `usage: /join ROOM [KEY] [SINCE]: resume point "k3f9ab-": no sequence number (want SEQ or EPOCH-SEQ)`},
		{line: "/join", err: "usage: /join ROOM [KEY] [SINCE]: invalid name: empty room name"},
		{line: "/admin  s3cret word ", want: Request{Op: Admin, Key: "s3cret word"}},
		{line: "/kick first_client spamming", want: Request{Op: Kick, Arg: "first_client", Text: "spamming"}},
		{line: "/ban 192.168.1.0/24 2h noisy", want: Request{Op: Ban, Arg: "192.168.1.0/24", For: 2 * time.Hour, Text: "noisy"}},
		{line: "/ban bob 7d", want: Request{Op: Ban, Arg: "bob", For: 7 * 24 * time.Hour}},
		{line: "/ban bob forever", err: `usage: /ban NAME|ADDRESS TIME [REASON]: time "forever" is not from 1s to 365d (such as 30m, 2h, 7d)`},
		{line: "/ban bob", err: `usage: /ban NAME|ADDRESS TIME [REASON]`},
		{line: "/unban bob", want: Request{Op: Unban, Arg: "bob"}},
		{line: "/key #kitchen -", want: Request{Op: SetKey, Arg: "kitchen"}},
		{line: "/key kitchen new one", err: "usage: /key ROOM KEY|- (a key is one word)"},
		{line: "/topic  soup at 7 ", want: Request{Op: Topic, Text: "soup at 7"}},
		{line: "/since 7", want: Request{Op: Since, Since: &Point{Seq: 7}}},
		{line: "/since K3F9AB-7", want: Request{Op: Since, Since: &Point{"k3f9ab", 7}}},
		{line: "/since 18446744073709551615", want: Request{Op: Since, Since: &Point{Seq: 1<<64 - 1}}},
		{line: "/since 18446744073709551616", err: `usage: /since SINCE (EPOCH-SEQ or SEQ): resume point "18446744073709551616": sequence number past 18446744073709551615`},
		{line: "/since", err: `usage: /since SINCE (EPOCH-SEQ or SEQ): resume point "": no sequence number (want SEQ or EPOCH-SEQ)`},
		{line: "/since a-b-7", err: `usage: /since SINCE (EPOCH-SEQ or SEQ): resume point "a-b-7": epoch "a-b" holds '-': only a-z and 0-9`},
		{line: "/part", want: Request{Op: Part}},
		{line: "/part #kitchen", want: Request{Op: Part, Arg: "kitchen"}},
		{line: "/time", want: Request{Op: Time}},
		{line: "/time ON", want: Request{Op: Time, Arg: "on"}},
		{line: "/time off", want: Request{Op: Time, Arg: "off"}},
		{line: "/time later", err: "usage: /time on|off"},
		{line: "/who", want: Request{Op: Who}},
		{line: "/rooms", want: Request{Op: Rooms}},
		{line: "/help", want: Request{Op: Help}},
		{line: "/quit", want: Request{Op: Quit}},
		{line: "/exit", want: Request{Op: Quit}},
		{line: "/ping abc", want: Request{Op: Ping, Text: "abc"}},
		{line: "/frob", err: "unknown command /frob (try /help)"},
	} {
		got, err := Parse([]byte(tc.line))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Parse(%q) error = %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.line, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tc.line, diff)
		}
	}
}

func TestParsePass(t *testing.T) {
	for line, want := range map[string]struct {
		secret string
		ok     bool
	}{
		"/pass hunter2":         {"hunter2", true},
		" /PASS  two words  \r": {"two words", true},
		"/pass":                 {"", true},
		"/password x":           {"", false},
		"alice":                 {"", false},
	} {
		secret, ok := ParsePass([]byte(line))
		if secret != want.secret || ok != want.ok {
			t.Errorf("ParsePass(%q) = %q, %v; want %q, %v", line, secret, ok, want.secret, want.ok)
		}
	}
}

func TestParseHello(t *testing.T) {
	zero, five, most := 0, uint64(5), uint64(1<<64-1)
	for _, tc := range []struct {
		line string
		want Hello
		err  string
	}{
		{line: " alice ", want: Hello{Name: "alice"}},
		{line: `{"name":"bot","mode":"json","room":"alerts","replay":0}`, want: Hello{Name: "bot", Mode: "json", Room: "alerts", Replay: &zero}},
		{line: `{"name":"bot","since":5}`, want: Hello{Name: "bot", Since: &five}},
		{line: `{"name":"bot","epoch":"k3f9ab","since":5}`, want: Hello{Name: "bot", Epoch: "k3f9ab", Since: &five}},
		{line: `{"name":"bot","since":18446744073709551615}`, want: Hello{Name: "bot", Since: &most}},
		{line: `{"name":"bot","since":18446744073709551616}`, err: "bad hello: since: want a sequence number from 0 to 18446744073709551615, not number 18446744073709551616"},
		{line: `{"name":"bot","since":-1}`, err: "bad hello: since: want a sequence number from 0 to 18446744073709551615, not number -1"},
		{line: `{"name":"bot","replay":"all"}`, err: "bad hello: replay: want a number of events from 0, not string"},
		{line: `{"name":"bot","name":"alice"}`, err: `bad hello: key "name" given twice`},
		{line: `{"name":"bot","epoch":"k3f9ab"}`, err: "bad hello: epoch without since"},
		{line: `{"name":"bot","epoch":"K3-9","since":5}`, err: `bad hello: epoch "K3-9" holds 'K': only a-z and 0-9`},
		{line: `{"name":"bot","colour":"red"}`, err: `bad hello: json: unknown field "colour"`},
		{line: `{"name":"bot","mode":"xml"}`, err: `bad hello: mode "xml" is neither "text" nor "json"`},
		{line: `{"name":"bot"} x`, err: "bad hello: data after the object"},
		{line: "first client", want: Hello{Name: "first client"}},
		{line: "\u3000élodie\u3000", want: Hello{Name: "élodie"}},
		{line: `{"name":"山田","room":"台所"}`, want: Hello{Name: "山田", Room: "台所"}},
		{line: "a  b", err: "invalid name: name has two spaces in a row"},
		{line: "a!b", err: "invalid name: name may hold only letters, digits, spaces, _ - and . (not '!')"},
		{line: `{"name":" bot"}`, err: "invalid name: name starts with a space"},
		{line: `{"name":"bot","room":"big kitchen"}`, err: "invalid name: room names have no spaces"},
		{line: `{"name":"bot","password":"p w","room":"kitchen","key":"k"}`, want: Hello{Name: "bot", Password: "p w", Room: "kitchen", Key: "k"}},
		{line: `{"name":"bot","password":1}`, err: "bad hello: password: want a string, not number"},
		{line: `{"name":"bot","key":"a","key":"b"}`, err: `bad hello: key "key" given twice`},
	} {
		got, err := ParseHello([]byte(tc.line))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseHello(%q) error = %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHello(%q): %v", tc.line, err)
		} else if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseHello(%q) (-want +got):\n%s", tc.line, diff)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":          "plain text",
		"tab\there":           "tab here",
		"esc\x1b[2Jcleared":   "esc\uFFFD[2Jcleared",
		"bell\a del\x7f":      "bell\uFFFD del\uFFFD",
		"c1 \u009b31m":        "c1 \uFFFD31m",
		"bad \xff\xfe utf8":   "bad \uFFFD\uFFFD utf8",
		"bidi \u202eevil":     "bidi \uFFFDevil",
		"zoë 日本 😀":            "zoë 日本 😀",
		"cr\rlf\nnul\x00done": "cr\uFFFDlf\uFFFDnul\uFFFDdone",
	} {
		if got := Clean([]byte(in)); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// sampleEvents are the events written to testdata/events.golden.
var sampleEvents = []Event{
	{Kind: KindMsg, Room: "lobby", Seq: 7, From: "alice", Text: "hi <all> & \"you\"", Time: time.Date(2026, 11, 22, 3, 10, 54, 123e6, time.UTC)},
	{Kind: KindAction, Room: "lobby", Seq: 8, From: "bob", Text: "waves", Time: time.Date(2026, 11, 22, 3, 10, 55, 0, time.UTC)},
	{Kind: KindPrivate, From: "alice", To: "bob", Text: "psst \\ ok"},
	{Kind: KindJoin, Room: "kitchen", Seq: 1, From: "carol"},
	{Kind: KindPart, Room: "kitchen", Seq: 2, From: "carol", Text: "quit"},
	{Kind: KindNotice, Text: "you are alice in lobby"},
	{Kind: KindNotice, Room: "lobby", Epoch: "k3f9ab", Text: "you are alice in lobby (last event k3f9ab-41)"},
	{Kind: KindError, Text: "line too long"},
	{Kind: KindMsg, Room: "lobby", Seq: 9, From: "dave", Text: "zoë 日本 \u2028"},
}

func TestEventGolden(t *testing.T) {
	var b []byte
	for i := range sampleEvents {
		b = AppendText(b, &sampleEvents[i])
		b = AppendJSON(b, &sampleEvents[i])
	}
	checkGolden(t, "events.golden", b)
}

// checkGolden compares b with testdata/name, or, with -update, writes it
// there.
func checkGolden(t *testing.T, name string, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(b)); diff != "" {
		t.Errorf("wire bytes (-want +got), run with -update if intended:\n%s", diff)
	}
}

func TestJSONMatchesEncodingJSON(t *testing.T) {
	for i := range sampleEvents {
		e := &sampleEvents[i]
		line := AppendJSON(nil, e)
		if !json.Valid(line) {
			t.Fatalf("invalid JSON %s", line)
		}
		got, err := DecodeJSON(line)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(*e, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

// TestDecodeJSONLikeEncodingJSON: keys match as encoding/json matches
// them (exactly, else without regard to case), and a bad seq is named by
// its literal, as encoding/json names it; an unknown key is the error.
func TestDecodeJSONLikeEncodingJSON(t *testing.T) {
	got, err := DecodeJSON([]byte(`{"Type":"msg","FROM":"ada","text":"hi","Seq":7}`))
	if want := (Event{Kind: KindMsg, From: "ada", Text: "hi", Seq: 7}); err != nil || got != want {
		t.Errorf("keys in other cases: %+v, %v; want %+v", got, err, want)
	}
	for line, want := range map[string]string{
		`{"type":"msg","seq":-1}`:  "decode event: json: cannot unmarshal number -1 into Go struct field jsonEvent.seq of type uint64",
		`{"type":"msg","seq":"1"}`: "decode event: json: cannot unmarshal string into Go struct field jsonEvent.seq of type uint64",
		`{"type":"msg","zz":1}`:    `decode event: json: unknown field "zz"`,
	} {
		if _, err := DecodeJSON([]byte(line)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", line, err, want)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\", "<&>", "\x00\x1f\x7f", "\xff", "\u2028\u2029", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s: %v", s, got, err)
		}
		var std bytes.Buffer
		enc := json.NewEncoder(&std)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		var want string
		json.Unmarshal(std.Bytes(), &want)
		if back != want {
			t.Fatalf("round trip of %q = %q, encoding/json gives %q", s, back, want)
		}
	})
}

// FuzzEvent: decode(encode(e)) == e for cleaned text, and the text line is
// one line.
func FuzzEvent(f *testing.F) {
	f.Add(uint8(1), "lobby", uint64(3), "alice", "", "hello", int64(1763781054123))
	f.Add(uint8(3), "", uint64(0), "bob", "alice", "x\"y\\z", int64(0))
	f.Fuzz(func(t *testing.T, kind uint8, room string, seq uint64, from, to, text string, ms int64) {
		e := Event{Kind: Kind(kind%7 + 1), Room: Clean([]byte(room)), Seq: seq, From: Clean([]byte(from)),
			To: Clean([]byte(to)), Text: Clean([]byte(text))}
		if ms > 0 && ms < 1e14 {
			e.Time = time.UnixMilli(ms).UTC()
		}
		got, err := DecodeJSON(AppendJSON(nil, &e))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e, got); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if line := AppendText(nil, &e); bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("text line %q is not one line", line)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"hi", "/msg bob hi", "/join x 1", "//", "/", "/me", "\xff/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := Parse([]byte(line))
		if err != nil {
			return
		}
		if !utf8.ValidString(r.Text) || strings.ContainsAny(r.Text, "\x00\x1b\n\r") {
			t.Fatalf("Parse(%q) text %q is not clean", line, r.Text)
		}
	})
}

// FuzzLineReader compares the reader, fed in odd-sized reads, with a
// plain split of the whole input.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\r\nbb\n\nccc"), uint8(2), uint8(3))
	f.Add([]byte(strings.Repeat("x", 300)+"\nshort\n"+strings.Repeat("y", 200)), uint8(200), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, max, chunk uint8) {
		lim := int(max)%300 + 1
		var want []string
		parts := bytes.Split(in, []byte{'\n'})
		if len(parts[len(parts)-1]) == 0 {
			parts = parts[:len(parts)-1]
		}
		for _, p := range parts {
			p = bytes.TrimSuffix(p, []byte{'\r'})
			if len(p) > lim {
				want = append(want, "<too long>")
			} else {
				want = append(want, string(p))
			}
		}
		lr := NewLineReader(&chunkReader{in, int(chunk)%17 + 1}, lim)
		var got []string
		for {
			l, err := lr.ReadLine()
			if err == io.EOF {
				break
			}
			if err == ErrLineTooLong {
				got = append(got, "<too long>")
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(l))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("max %d (-want +got):\n%s", lim, diff)
		}
	})
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// chunks returns its chunks one a Read, then io.EOF.
type chunks [][]byte

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	if (*c)[0] = (*c)[0][n:]; len((*c)[0]) == 0 {
		*c = (*c)[1:]
	}
	return n, nil
}

// TestLineReaderBuffer: the buffer starts small, grows past the line
// limit for a client that streams lines (fewer, larger reads), and falls
// back once the client is quiet; one long line grows it about to the
// limit only.
func TestLineReaderBuffer(t *testing.T) {
	stream := bytes.Repeat([]byte(strings.Repeat("x", 99)+"\n"), 2000)
	src := chunks{stream, []byte("quiet\n"), []byte("again\n")}
	lr := NewLineReader(&src, 1000)
	most := 0
	for range 2000 {
		if l, err := lr.ReadLine(); err != nil || len(l) != 99 {
			t.Fatalf("line %q, %v", l, err)
		}
		most = max(most, len(lr.buf))
	}
	if most != lineBufStream {
		t.Errorf("while streaming the buffer grew to %d, want %d", most, lineBufStream)
	}
	for _, want := range []string{"quiet", "again"} {
		if l, err := lr.ReadLine(); err != nil || string(l) != want {
			t.Fatalf("line %q, %v; want %q", l, err, want)
		}
	}
	if len(lr.buf) != lineBufStart {
		t.Errorf("once quiet the buffer holds %d, want %d", len(lr.buf), lineBufStart)
	}

	long := chunks{[]byte(strings.Repeat("y", 900)), []byte("\n")}
	lr = NewLineReader(&long, 1000)
	if l, err := lr.ReadLine(); err != nil || len(l) != 900 {
		t.Fatalf("long line %d bytes, %v", len(l), err)
	}
	if len(lr.buf) > 2*1002 {
		t.Errorf("one long line grew the buffer to %d", len(lr.buf))
	}
}

// TestAppendTime: the cached formatting of event times agrees with
// time.Format, across seconds, milliseconds and years.
func TestAppendTime(t *testing.T) {
	base := time.Date(2026, 11, 22, 23, 59, 58, 0, time.UTC)
	for _, t0 := range []time.Time{base, time.Date(1999, 12, 31, 23, 59, 59, 999e6, time.UTC), time.UnixMilli(1).UTC()} {
		for ms := range 3000 {
			tm := t0.Add(time.Duration(ms) * 997 * time.Microsecond)
			if got, want := string(appendTime(nil, tm)), tm.Format(TimeLayout); got != want {
				t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
			}
		}
	}
}

func TestPoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Point
		out  string // String, when not in
		err  string
	}{
		{in: "42", want: Point{Seq: 42}},
		{in: "0", want: Point{}},
		{in: "k3f9ab-42", want: Point{"k3f9ab", 42}},
		{in: "K3F9AB-42", want: Point{"k3f9ab", 42}, out: "k3f9ab-42"},
		{in: "k3f9ab-18446744073709551615", want: Point{"k3f9ab", 1<<64 - 1}},
		{in: "k3f9ab-18446744073709551616", err: `resume point "k3f9ab-18446744073709551616": sequence number past 18446744073709551615`},
		{in: "99999999999999999999999", err: `resume point "99999999999999999999999": sequence number past 18446744073709551615`},
		{in: "-5", err: `resume point "-5": epoch "" is not 1 to 16 letters and digits`},
		{in: "+5", err: `resume point "+5": no sequence number (want SEQ or EPOCH-SEQ)`},
		{in: "k3f9ab-+5", err: `resume point "k3f9ab-+5": no sequence number (want SEQ or EPOCH-SEQ)`},
		{in: "k3f9ab-1_0", err: `resume point "k3f9ab-1_0": "1_0" is not a sequence number (want SEQ or EPOCH-SEQ)`},
		{in: "k3f9ab", err: `resume point "k3f9ab": no sequence number (want SEQ or EPOCH-SEQ)`},
		{in: "ab cd-4", err: `resume point "ab cd-4": epoch "ab cd" holds ' ': only a-z and 0-9`},
		{in: strings.Repeat("a", MaxEpoch+1) + "-4", err: `resume point "aaaaaaaaaaaaaaaaa-4": epoch "aaaaaaaaaaaaaaaaa" is not 1 to 16 letters and digits`},
	} {
		got, err := ParsePoint(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParsePoint(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePoint(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePoint(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		out := tc.out
		if out == "" {
			out = tc.in
		}
		if s := got.String(); s != out {
			t.Errorf("ParsePoint(%q).String() = %q, want %q", tc.in, s, out)
		}
	}
}

func TestAppendStamp(t *testing.T) {
	zone := time.FixedZone("X", 5*3600+30*60)
	tm := time.Date(2026, 11, 22, 23, 59, 58, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{tm, "[23:59] "},
		{tm.In(zone), "[05:29] "},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "[03:04] "},
	} {
		if got := string(AppendStamp([]byte("x"), tc.t)); got != "x"+tc.want {
			t.Errorf("AppendStamp(%v) = %q, want %q", tc.t, got, "x"+tc.want)
		}
	}
}

// FuzzHello: ParseHello never panics, and a hello it takes, written out
// as JSON, parses back the same.
func FuzzHello(f *testing.F) {
	for _, s := range []string{
		"alice", " first client ", "山田", `{"name":"bot","mode":"json","room":"alerts","replay":0}`,
		`{"name":"bot","epoch":"k3f9ab","since":5}`, `{"name":"bot","name":"x"}`, `{"name":"bot","since":-1}`,
		`{"name":"bot"} x`, `{`, "a\u200bb",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		h, err := ParseHello(line)
		if err != nil {
			return
		}
		if err := CheckName(h.Name); err != nil {
			t.Fatalf("ParseHello(%q) took an invalid name: %v", line, err)
		}
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseHello(b)
		if err != nil {
			t.Fatalf("ParseHello(%q) = %+v, which reads back as an error: %v (%s)", line, h, err, b)
		}
		if diff := cmp.Diff(h, again); diff != "" {
			t.Fatalf("ParseHello(%q) round trip (-first +again):\n%s", line, diff)
		}
	})
}

// errNothing stands for a socket that has nothing to read now.
var errNothing = errors.New("nothing to read now")

// trickle returns its chunks one a Read, and errNothing between them.
type trickle struct {
	chunks [][]byte
	gap    bool
}

func (c *trickle) Read(p []byte) (int, error) {
	if c.gap = !c.gap; c.gap || len(c.chunks) == 0 {
		return 0, errNothing
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// TestLineReaderIdle: a reader with nothing to read and nothing kept
// holds no buffer, and reads on where the stream stands, a line cut
// between reads included.
func TestLineReaderIdle(t *testing.T) {
	src := trickle{chunks: [][]byte{[]byte("alice\n"), []byte("hel"), []byte("lo\nbye\n")}}
	lr := NewLineReader(&src, 100)
	var got []string
	for range 20 {
		l, err := lr.ReadLine()
		switch {
		case err == errNothing:
			if lr.end > lr.start == (lr.buf == nil) {
				t.Fatalf("nothing to read, %d bytes kept, buffer of %d", lr.end-lr.start, len(lr.buf))
			}
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, string(l))
		}
	}
	if diff := cmp.Diff([]string{"alice", "hello", "bye"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if lr.buf != nil {
		t.Errorf("idle at the end, the reader holds a buffer of %d", len(lr.buf))
	}
}

// TestLineReaderIdleReset: a reader is idle (may be reset for another stream)
// only while it holds nothing: not with part of a line read, nor within
// an over-long line being discarded, nor with an error to return.
func TestLineReaderIdleReset(t *testing.T) {
	var in partReader
	lr := NewLineReader(&in, 8)
	step := func(feed string, wantLine string, wantErr error, idle bool) {
		t.Helper()
		in.next = feed
		line, err := lr.ReadLine()
		if string(line) != wantLine || err != wantErr {
			t.Fatalf("after %q: ReadLine = %q, %v; want %q, %v", feed, line, err, wantLine, wantErr)
		}
		if lr.Idle() != idle {
			t.Fatalf("after %q: Idle = %v, want %v", feed, lr.Idle(), idle)
		}
	}
	step("", "", errNothing, true)
	step("hel", "", errNothing, false) // part of a line
	step("lo\n", "hello", nil, false)  // its buffer is kept until a read finds nothing
	step("", "", errNothing, true)
	step("0123456789", "", errNothing, false) // over the limit: discarding
	step("ab\n", "", ErrLineTooLong, false)
	step("", "", errNothing, true)
	lr.Reset(&in, 8)
	step("x\n", "x", nil, false)
}

// partReader returns next once, then errNothing.
type partReader struct{ next string }

func (r *partReader) Read(p []byte) (int, error) {
	if r.next == "" {
		return 0, errNothing
	}
	n := copy(p, r.next)
	r.next = r.next[n:]
	return n, nil
}
