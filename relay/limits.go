package relay

import "time"

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
