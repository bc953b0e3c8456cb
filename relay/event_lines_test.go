//go:build !minimal

package relay

import (
	"bytes"
	"testing"

	"roomrelay/proto"
)

// TestEventCompactLines: the IRC lines, their server-time tag and the
// legacy line made from an event a room keeps are those made from the
// event it was made from, for every kind.
func TestEventCompactLines(t *testing.T) {
	for _, e := range eventCases() {
		ev := newEvent(&e, 0)
		full := ev.full()
		if want, got := proto.AppendIRCEvent(nil, &e, "bob"), proto.AppendIRCEvent(nil, &full, "bob"); !bytes.Equal(got, want) {
			t.Errorf("%v: IRC line %q, want %q", e.Kind, got, want)
		}
		if want, got := proto.AppendLegacy(nil, &e), proto.AppendLegacy(nil, &full); !bytes.Equal(got, want) {
			t.Errorf("%v: legacy line %q, want %q", e.Kind, got, want)
		}
		if e.Seq == 0 {
			continue // ircLines is for room events
		}
		l := ev.ircLines()
		if want := proto.AppendIRCEvent(nil, &e, ""); !bytes.Equal(l.lines, want) {
			t.Errorf("%v: IRC lines %q, want %q", e.Kind, l.lines, want)
		}
		if want := proto.AppendIRCTime(nil, e.Time); !bytes.Equal(l.tag, want) {
			t.Errorf("%v: server-time tag %q, want %q", e.Kind, l.tag, want)
		}
		if ev.ircLines() != l {
			t.Errorf("%v: IRC lines made twice", e.Kind)
		}
	}
}
