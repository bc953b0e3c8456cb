package fmtlite

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestLikeFmt: each format of the kinds the relay writes reads as fmt
// writes it.
func TestLikeFmt(t *testing.T) {
	errNo := errors.New("no such room")
	for _, tc := range []struct {
		format string
		args   []any
	}{
		{"plain", nil},
		{"100%% sure", nil},
		{"%s and %v", []any{"text", "more"}},
		{"%q, %.3q", []any{"é\n\"x\"", "abcdef"}},
		{"%d %d %d %d %d", []any{0, -12, int64(-1 << 62), uint8(200), uint64(1<<64 - 1)}},
		{"%x %X %08x %016x %#x", []any{255, 255, uint32(0xbeef), uint64(1), 16}},
		{"%q %q", []any{'!', byte('x')}},
		{"U+%04X", []any{'\u200b'}},
		{"%-9s|%5s|%5d|%-5d|", []any{"client", "ab", 42, 42}},
		{"%g %g %v %.1f %.0f %f", []any{1.5, 1e6, 0.25, 2.25, 2.5, 1.0}},
		{"%v %v", []any{true, false}},
		{"%v %s %d", []any{5 * time.Second, 1500 * time.Millisecond, 3 * time.Second}},
		{"%v", []any{nil}},
		{"%v; %s; %q", []any{errNo, errNo, errNo}},
		{"%v %s", []any{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddrPort("[::1]:80")}},
		{"%v %s %q", []any{[]string{"a", "b"}, []string{}, []string{"x y"}}},
		{"%s %x", []any{[]byte("hi"), []byte{1, 0xab}}},
		{"%x", []any{"Ab"}},
		{"%.2s", []any{"éèa"}},
		{"%v", []any{fs.ErrNotExist}},
		{"%d %s", []any{7}},
		{"%s", []any{"a", 3}},
		{"%d", []any{"text"}},
	} {
		want := fmt.Sprintf(tc.format, tc.args...)
		if got := Sprintf(tc.format, tc.args...); got != want && !(isBad(want) && isBad(got)) {
			t.Errorf("Sprintf(%q, %#v) = %q, fmt: %q", tc.format, tc.args, got, want)
		}
	}
	// A kind it does not know is marked, never guessed at.
	if got := Sprintf("%s", struct{}{}); got != "%!s(?)" {
		t.Errorf("a struct: %q", got)
	}
}

// isBad reports a format that fmt and fmtlite both mark as wrong (they
// need not say the same about it).
func isBad(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '!' {
			return true
		}
	}
	return false
}

// TestErrorf: %w wraps, one operand or several, as with fmt.Errorf.
func TestErrorf(t *testing.T) {
	inner := &os.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}
	err := Errorf("store %s: %w", "kitchen", inner)
	if want := fmt.Errorf("store %s: %w", "kitchen", inner).Error(); err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not wrap %v", err, inner)
	}
	two := Errorf("%w; %w", fs.ErrExist, fs.ErrPermission)
	if !errors.Is(two, fs.ErrExist) || !errors.Is(two, fs.ErrPermission) {
		t.Errorf("%v does not wrap both", two)
	}
	if errors.Unwrap(Errorf("no %s", "wrap")) != nil {
		t.Error("an error without %w wraps something")
	}
}

// TestUnhex: the inverse of %x, and the bytes before a bad digit.
func TestUnhex(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"", "", true},
		{"6869", "hi", true},
		{"4A4b", "JK", true},
		{"686", "h", false},
		{"68zz69", "h", false},
	} {
		got, ok := Unhex(tc.in)
		if string(got) != tc.want || ok != tc.ok {
			t.Errorf("Unhex(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got, _ := Unhex(Sprintf("%x", "kitchen")); string(got) != "kitchen" {
		t.Errorf("round trip: %q", got)
	}
}

// TestSprintfAllocatesResultOnly: a line of up to 128 bytes is formatted
// on the stack, each operand straight into it, and costs one allocation:
// the string returned. Longer lines still read as fmt writes them.
func TestSprintfAllocatesResultOnly(t *testing.T) {
	name, room := "alice smith", "lobby"
	var got string
	allocs := testing.AllocsPerRun(100, func() {
		got = Sprintf("you are %s in %s with %d other%s (last event %s)", name, room, 7, "s", "1a2b:42")
	})
	if want := "you are alice smith in lobby with 7 others (last event 1a2b:42)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if allocs > 1 {
		t.Errorf("%v allocations, want 1", allocs)
	}
	long := string(make([]byte, 300))
	if got, want := Sprintf("%s|%5d|%s", long, 42, long), fmt.Sprintf("%s|%5d|%s", long, 42, long); got != want {
		t.Errorf("a line of %d bytes: %d bytes, fmt: %d", len(want), len(got), len(want))
	}
}

// TestHexDigit: HexDigit takes as a digit just what strconv takes in
// base 16, each byte with its value.
func TestHexDigit(t *testing.T) {
	for c := range 256 {
		d, ok := HexDigit(byte(c))
		want, err := strconv.ParseUint(string(rune(c)), 16, 8)
		if ok != (err == nil) || ok && uint64(d) != want {
			t.Errorf("HexDigit(%q) = %d, %v; want %d, %v", byte(c), d, ok, want, err == nil)
		}
	}
}
