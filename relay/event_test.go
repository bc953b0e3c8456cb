package relay

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
)

// TestEventText: an event keeps its text once, in its text line, where
// the line ends with it, and gives back the event it was made from, for
// every kind: its JSON line is the event's. A message posted as it is
// (Server.say) is the same event as one made from its text.
func TestEventText(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, e := range []proto.Event{
		{Kind: proto.KindMsg, From: "ann", Text: "hello there", Room: "lobby", Seq: 7, Time: at},
		{Kind: proto.KindMsg, From: "ann", Text: "ann: x", Time: at},
		{Kind: proto.KindAction, From: "ann", Text: "waves", Time: at},
		{Kind: proto.KindPrivate, From: "ann", To: "bob", Text: "psst", Time: at},
		{Kind: proto.KindJoin, From: "ann", Room: "lobby", Time: at},
		{Kind: proto.KindPart, From: "ann", Room: "lobby", Text: "too slow", Time: at},
		{Kind: proto.KindNotice, Text: "pong"},
		{Kind: proto.KindNotice, Room: "lobby", Epoch: "abcdef", Text: "welcome"},
		{Kind: proto.KindError, Text: "no such room"},
		{Kind: proto.KindMsg, From: "ann", Text: " ", Time: at},
	} {
		ev := newEvent(&e, 1)
		if r := ev.rare(); r != nil && r.text != "" {
			t.Errorf("%v: holds its text twice: %q beside its line", e.Kind, r.text)
		}
		if x := ev.x.Load(); (x != nil) != (e.To != "" || e.Epoch != "") {
			t.Errorf("%v: extra %+v, want one only for an addressee or an epoch", e.Kind, x)
		}
		if got := ev.full(); !cmp.Equal(got, e) {
			t.Errorf("%v: full() differs (-want +got):\n%s", e.Kind, cmp.Diff(e, got))
		}
		if want := proto.AppendText(nil, &e); !bytes.Equal(ev.text, want) {
			t.Errorf("%v: text line %q, want %q", e.Kind, ev.text, want)
		}
		if want := proto.AppendJSON(nil, &e); !bytes.Equal(ev.line(true), want) {
			t.Errorf("%v: JSON line %q, want %q", e.Kind, ev.line(true), want)
		}
	}
	e := proto.Event{Kind: proto.KindMsg, From: "ann", Room: "lobby", Seq: 3, Time: at}
	said := newSaid(&e, []byte("as it is"), 1)
	e.Text = "as it is"
	made := newEvent(&e, 1)
	if !bytes.Equal(said.text, made.text) || !cmp.Equal(said.full(), made.full()) || !bytes.Equal(said.line(true), made.line(true)) {
		t.Errorf("said %q %+v, made %q %+v", said.text, said.full(), made.text, made.full())
	}
	for _, text := range []string{"", "ann: x", strings.Repeat("é", 300)} {
		e := proto.Event{Kind: proto.KindMsg, From: "ann", Text: text}
		said := newSaid(&e, []byte(text), 1)
		if want := proto.AppendText(nil, &e); !bytes.Equal(said.text, want) || said.full().Text != text {
			t.Errorf("said %q: line %q, text %q; want %q", text, said.text, said.full().Text, want)
		}
	}
	// Its line and the event: nothing more (no string of the text), and
	// the line made at its size.
	b := []byte(strings.Repeat("x", 1000))
	if n := testing.AllocsPerRun(100, func() { newSaid(&e, b, 1) }); n != 2 {
		t.Errorf("newSaid: %v allocations, want 2", n)
	}
}

// TestSayAsIs: lines posted as they are (Server.say) and lines that need
// Parse (a command, a doubled slash, text to clean, a line too long) come
// out alike to a member in text mode and one in JSON mode.
func TestSayAsIs(t *testing.T) {
	cfg := testConfig()
	s := startServer(t, cfg)
	alice := join(t, s, "alice")
	bob := join(t, s, "bob")
	prog := join(t, s, `{"name":"prog","mode":"json","replay":0}`)
	long := strings.Repeat("x", cfg.Limits.MaxLineBytes-len("alice: ")+1)
	alice.send("plain", "a\x1bb", "//slash", "é ok", long, "/me waves", "last")
	if reply := alice.until("the refusal", func(l string) bool { return strings.HasPrefix(l, "!!! ") }); !strings.Contains(reply, "too long") {
		t.Errorf("the long line: %q, want it refused as too long", reply)
	}
	want := []string{"plain", "a\uFFFDb", "/slash", "é ok", "", "last"}
	got := bob.messages(6)
	for i, w := range want {
		if w == "" {
			if got[i] != "* alice waves" {
				t.Errorf("bob's line %d: %q, want the action", i, got[i])
			}
			continue
		}
		if got[i] != "alice: "+w {
			t.Errorf("bob's line %d: %q, want %q", i, got[i], "alice: "+w)
		}
		e := jsonEvent(t, prog.until(w, isMsg))
		if e.Text != w || e.From != "alice" || e.Seq == 0 {
			t.Errorf("prog's event %+v, want alice's %q", e, w)
		}
	}
}

// eventCases are events of every kind, as the relay makes them.
func eventCases() []proto.Event {
	at := time.Date(2026, 12, 3, 10, 0, 59, 999e6, time.UTC)
	return []proto.Event{
		{Kind: proto.KindMsg, Room: "lobby", Seq: 7, From: "ann", Text: `say "hi" \ é`, Time: at},
		{Kind: proto.KindAction, Room: "lobby", Seq: 8, From: "ann", Text: "waves", Time: at},
		{Kind: proto.KindPrivate, From: "ann", To: "bob", Text: "psst", Time: at},
		{Kind: proto.KindJoin, Room: "lobby", Seq: 9, From: "ann", Time: at},
		{Kind: proto.KindPart, Room: "lobby", Seq: 10, From: "ann", Text: "joined den", Time: at},
		{Kind: proto.KindPart, Room: "lobby", Seq: 11, From: "ann", Time: at},
		{Kind: proto.KindNotice, Text: "earlier in lobby, events 1 to 6:"},
		{Kind: proto.KindNotice, Room: "lobby", Epoch: "k3f9ab", Text: "you are ann in lobby"},
		{Kind: proto.KindError, Text: "no such member"},
		{Kind: proto.KindMsg, Room: "lobby", Seq: 12, From: "ann", Text: "before 1970", Time: time.UnixMilli(-1).UTC()},
	}
}

// TestEventCompact: the event a room keeps stays in its size class, and
// every line made from it (text, JSON, time stamp) is the one made from
// the event it was made from, for every kind; a hole's notice carries no
// number in its lines.
func TestEventCompact(t *testing.T) {
	if size := unsafe.Sizeof(event{}); size > 96 {
		t.Errorf("an event is %d bytes, past the 96-byte size class: a room keeps up to history of them", size)
	}
	if size := unsafe.Sizeof(extra{}); size > 64 {
		t.Errorf("an event's extra is %d bytes, past the 64-byte size class: a room in JSON mode has one an event", size)
	}
	for _, e := range eventCases() {
		ev := newEvent(&e, 0)
		if want := proto.AppendText(nil, &e); !bytes.Equal(ev.line(false), want) {
			t.Errorf("%v: text line %q, want %q", e.Kind, ev.line(false), want)
		}
		if want := proto.AppendJSON(nil, &e); !bytes.Equal(ev.line(true), want) {
			t.Errorf("%v: JSON line %q, want %q", e.Kind, ev.line(true), want)
		}
		var want []byte
		if !e.Time.IsZero() {
			want = proto.AppendStamp(nil, e.Time.Local())
		}
		if got := ev.stamped(); !bytes.Equal(got, want) {
			t.Errorf("%v: stamp %q, want %q", e.Kind, got, want)
		}
		if got := ev.full(); !cmp.Equal(got, e) {
			t.Errorf("%v: full() differs (-want +got):\n%s", e.Kind, cmp.Diff(e, got))
		}
	}
	r := newRoom("lobby", 16)
	r.hole(3, 5, 1)
	ev := r.ring[4]
	if ev.seq != 3 || ev.skip() != 6 || ev.roomSeq() != 0 || ev.full().Seq != 0 {
		t.Errorf("hole: seq %d, skip %d, carries %d, full %+v: want 3, 6, none", ev.seq, ev.skip(), ev.roomSeq(), ev.full())
	}
	if line := ev.line(true); bytes.Contains(line, []byte(`"seq"`)) {
		t.Errorf("hole's JSON line %q carries a number", line)
	}
	if l := lineEvent([]byte("x\n")); string(l.line(true)) != "x\n" || l.x.Load() != nil {
		t.Errorf("a line event's JSON line %q, extra %v: want its line, none", l.line(true), l.x.Load())
	}
}

// TestMemberCompact: a member fits the 320-byte size class (see README,
// Footprint): every idle member holds one.
func TestMemberCompact(t *testing.T) {
	if size := unsafe.Sizeof(member{}); size > 320 {
		t.Errorf("a member is %d bytes, past the 320-byte size class", size)
	}
}
