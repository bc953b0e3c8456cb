package relay

import (
	"strings"
	"testing"
	"time"

	"roomrelay/proto"
)

// TestKickedWhileHandlingLine: a member kicked while its line is handled
// (here by a hook; in life, its private queue overflowing with the
// answer to its own command) leaves at once, on every driver, even when
// its read deadline moved far since it was last armed.
func TestKickedWhileHandlingLine(t *testing.T) {
	handleHook = func(m *member, req proto.Request) {
		if req.Op == proto.Ping && req.Text == "kick me" {
			m.lastIn.Store(time.Now().Add(time.Hour).UnixNano()) // as if an hour went by since the last line
			m.kick(bySlow)
		}
	}
	t.Cleanup(func() { handleHook = nil })
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			s := startServer(t, testConfig())
			c := d.dial(t, s).enter("victim")
			c.send("/ping kick me")
			waitFor(t, 5*time.Second, "the kicked member to leave", func() bool { return s.lookup("victim") == nil })
			c.until("the notice", func(l string) bool { return strings.HasPrefix(l, "!!! disconnected: too slow") })
		})
	}
}

// TestDeliveredCount: Stats().Delivered counts the events handed to
// members, exactly.
func TestDeliveredCount(t *testing.T) {
	s := startServer(t, testConfig())
	a := join(t, s, "a")
	b := join(t, s, "b")
	a.until("b's join", func(l string) bool { return l == "--- b joined lobby" })
	for _, c := range []*tconn{a, b} {
		c.send("/ping sync")
		c.until("the pong", func(l string) bool { return l == "--- pong sync" })
	}
	before := s.Stats().Delivered
	a.send("one", "two", "three") // to b; a does not get its own lines in text mode
	b.messages(3)
	if d := s.Stats().Delivered - before; d != 3 {
		t.Errorf("delivered %d events for 3 messages to one member", d)
	}
}
