package relay

import (
	"container/list"
	"time"
)

// limiter is a token bucket of messages, owned by one session goroutine.
type limiter struct {
	tokens  float64
	last    time.Time
	refused int // messages refused in a row
}

// allow reports whether a message at t fits rate per second with burst.
// A rate of 0 allows everything.
func (l *limiter) allow(t time.Time, rate float64, burst int) bool {
	if rate <= 0 {
		return true
	}
	if l.last.IsZero() {
		l.tokens = float64(burst)
	} else {
		l.tokens = min(float64(burst), l.tokens+t.Sub(l.last).Seconds()*rate)
	}
	l.last = t
	if l.tokens < 1 {
		l.refused++
		return false
	}
	l.tokens--
	l.refused = 0
	return true
}

// reserve takes a message's token from the bucket at t, going into debt
// when there is none, and returns how long from t until the token is
// there (0: now). Reservations are served in the order they are made.
// A rate of 0 allows everything.
func (l *limiter) reserve(t time.Time, rate float64, burst int) time.Duration {
	if rate <= 0 {
		return 0
	}
	if l.last.IsZero() {
		l.tokens = float64(burst)
	} else if t.After(l.last) {
		l.tokens = min(float64(burst), l.tokens+t.Sub(l.last).Seconds()*rate)
	}
	if t.After(l.last) {
		l.last = t
	}
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / rate * float64(time.Second))
}

// full reports whether the bucket has refilled to burst by t: it then
// holds nothing worth remembering.
func (l *limiter) full(t time.Time, rate float64, burst int) bool {
	return rate <= 0 || l.last.IsZero() || l.tokens+t.Sub(l.last).Seconds()*rate >= float64(burst)
}

// limiterTable holds the token buckets of many senders, at most max of
// them. A sender keeps its budget while it is in the table; when the
// table is full, the bucket unused the longest makes room only if it has
// refilled (it then holds nothing), and otherwise the new sender is
// refused: a sweep of new addresses cannot reset anyone's budget.
type limiterTable[K comparable] struct {
	max   int
	byKey map[K]*list.Element // of *keyed[K]
	lru   list.List           // most recently used first
}

type keyed[K comparable] struct {
	key K
	limiter
}

func newLimiterTable[K comparable](max int) *limiterTable[K] {
	return &limiterTable[K]{max: max, byKey: map[K]*list.Element{}}
}

// get returns key's bucket, or nil when the table is full of buckets
// still in use at t.
func (lt *limiterTable[K]) get(key K, t time.Time, rate float64, burst int) *limiter {
	if e := lt.byKey[key]; e != nil {
		lt.lru.MoveToFront(e)
		return &e.Value.(*keyed[K]).limiter
	}
	if lt.lru.Len() >= lt.max {
		e := lt.lru.Back()
		old := e.Value.(*keyed[K])
		if !old.full(t, rate, burst) {
			return nil
		}
		delete(lt.byKey, old.key)
		old.key, old.limiter = key, limiter{}
		lt.byKey[key] = e
		lt.lru.MoveToFront(e)
		return &old.limiter
	}
	k := &keyed[K]{key: key}
	lt.byKey[key] = lt.lru.PushFront(k)
	return &k.limiter
}
