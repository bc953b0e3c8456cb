//go:build !minimal

package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/relay/config"
)

// TestLegacyBudget: a legacy sender over its budget waits its turn rather
// than being dropped, and its messages come in order (15 sent at once at
// a rate of 20 a second with a burst of 5: all 15 delivered, none
// dropped); one whose turn would come later than timeouts.message is
// dropped and counted (6 sent at once at a rate of 1 in 10 s with a
// burst of 2: 2 delivered, 4 dropped).
func TestLegacyBudget(t *testing.T) {
	for _, tc := range []struct {
		name             string
		rate             float64
		burst, n         int
		message          time.Duration
		delivered, drops int
	}{
		{"paced", 20, 5, 15, 5 * time.Second, 15, 0},
		{"dropped", 0.1, 2, 6, time.Second, 2, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Limits.Rate, cfg.Limits.Burst = tc.rate, tc.burst+1 // the registration takes one
			cfg.Timeouts.Message = config.Duration(tc.message)
			s := startServer(t, cfg)
			watch := join(t, s, "watch")
			carol := newTutorialClient(t, s, "carol")
			watch.until("carol's join", func(l string) bool { return l == "--- carol joined lobby" })
			var want []string
			for i := range tc.n {
				carol.send(fmt.Sprintf("from:carol|%d", i))
				if i < tc.delivered {
					want = append(want, fmt.Sprintf("carol: %d", i))
				}
			}
			waitFor(t, 10*time.Second, "every message handled", func() bool {
				st := s.Stats()
				return st.Posted+st.LegacyDropped == int64(tc.n)
			})
			if diff := cmp.Diff(want, watch.messages(tc.delivered)); diff != "" {
				t.Errorf("watch got (-want +got):\n%s", diff)
			}
			if st := s.Stats(); st.LegacyDropped != int64(tc.drops) || st.Posted != int64(tc.delivered) {
				t.Errorf("%d posted, %d dropped; want %d, %d", st.Posted, st.LegacyDropped, tc.delivered, tc.drops)
			}
		})
	}
}
