package relay

import (
	"bytes"
	"strings"
	"testing"
	"time"

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
		if got := ev.full(); !cmp.Equal(got, e) {
			t.Errorf("%v: full() differs (-want +got):\n%s", e.Kind, cmp.Diff(e, got))
		}
		if want := proto.AppendText(nil, &e); !bytes.Equal(ev.text, want) {
			t.Errorf("%v: text line %q, want %q", e.Kind, ev.text, want)
		}
		if want := proto.AppendJSON(nil, &e); !bytes.Equal(ev.line(true), want) {
			t.Errorf("%v: JSON line %q, want %q", e.Kind, ev.line(true), want)
		}
		if e.Kind == proto.KindMsg && ev.src.Text != "" {
			t.Errorf("a message holds its text twice: %q in its source", ev.src.Text)
		}
	}
	e := proto.Event{Kind: proto.KindMsg, From: "ann", Room: "lobby", Seq: 3, Time: at}
	said := newSaid(&e, []byte("as it is"), 1)
	e.Text = "as it is"
	made := newEvent(&e, 1)
	if !bytes.Equal(said.text, made.text) || !cmp.Equal(said.full(), made.full()) || !bytes.Equal(said.line(true), made.line(true)) {
		t.Errorf("said %q %+v, made %q %+v", said.text, said.full(), made.text, made.full())
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
