package relay

import (
	"cmp"
	"fmt"
	"net"
	"roomrelay/relay/config"
	"sync"
	"sync/atomic"
	"time"
)

// Log levels, lowest first.
const (
	LevelDebug = iota
	LevelInfo
	LevelWarn
	LevelError
)

var levelNames = config.LogLevels

// parseLevel returns the level called name; "" and unknown names are info
// (the config is validated before it gets here).
func parseLevel(name string) int {
	for l, n := range levelNames {
		if n == name {
			return l
		}
	}
	return LevelInfo
}

func (s *Server) debugf(format string, args ...any) { s.log(LevelDebug, format, args...) }
func (s *Server) infof(format string, args ...any)  { s.log(LevelInfo, format, args...) }
func (s *Server) warnf(format string, args ...any)  { s.log(LevelWarn, format, args...) }
func (s *Server) errorf(format string, args ...any) { s.log(LevelError, format, args...) }

// drop counts, in n, a message lost at a door for why, a reason in a few
// fixed words, and logs it as "what from ADDR dropped: why", each reason
// of each what at most once a second so that a flood cannot fill the log.
func (s *Server) drop(n *atomic.Int64, what string, from net.Addr, why string) {
	n.Add(1)
	ok, more := s.drops.allow(what+": "+why, time.Now())
	switch {
	case !ok:
	case more > 0:
		s.warnf("%s from %s dropped: %s (%d more since)", what, from, why, more)
	default:
		s.warnf("%s from %s dropped: %s", what, from, why)
	}
}

// log writes one line "LEVEL: text" through the server's Logf, unless the
// level is below the configured one or the same kind of line (by format)
// has come too often this second.
func (s *Server) log(level int, format string, args ...any) {
	if int32(level) < s.level.Load() {
		return
	}
	if format == leftFormat {
		s.logf("%s", levelNames[level]+": "+fmt.Sprintf(format, args...))
		return // one line per member that leaves, whatever the churn
	}
	ok, suppressed := s.logs.allow(format, time.Now())
	if !ok {
		return
	}
	line := levelNames[level] + ": " + fmt.Sprintf(format, args...)
	if suppressed > 0 {
		line += fmt.Sprintf(" (%d more like it suppressed)", suppressed)
	}
	s.logf("%s", line)
}

// leftFormat is the line logged when a member leaves: never throttled,
// since each stands for a member (connections are bounded by
// Limits.MaxClients, and each took a name first).
const leftFormat = "%s %s: %s left: %s"

// throttle limits each kind of log line to burst (0: throttleBurst) a
// second, so that a flood of bad input cannot fill the log.
type throttle struct {
	burst int // set once
	mu    sync.Mutex
	kinds map[string]*throttled
}

type throttled struct {
	second     time.Time
	n          int
	suppressed int
}

const (
	throttleBurst = 10
	throttleKinds = 256 // kinds tracked before the table starts over
)

// allow reports whether a line of this kind may be written now, and how
// many of its kind were suppressed before it.
func (t *throttle) allow(kind string, now time.Time) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kinds == nil || len(t.kinds) >= throttleKinds {
		t.kinds = map[string]*throttled{}
	}
	k := t.kinds[kind]
	if k == nil {
		k = &throttled{}
		t.kinds[kind] = k
	}
	if sec := now.Truncate(time.Second); !sec.Equal(k.second) {
		k.second, k.n = sec, 0
	}
	k.n++
	if k.n > cmp.Or(t.burst, throttleBurst) {
		k.suppressed++
		return false, 0
	}
	suppressed, k.suppressed = k.suppressed, 0
	return true, suppressed
}
