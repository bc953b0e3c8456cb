package relay

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLimiterTable: a full table makes room only with a bucket that has
// refilled, so a sweep of new senders cannot reset a flooder's budget.
func TestLimiterTable(t *testing.T) {
	const rate, burst = 1.0, 3
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	lt := newLimiterTable[netip.Addr](2)
	flooder := netip.MustParseAddr("10.0.0.1")
	for range burst {
		if !lt.get(flooder, t0, rate, burst).allow(t0, rate, burst) {
			t.Fatal("refused within the burst")
		}
	}
	if lt.get(flooder, t0, rate, burst).allow(t0, rate, burst) {
		t.Fatal("allowed past the burst")
	}
	// Other senders come; the flooder's empty bucket is never the one
	// dropped to make room, so its budget stays spent.
	for i := 2; i < 10; i++ {
		other := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		b := lt.get(other, t0, rate, burst)
		if i == 2 && b == nil {
			t.Fatal("a free place refused")
		}
		if b != nil {
			b.allow(t0, rate, burst)
		}
		if lt.get(flooder, t0, rate, burst).allow(t0, rate, burst) {
			t.Fatalf("after %d new senders the flooder's budget was reset", i-1)
		}
	}
	// Once a bucket has refilled (3 s at 1 a second), it gives way.
	later := t0.Add(4 * time.Second)
	newcomer := netip.MustParseAddr("10.0.1.1")
	if lt.get(flooder, later, rate, burst) == nil { // the flooder is used again: 10.0.0.2 is the oldest
		t.Fatal("a known sender refused")
	}
	if b := lt.get(newcomer, later, rate, burst); b == nil || !b.allow(later, rate, burst) {
		t.Error("no place for a newcomer although a bucket had refilled")
	}
}

func TestFDWarning(t *testing.T) {
	cfg := testConfig() // 200 clients, 50 legacy members
	if w := fdWarning(1<<20, &cfg); w != "" {
		t.Errorf("warned with a million files: %s", w)
	}
	if w := fdWarning(64, &cfg); !strings.Contains(w, "may open 64 files, fewer than the 282") {
		t.Errorf("with 64 files: %q", w)
	}
}
