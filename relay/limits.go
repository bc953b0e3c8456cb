package relay

import (
	"container/list"
	"math"
	"time"
)

// limiter is a token bucket, owned by one session goroutine: of lines for
// a member (see member.paceBy) or a UDP source, of bytes for a member's
// replays. A member's buckets may go into debt: its driver then reads
// nothing more from it until they have refilled.
type limiter struct {
	tokens float64
	last   int64 // when it was last refilled, in Unix nanoseconds; 0: never (it is full)
}

// refill brings the bucket to t at rate per second, up to burst.
func (l *limiter) refill(t time.Time, rate float64, burst float64) {
	now := t.UnixNano()
	if l.last == 0 {
		l.tokens = burst
	} else if now > l.last {
		l.tokens = min(burst, l.tokens+float64(now-l.last)/1e9*rate)
	}
	l.last = max(l.last, now)
}

// allow reports whether a message at t fits rate per second with burst,
// and takes it when it does. A rate of 0 allows everything.
func (l *limiter) allow(t time.Time, rate float64, burst int) bool {
	if rate <= 0 {
		return true
	}
	l.refill(t, rate, float64(burst))
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// spend takes n at t, into debt if need be. A rate of 0 takes nothing.
func (l *limiter) spend(t time.Time, n float64, rate float64, burst float64) {
	if rate <= 0 {
		return
	}
	l.refill(t, rate, burst)
	l.tokens -= n
}

// readyAt returns when the bucket holds need, filling at rate per second
// up to burst: the zero time when it does at t (or the rate is 0).
func (l *limiter) readyAt(t time.Time, need float64, rate float64, burst float64) time.Time {
	if rate <= 0 || l.last == 0 {
		return time.Time{}
	}
	have := min(burst, l.tokens+float64(max(t.UnixNano()-l.last, 0))/1e9*rate)
	if have >= need {
		return time.Time{}
	}
	return t.Add(time.Duration(math.Ceil((need - have) / rate * float64(time.Second))))
}

// reserve takes a message's token from the bucket at t, going into debt
// when there is none, and returns how long from t until the token is
// there (0: now). Reservations are served in the order they are made.
// A rate of 0 allows everything.
func (l *limiter) reserve(t time.Time, rate float64, burst int) time.Duration {
	if rate <= 0 {
		return 0
	}
	l.spend(t, 1, rate, float64(burst))
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / rate * float64(time.Second))
}

// reserveBy is reserve, but only for a token that is there by deadline:
// ok false, it takes nothing.
func (l *limiter) reserveBy(t, deadline time.Time, rate float64, burst int) (wait time.Duration, ok bool) {
	if at := l.readyAt(t, 1, rate, float64(burst)); at.After(deadline) {
		return 0, false
	}
	return l.reserve(t, rate, burst), true
}

// full reports whether the bucket has refilled to burst by t: it then
// holds nothing worth remembering.
func (l *limiter) full(t time.Time, rate float64, burst int) bool {
	return rate <= 0 || l.last == 0 || l.tokens+float64(t.UnixNano()-l.last)/1e9*rate >= float64(burst)
}

// lruTable holds a value for each of many keys, at most max of them.
// When it is full, the entry unused the longest makes room for a new key
// only if it holds nothing worth remembering (idle); otherwise the new key
// is refused: a sweep of new keys cannot reset what the table holds of
// anyone. The token buckets of senders (limiterTable) and the waits of
// addresses that gave wrong secrets (guesses) are kept so.
type lruTable[K comparable, V any] struct {
	max   int
	byKey map[K]*list.Element // of *lruEntry[K, V]; made on first need
	lru   list.List           // most recently used first
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

// find returns key's value, nil when it has none; it is no use of it.
func (lt *lruTable[K, V]) find(key K) *V {
	if e := lt.byKey[key]; e != nil {
		return &e.Value.(*lruEntry[K, V]).val
	}
	return nil
}

// full reports whether a new key would be refused: the table is full and
// the entry unused the longest is not idle.
func (lt *lruTable[K, V]) full(idle func(*V) bool) bool {
	return lt.lru.Len() >= lt.max && !idle(&lt.lru.Back().Value.(*lruEntry[K, V]).val)
}

// get returns key's value, a zero one if it had none, as its latest use;
// nil when the table is full (see full).
func (lt *lruTable[K, V]) get(key K, idle func(*V) bool) *V {
	if e := lt.byKey[key]; e != nil {
		lt.lru.MoveToFront(e)
		return &e.Value.(*lruEntry[K, V]).val
	}
	if lt.byKey == nil {
		lt.byKey = map[K]*list.Element{}
	}
	if lt.lru.Len() >= lt.max {
		e := lt.lru.Back()
		old := e.Value.(*lruEntry[K, V])
		if !idle(&old.val) {
			return nil
		}
		delete(lt.byKey, old.key)
		*old = lruEntry[K, V]{key: key}
		lt.byKey[key] = e
		lt.lru.MoveToFront(e)
		return &old.val
	}
	n := &lruEntry[K, V]{key: key}
	lt.byKey[key] = lt.lru.PushFront(n)
	return &n.val
}

// limiterTable holds the token buckets of many senders, at most max of
// them. A sender keeps its budget while it is in the table; when the
// table is full, the bucket unused the longest makes room only if it has
// refilled (it then holds nothing), and otherwise the new sender is
// refused: a sweep of new addresses cannot reset anyone's budget.
type limiterTable[K comparable] struct {
	tab lruTable[K, limiter]
}

func newLimiterTable[K comparable](max int) *limiterTable[K] {
	return &limiterTable[K]{lruTable[K, limiter]{max: max}}
}

// get returns key's bucket, or nil when the table is full of buckets
// still in use at t.
func (lt *limiterTable[K]) get(key K, t time.Time, rate float64, burst int) *limiter {
	return lt.tab.get(key, func(l *limiter) bool { return l.full(t, rate, burst) })
}
