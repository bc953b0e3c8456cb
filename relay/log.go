package relay

import (
	"cmp"
	"net"
	"roomrelay/internal/fmtlite"
	"roomrelay/relay/config"
	"strings"
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
// words, and logs it as "what from ADDR dropped: why", each reason of
// each what at most once a second, and all the reasons of a what at most
// throttleKinds times a second, so that a flood cannot fill the log; what
// was held back is counted in the next line of that reason (or of that
// what).
func (s *Server) drop(n *atomic.Int64, what string, from net.Addr, why string) {
	n.Add(1)
	ok, more := s.drops.allow(what, why, time.Now())
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
// about the same subject (its arguments, an address without its port)
// has come too often this second (see throttle).
func (s *Server) log(level int, format string, args ...any) {
	if int32(level) < s.level.Load() {
		return
	}
	if format == leftFormat {
		s.logf("%s", levelNames[level]+": "+fmtlite.Sprintf(format, args...))
		return // one line per member that leaves, whatever the churn
	}
	ok, suppressed := s.logs.allow(format, subject(args), time.Now())
	if !ok {
		return
	}
	line := levelNames[level] + ": " + fmtlite.Sprintf(format, args...)
	if suppressed > 0 {
		line += fmtlite.Sprintf(" (%d more like it suppressed)", suppressed)
	}
	s.logf("%s", line)
}

// subject is what a log line is about, for the throttle: its arguments,
// each address without its port (a flood from one host is one subject
// whatever ports it uses), maxSubject bytes of them at most.
func subject(args []any) string {
	var b strings.Builder
	for _, a := range args {
		switch v := a.(type) {
		case net.Addr:
			host, _, err := net.SplitHostPort(v.String())
			if err != nil {
				host = v.String()
			}
			b.WriteString(host)
		default:
			b.Write(fmtlite.Append(nil, "%v", v))
		}
		b.WriteByte(0)
		if b.Len() > maxSubject {
			return strings.Clone(b.String()[:maxSubject]) // subjects that differ only past it count as one
		}
	}
	return b.String()
}

// maxSubject bounds a subject as the throttle keeps it: a line may quote
// what a client sent, up to Limits.MaxLineBytes, and the table keeps
// throttleSubjects of them.
const maxSubject = 256

// leftFormat is the line logged when a member leaves: never throttled,
// since each stands for a member (connections are bounded by
// Limits.MaxClients, and each took a name first).
const leftFormat = "%s %s: %s left: %s"

// throttle limits each kind of log line about each subject to burst (0:
// throttleBurst) a second, and each kind to throttleKinds bursts a second
// whatever its subjects, so that a flood of bad input, from one address
// or from many, cannot fill the log. What it holds back is counted, and
// the count is said with the next line of that kind and subject (or of
// that kind, for a subject it had no room to track).
type throttle struct {
	burst int // set once
	mu    sync.Mutex
	lines map[string]*throttled // by kind, and by kind and subject
	swept time.Time             // the second of the last sweep of a full table: see entry
}

type throttled struct {
	second     time.Time
	n          int
	suppressed int
}

const (
	throttleBurst    = 10
	throttleKinds    = 5    // a kind's lines a second, whatever their subjects, in bursts
	throttleSubjects = 1024 // kinds and subjects tracked at most
)

// allow reports whether a line of this kind about subject may be written
// now, and how many were suppressed before it.
func (t *throttle) allow(kind, subject string, now time.Time) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lines == nil {
		t.lines = map[string]*throttled{}
	}
	sec := now.Truncate(time.Second)
	k := t.entry(kind, sec)
	e := t.entry(kind+"\x00"+subject, sec)
	if e == nil {
		e = k // no room to track the subject: it is counted with its kind
	}
	if k == nil {
		return false, 0 // no room even for its kind: a flood of kinds
	}
	burst := cmp.Or(t.burst, throttleBurst)
	if e.n >= burst || k.n >= burst*throttleKinds {
		e.suppressed++
		return false, 0
	}
	e.n++
	if e != k {
		k.n++
	}
	suppressed, e.suppressed = e.suppressed, 0
	if e != k {
		suppressed, k.suppressed = suppressed+k.suppressed, 0
	}
	return true, suppressed
}

// entry returns key's counts for sec, tracking key if need be: when the
// table is full, the lines of past seconds make room, but for a kind's
// own that has something suppressed; a subject's count of suppressed
// lines then goes to its kind's, said with the kind's next line (so that
// subjects that flooded once and went quiet cannot hold the table, and
// keep new kinds of lines out, for good). The table is swept once a
// second at most: what a sweep leaves is of its second, or a kind's own,
// until the next. nil when nothing makes room. Called with mu held.
func (t *throttle) entry(key string, sec time.Time) *throttled {
	e := t.lines[key]
	if e == nil {
		if len(t.lines) >= throttleSubjects {
			if sec.Equal(t.swept) {
				return nil
			}
			t.swept = sec
			for k, old := range t.lines {
				if !old.second.Before(sec) {
					continue
				}
				if old.suppressed > 0 {
					kind, _, ok := strings.Cut(k, "\x00")
					if !ok {
						continue // a kind: its count waits for its next line
					}
					ke := t.lines[kind]
					if ke == nil {
						ke = &throttled{second: old.second}
						t.lines[kind] = ke
					}
					ke.suppressed += old.suppressed
				}
				delete(t.lines, k)
			}
			if len(t.lines) >= throttleSubjects {
				return nil
			}
		}
		e = &throttled{second: sec}
		t.lines[key] = e
	}
	if !sec.Equal(e.second) {
		e.second, e.n = sec, 0
	}
	return e
}
