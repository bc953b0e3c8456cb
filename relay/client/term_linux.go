//go:build linux

package client

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"unsafe"
)

// terminal is the client's input when it is a terminal: put in
// non-canonical mode without echo for the editor, and put back as it was
// on every way out (see watch).
type terminal struct {
	f        *os.File
	w        io.Writer // where the editor draws: f, or /dev/tty when f is read-only
	old, raw syscall.Termios
}

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	return ioctl(f.Fd(), syscall.TCGETS, unsafe.Pointer(&t)) == nil
}

// openTerminal puts the terminal f in non-canonical mode without echo:
// keys arrive one by one and the editor echoes them. Ctrl-C, Ctrl-Z and
// Ctrl-\ still send their signals.
func openTerminal(f *os.File) (*terminal, error) {
	t := &terminal{f: f, w: f}
	if err := ioctl(f.Fd(), syscall.TCGETS, unsafe.Pointer(&t.old)); err != nil {
		return nil, err
	}
	if fl, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0); e == 0 && fl&syscall.O_ACCMODE == syscall.O_RDONLY {
		tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		t.w = tty
	}
	t.raw = t.old
	t.raw.Lflag &^= syscall.ICANON | syscall.ECHO | syscall.ECHONL | syscall.IEXTEN
	t.raw.Cc[syscall.VMIN], t.raw.Cc[syscall.VTIME] = 1, 0
	if err := t.setRaw(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *terminal) setRaw() error {
	return ioctl(t.f.Fd(), syscall.TCSETS, unsafe.Pointer(&t.raw))
}

// restore puts the terminal back as it was.
func (t *terminal) restore() {
	ioctl(t.f.Fd(), syscall.TCSETS, unsafe.Pointer(&t.old))
	if t.w != io.Writer(t.f) {
		t.w.(*os.File).Close()
	}
}

// width returns the terminal's columns, 0 when it does not say.
func (t *terminal) width() int {
	var ws struct{ row, col, x, y uint16 }
	if ioctl(t.f.Fd(), syscall.TIOCGWINSZ, unsafe.Pointer(&ws)) != nil {
		return 0
	}
	return int(ws.col)
}

// watch returns a context that ends with ctx or when the terminal hangs
// up (SIGHUP), so that the client ends and restores the terminal; SIGINT
// and SIGTERM end ctx itself (see main). After a stop (Ctrl-Z) and
// continue, the shell has put the terminal back in its own mode: watch
// makes it non-canonical again and calls redraw.
func (t *terminal) watch(ctx context.Context, redraw func()) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGCONT)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sig:
				if s == syscall.SIGHUP {
					cancel()
					return
				}
				t.setRaw()
				redraw()
			}
		}
	}()
	return ctx, cancel
}

// noEcho turns f's echo off, keeping its canonical mode (a line at a
// time, with its editing keys), for a secret to be typed; restore puts it
// back.
func noEcho(f *os.File) (restore func(), err error) {
	var old syscall.Termios
	if err := ioctl(f.Fd(), syscall.TCGETS, unsafe.Pointer(&old)); err != nil {
		return nil, err
	}
	quiet := old
	quiet.Lflag &^= syscall.ECHO
	quiet.Lflag |= syscall.ECHONL
	if err := ioctl(f.Fd(), syscall.TCSETS, unsafe.Pointer(&quiet)); err != nil {
		return nil, err
	}
	return func() { ioctl(f.Fd(), syscall.TCSETS, unsafe.Pointer(&old)) }, nil
}
