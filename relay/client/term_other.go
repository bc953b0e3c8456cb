//go:build !linux

package client

import (
	"context"
	"errors"
	"io"
	"os"
)

// terminal is a terminal in non-canonical mode; only Linux has one here
// (see term_linux.go). Elsewhere a terminal keeps its canonical mode: the
// client asks again for a taken name and shows its status, but an
// arriving message may land in the middle of a line being typed.
type terminal struct {
	w io.Writer
}

// isTerminal reports whether f looks like a terminal: a character device.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func openTerminal(*os.File) (*terminal, error) {
	return nil, errors.New("no line editing on this system")
}

func (t *terminal) restore()   {}
func (t *terminal) width() int { return 0 }

func (t *terminal) watch(ctx context.Context, _ func()) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

// noEcho cannot turn echo off here: a secret typed at a terminal shows.
func noEcho(*os.File) (func(), error) {
	return nil, errors.New("cannot turn the terminal's echo off on this system")
}
