package relay

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// TestReserve: over the burst, each message's turn comes 1/rate after the
// previous one's, in the order they were taken; a turn that would come
// after its deadline is not taken, and the next gets it.
func TestReserve(t *testing.T) {
	const rate, burst = 2.0, 2
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var l limiter
	var got []time.Duration
	for range 5 {
		got = append(got, l.reserve(t0, rate, burst))
	}
	want := []time.Duration{0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("turns (-want +got):\n%s", diff)
	}
	if d, ok := l.reserveBy(t0, t0.Add(1999*time.Millisecond), rate, burst); ok {
		t.Errorf("a turn in 2s, by 1.999s: taken, in %v", d)
	}
	if d, ok := l.reserveBy(t0, t0.Add(2*time.Second), rate, burst); !ok || d != 2*time.Second {
		t.Errorf("a turn in 2s, by 2s: %v, %v; want 2s, true", d, ok)
	}
	if d, ok := l.reserveBy(t0.Add(3*time.Second), t0.Add(3*time.Second), rate, burst); !ok || d != 0 {
		t.Errorf("3s later, by then: %v, %v; want 0s, true", d, ok)
	}
}

// TestResourceErrors: the relay's own shortages are told from a peer's
// failures (see legacyPeer.send).
func TestResourceErrors(t *testing.T) {
	for _, err := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, &net.OpError{Op: "dial", Err: os.NewSyscallError("socket", syscall.EMFILE)}} {
		if !isResource(err) {
			t.Errorf("isResource(%v) = false", err)
		}
	}
	for _, err := range []error{syscall.ECONNREFUSED, os.ErrDeadlineExceeded} {
		if isResource(err) {
			t.Errorf("isResource(%v) = true", err)
		}
	}
}
