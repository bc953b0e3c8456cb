// Package testkit holds what roomrelay's tests share: waiting for a
// condition within a deadline, a buffer that a test reads while it is
// written, a log that keeps its lines, and a check that no goroutine
// outlives a test. Only tests import it.
package testkit

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitFor polls cond until it holds, or fails the test with every
// goroutine's stack once d has passed. It waits on a condition, never on
// a duration: the polling interval only paces the checks.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("timed out waiting for %s\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

// NoLeaks checks, when the test ends, that every goroutine started since
// it was called has ended (within five seconds).
func NoLeaks(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		WaitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	})
}

// Buffer is an io.Writer that a test may read while others write it.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines returns the complete lines written so far.
func (b *Buffer) Lines() []string {
	s := b.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// Has reports whether a line written so far contains sub.
func (b *Buffer) Has(sub string) bool {
	for _, l := range b.Lines() {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// Logf writes one line, as a log function that tests read.
func (b *Buffer) Logf(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }

// Log is a log function's target: it keeps the lines and passes them on
// to the test's log.
type Log struct {
	t testing.TB
	Buffer
}

// NewLog returns a Log that also writes to t's log.
func NewLog(t testing.TB) *Log { return &Log{t: t} }

// Logf logs one line.
func (l *Log) Logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	l.t.Log(s)
	l.Write([]byte(s + "\n"))
}
