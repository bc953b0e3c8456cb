package errlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

type myErr struct{ s string }

func (e *myErr) Error() string { return e.s }

// asErr gives a *myErr to As(any) without being one.
type asErr struct{}

func (asErr) Error() string { return "as" }
func (asErr) As(target any) bool {
	if p, ok := target.(**myErr); ok {
		*p = &myErr{"from As"}
		return true
	}
	return false
}

// TestAsLikeErrors: As finds what errors.As finds, in chains of wraps
// and joins, through As methods, and nothing where it finds nothing.
func TestAsLikeErrors(t *testing.T) {
	pe := &fs.PathError{Op: "read", Path: "/x", Err: syscall.ECONNRESET}
	mine := &myErr{"mine"}
	errs := []error{
		nil,
		pe,
		fmt.Errorf("wrapped: %w", pe),
		fmt.Errorf("twice: %w", fmt.Errorf("once: %w", pe)),
		errors.Join(errors.New("a"), fmt.Errorf("b: %w", mine), pe),
		fmt.Errorf("%w and %w", errors.New("a"), mine),
		errors.Join(nil, errors.New("a")),
		asErr{},
		fmt.Errorf("wrapped: %w", asErr{}),
		os.ErrClosed,
		syscall.EPIPE,
		&os.SyscallError{Syscall: "write", Err: syscall.EPIPE},
	}
	for _, err := range errs {
		var wantPE *fs.PathError
		gotPE, ok := As[*fs.PathError](err)
		if want := errors.As(err, &wantPE); ok != want || gotPE != wantPE {
			t.Errorf("As[*fs.PathError](%v) = %v, %v; errors.As: %v, %v", err, gotPE, ok, wantPE, want)
		}
		var wantErrno syscall.Errno
		gotErrno, ok := As[syscall.Errno](err)
		if want := errors.As(err, &wantErrno); ok != want || gotErrno != wantErrno {
			t.Errorf("As[syscall.Errno](%v) = %v, %v; errors.As: %v, %v", err, gotErrno, ok, wantErrno, want)
		}
		var wantMine *myErr
		gotMine, ok := As[*myErr](err)
		if want := errors.As(err, &wantMine); ok != want || (gotMine == nil) != (wantMine == nil) || ok && gotMine.s != wantMine.s {
			t.Errorf("As[*myErr](%v) = %v, %v; errors.As: %v, %v", err, gotMine, ok, wantMine, want)
		}
		var wantIface interface{ Timeout() bool }
		gotIface, ok := As[interface {
			error
			Timeout() bool
		}](err)
		if want := errors.As(err, &wantIface); ok != want || ok && gotIface != wantIface {
			t.Errorf("As[Timeout](%v) = %v, %v; errors.As: %v, %v", err, gotIface, ok, wantIface, want)
		}
	}
}
