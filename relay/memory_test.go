package relay

import (
	"fmt"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// TestReclaimerDue: a release is due once the relay allocated
// reclaimBurst since the last one and then went quiet for a look, and
// not before the last one's cost times reclaimShare has passed.
func TestReclaimerDue(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * reclaimEvery) }
	var r reclaimer
	steps := []struct {
		what      string
		n         int
		allocated uint64
		want      bool
	}{
		{"the first look has nothing to compare", 0, 10 << 20, false},
		{"quiet after 10 MB since start", 1, 10<<20 + 1000, true},
	}
	for _, st := range steps {
		if got := r.due(at(st.n), st.allocated); got != st.want {
			t.Fatalf("%s: due = %v, want %v", st.what, got, st.want)
		}
	}
	r.released(at(1), time.Millisecond, 10<<20+2000) // the next one waits 100 ms
	steps = []struct {
		what      string
		n         int
		allocated uint64
		want      bool
	}{
		{"quiet, but too little since the release", 2, 10<<20 + 4000, false},
		{"a burst: not quiet", 3, 12 << 20, false},
		{"quiet after the burst", 4, 12<<20 + reclaimQuiet - 1, true},
		{"busy again", 5, 14 << 20, false},
	}
	for _, st := range steps {
		if got := r.due(at(st.n), st.allocated); got != st.want {
			t.Fatalf("%s: due = %v, want %v", st.what, got, st.want)
		}
	}
	r.released(at(5), time.Second, 14<<20) // the next one waits 100 s
	r.due(at(6), 20<<20)
	if r.due(at(7), 20<<20) {
		t.Fatal("due within reclaimShare times the last release's cost")
	}
	if !r.due(at(5).Add(reclaimShare*time.Second), 20<<20) {
		t.Fatal("not due once reclaimShare times the last release's cost passed")
	}
}

// TestReclaimerIdle: a quiet relay with no release due is looked at less
// and less often, down to once every reclaimIdle; where it allocates
// again, or a release is due, every reclaimEvery. Quiet is a rate: over a
// longer wait, more may be allocated.
func TestReclaimerIdle(t *testing.T) {
	var r reclaimer
	now, allocated := time.Unix(1000, 0), uint64(10<<20)
	look := func(what string, more uint64, wantDue bool, wantWait time.Duration) {
		t.Helper()
		now, allocated = now.Add(max(r.wait, reclaimEvery)), allocated+more
		if got := r.due(now, allocated); got != wantDue || r.wait != wantWait {
			t.Fatalf("%s: due %v, wait %v; want %v, %v", what, got, r.wait, wantDue, wantWait)
		}
	}
	look("the first look", 0, false, reclaimEvery)
	look("a release is due", 0, true, reclaimEvery)
	r.released(now, time.Millisecond, allocated)
	for _, w := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, reclaimIdle, reclaimIdle} {
		look("idle", 1000, false, w)
	}
	look("a chat over reclaimIdle: quiet", reclaimQuiet*uint64(reclaimIdle/reclaimEvery)-1, false, reclaimIdle)
	look("busy", reclaimQuiet*uint64(reclaimIdle/reclaimEvery), false, reclaimEvery)
	look("busy over reclaimEvery", reclaimBurst, false, reclaimEvery)
	look("quiet after the burst: a release is due", 0, true, reclaimEvery)
	r.released(now, time.Second, allocated) // the next one waits 100 s
	look("idle after the release", 0, false, 2*reclaimEvery)
	look("a burst", reclaimBurst, false, reclaimEvery)
	look("quiet, a release due but too soon", 0, false, reclaimEvery)
	look("still due, too soon: not idle", 0, false, reclaimEvery)
	now = now.Add(reclaimShare * time.Second)
	look("due", 0, true, reclaimEvery)
}

// TestReclaimAfterBurst: after a burst of posts (garbage once history
// drops them) and the relay gone quiet, the relay returns the free heap
// to the system by itself.
func TestReclaimAfterBurst(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.History = 64
	s := startServer(t, cfg)
	a, b := join(t, s, "alice"), join(t, s, "bob")
	text := strings.Repeat("x", 400)
	const posts = 4000 // about 4 MB of events and lines
	for i := 0; i < posts; i += 100 {
		var lines []string
		for k := i; k < i+100; k++ {
			lines = append(lines, fmt.Sprintf("%d %s", k, text))
		}
		a.send(lines...)
		b.until("the batch's last post", func(l string) bool { return strings.HasPrefix(l, fmt.Sprintf("alice: %d ", i+99)) })
	}
	// The burst's events dropped from history are garbage: a collection
	// frees their pages, which the relay then returns. (A release leaves
	// the pages a running P keeps for its next allocations, up to 512 KB
	// each: the runtime flushes only idle Ps' caches.)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	released := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	before := released()
	waitFor(t, 20*time.Second, "the relay to return the burst's garbage", func() bool {
		return s.stats.reclaims.Load() > 0 && released() >= before+1<<20
	})
}
