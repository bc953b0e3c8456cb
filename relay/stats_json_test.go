package relay

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStatsAppendJSON: Stats.AppendJSON writes what encoding/json writes
// (for keys without <, > and &, which encoding/json escapes).
func TestStatsAppendJSON(t *testing.T) {
	full := Stats{
		Accepted: 1, Refused: 2, Refusals: map[string]int64{"relay full": 3, "address full": 4},
		Posted: 5, MessagesIn: 6, Delivered: 7, MessagesOut: 8, BytesIn: 9, BytesOut: 10,
		Replays: 11, Replayed: 12, LegacySent: 13, LegacyFailed: 14, UDPDropped: 15,
		Disconnects: map[string]int64{"quit": 16, "too slow": -17}, Paced: 18, Stalled: 19,
		LegacyDropped: 20, LegacyRefused: 21, StoreWrites: 22, StoreErrors: 23, BadSecret: 24,
		Slowed: 25, Banned: 26, StoreFailed: "open /x: \"no\"\n\u00e9", Doors: map[string]int64{"line": 27, "irc": 28},
		Rooms: map[string]int64{"lobby": 29, "b\u00e9": 30, "": 31}, Goroutines: 1 << 40,
	}
	for name, st := range map[string]Stats{"full": full, "zero": {}, "empty maps": {
		Refusals: map[string]int64{}, Disconnects: map[string]int64{}, Doors: map[string]int64{}, Rooms: map[string]int64{},
	}} {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(st.AppendJSON(nil))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}
