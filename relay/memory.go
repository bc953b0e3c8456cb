package relay

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go runtime keeps the heap it grew to: after a burst (a thousand
// members joining, a flood of posts, a store read back at start) the
// pages the burst's garbage took stay with the process, and its
// background scavenger gives back only what lies beyond about 1.1 times
// the collector's goal. An idle relay on a router should hold what its
// members hold, so once the relay goes quiet after a burst, reclaim
// collects and returns every free page to the system
// (debug.FreeOSMemory). It looks four times a second, reads one of the
// runtime's counters (what it allocated) and does nothing more while the
// relay is busy; an idle relay, with no release due, it looks at less
// and less often, down to once every reclaimIdle. A release is a full
// collection, so it is rate-limited by what it costs.
const (
	// reclaimEvery is how often reclaim looks.
	reclaimEvery = 250 * time.Millisecond
	// reclaimIdle: at a look that finds the relay quiet and no release
	// due, the wait to the next doubles, up to this.
	reclaimIdle = 4 * time.Second
	// reclaimQuiet: the relay is quiet when it allocated less than this
	// for each reclaimEvery since the last look (32 KB/s: a chat of a few
	// lines a second is quiet; the bench's scenario c, 1 000 posts a
	// second, is not).
	reclaimQuiet = 8 << 10
	// reclaimBurst: a release is due once the relay allocated this much
	// since the last one (and went quiet): less garbage than this is not
	// worth a collection.
	reclaimBurst = 512 << 10
	// reclaimShare bounds the time spent releasing: after a release that
	// took d, the next waits reclaimShare × d at least (1 % of the time).
	reclaimShare = 100
)

// reclaimer decides when to release memory; its rules take the time and
// the runtime's counters as arguments. Owned by Server.reclaim.
type reclaimer struct {
	seen   uint64        // bytes allocated in all, at the last look
	since  uint64        // bytes allocated in all, at the last release
	next   time.Time     // no release before this
	wait   time.Duration // to the next look (see due); 0: reclaimEvery
	looked bool          // seen is set
}

// due reports whether to release now, given the bytes the process has
// allocated since it started, and sets wait: reclaimEvery, or twice the
// last (up to reclaimIdle) when the relay is quiet and no release is due.
func (r *reclaimer) due(now time.Time, allocated uint64) bool {
	w := max(r.wait, reclaimEvery)
	quiet := r.looked && allocated-r.seen < reclaimQuiet*uint64(w/reclaimEvery)
	r.seen, r.looked = allocated, true
	burst := allocated-r.since >= reclaimBurst
	r.wait = reclaimEvery
	if quiet && !burst {
		r.wait = min(2*w, reclaimIdle)
	}
	return quiet && burst && !now.Before(r.next)
}

// released records a release that ended at now after taking took, when
// the process had allocated allocated bytes.
func (r *reclaimer) released(now time.Time, took time.Duration, allocated uint64) {
	r.since = allocated
	r.next = now.Add(reclaimShare * took)
}

// reclaim releases memory after bursts (see reclaimer) until the relay
// shuts down.
func (s *Server) reclaim() {
	defer s.wg.Done()
	var r reclaimer
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	t := time.NewTimer(reclaimEvery)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			if r.due(now, allocated()) {
				start := time.Now()
				debug.FreeOSMemory()
				end := time.Now()
				r.released(end, end.Sub(start), allocated())
				s.stats.reclaims.Add(1)
			}
			t.Reset(r.wait)
		}
	}
}
