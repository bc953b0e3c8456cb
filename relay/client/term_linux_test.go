//go:build linux

package client

import (
	"context"
	"fmt"
	"os"
	"roomrelay/relay/internal/testkit"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPty returns a new pseudo-terminal: the side a terminal emulator
// holds, and the terminal a program runs in.
func openPty(t *testing.T) (emulator, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock, n uint32
	if err := ioctl(m.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	if err := ioctl(m.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open the pty's terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func termios(t *testing.T, f *os.File) syscall.Termios {
	t.Helper()
	var tio syscall.Termios
	if err := ioctl(f.Fd(), syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	return tio
}

// TestTerminal runs the client in a pseudo-terminal, as a person would:
// a taken name is asked again, what arrives while a line is typed goes
// above it, and the terminal is as it was when the client ends.
func TestTerminal(t *testing.T) {
	emu, tty := openPty(t)
	if !isTerminal(tty) {
		t.Fatal("the pty is not a terminal")
	}
	before := termios(t, tty)
	screen := &testkit.Buffer{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := emu.Read(b)
			screen.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	s := startRelay(t)
	addr := s.Addr("line").String()
	dave := dialMember(t, addr, "dave")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	logf := func(f string, a ...any) { fmt.Fprintf(tty, f+"\n", a...) }
	go func() { done <- Run(ctx, clientConfig(addr, "dave"), tty, tty, logf) }()
	testkit.WaitFor(t, 10*time.Second, "the question", func() bool { return strings.Contains(screen.String(), "type another name") })
	if raw := termios(t, tty); raw.Lflag&(syscall.ICANON|syscall.ECHO) != 0 || raw.Lflag&syscall.ISIG == 0 {
		t.Errorf("terminal flags %#x: want ICANON and ECHO off, ISIG on", raw.Lflag)
	}
	emu.WriteString("erin\r")
	dave.until(t, "--- erin joined lobby")
	emu.WriteString("half a li")
	testkit.WaitFor(t, 10*time.Second, "the echo", func() bool { return strings.HasSuffix(screen.String(), "lobby> half a li") })
	fmt.Fprintln(dave.c, "hello erin")
	testkit.WaitFor(t, 10*time.Second, "the redrawn line", func() bool { return strings.HasSuffix(screen.String(), "dave: hello erin\r\n\r\x1b[Klobby> half a li") })
	emu.WriteString("ne\r")
	dave.until(t, "erin: half a line")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not end")
	}
	if after := termios(t, tty); after != before {
		t.Errorf("terminal not restored:\nbefore %+v\nafter  %+v", before, after)
	}

	testkit.WaitFor(t, 10*time.Second, "the line taken off the screen", func() bool { return strings.HasSuffix(screen.String(), "lobby> \r\x1b[K") })
	// The screen as a terminal shows it: every line whole.
	rows := newScreen(80)
	rows.Write([]byte(strings.ReplaceAll(screen.String(), "\r\n", "\n")))
	got := strings.Join(rows.lines(), "\n")
	for _, want := range []string{
		"client: the name dave is taken; type another name\nname: erin\n",
		"\ndave: hello erin\nlobby> half a line\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("screen lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(got, "\n") {
		t.Errorf("the last row is not empty at the end:\n%s", got)
	}
}
