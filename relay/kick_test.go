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
