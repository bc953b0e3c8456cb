package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"time"
)

// stopCtx is a context.Context that ends when stop is called, once: all
// that roomrelay's own contexts need. signal.NotifyContext and
// context.WithTimeout bring package context's cancellation tree, about
// 20 KB of a mipsle binary.
type stopCtx struct {
	deadline time.Time // set once; zero: none
	done     chan struct{}
	once     sync.Once
	err      error // set before done is closed
}

func newStopCtx(deadline time.Time) *stopCtx {
	return &stopCtx{deadline: deadline, done: make(chan struct{})}
}

func (c *stopCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }
func (c *stopCtx) Done() <-chan struct{}       { return c.done }
func (c *stopCtx) Value(any) any               { return nil }

func (c *stopCtx) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// stop ends c with err, unless it has ended.
func (c *stopCtx) stop(err error) { c.once.Do(func() { c.err = err; close(c.done) }) }

// onSignal is signal.NotifyContext(context.Background(), sigs...): a
// context that ends on the first of sigs, and the function that stops
// listening for them and ends it.
func onSignal(sigs ...os.Signal) (context.Context, func()) {
	c := newStopCtx(time.Time{})
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case <-ch:
			c.stop(context.Canceled)
		case <-c.done:
		}
	}()
	return c, func() {
		signal.Stop(ch)
		c.stop(context.Canceled)
	}
}

// withTimeout is context.WithTimeout(context.Background(), d).
func withTimeout(d time.Duration) (context.Context, func()) {
	c := newStopCtx(time.Now().Add(d))
	t := time.AfterFunc(d, func() { c.stop(context.DeadlineExceeded) })
	return c, func() {
		t.Stop()
		c.stop(context.Canceled)
	}
}
