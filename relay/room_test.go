package relay

import (
	"strings"
	"testing"

	"roomrelay/proto"
)

// TestEventTextFits: an event's text line is kept in a buffer of its own
// size, whatever its kind (a grown buffer would keep up to twice the line
// in history).
func TestEventTextFits(t *testing.T) {
	for n := range 300 { // text lengths across several size classes' ends
		text := strings.Repeat("x", n)
		for _, e := range []proto.Event{
			{Kind: proto.KindMsg, From: "alice", Text: text},
			{Kind: proto.KindAction, From: "alice", Text: text},
			{Kind: proto.KindPrivate, From: "alice", To: "bob", Text: text},
			{Kind: proto.KindJoin, From: text + "a", Room: "lobby"},
			{Kind: proto.KindPart, From: "alice", Room: "lobby", Text: text},
			{Kind: proto.KindNotice, Text: text},
			{Kind: proto.KindError, Text: text},
		} {
			ev := newEvent(&e, 0)
			if sized := cap(make([]byte, len(ev.text))); cap(ev.text) != sized {
				t.Fatalf("%v: line of %d in a buffer of %d, not the %d of its size", e.Kind, len(ev.text), cap(ev.text), sized)
			}
		}
	}
}
