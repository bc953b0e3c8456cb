package client

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// screen is a fake terminal: it keeps the rows it was written, and
// understands what the editor and a terminal driver send it: CR, LF
// (moved to the next row's start, as the driver's ONLCR does), ESC [ K
// (clear to the end of the row) and characters, written over what is
// there. A row longer than width wraps.
type screen struct {
	rows   [][]rune
	col    int
	width  int
	writes int
}

func newScreen(width int) *screen { return &screen{rows: [][]rune{nil}, width: width} }

func (s *screen) Write(p []byte) (int, error) {
	s.writes++
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		row := &s.rows[len(s.rows)-1]
		switch {
		case strings.HasPrefix(string(p[i:]), "\x1b[K"):
			*row, n = (*row)[:min(s.col, len(*row))], 3
		case r == '\r':
			s.col = 0
		case r == '\n':
			s.rows, s.col = append(s.rows, nil), 0
		case r < 0x20:
			panic(fmt.Sprintf("screen: control character %q", r))
		default:
			if s.col == s.width {
				s.rows, s.col = append(s.rows, nil), 0
				row = &s.rows[len(s.rows)-1]
			}
			for len(*row) <= s.col {
				*row = append(*row, ' ')
			}
			(*row)[s.col] = r
			s.col++
		}
		i += n
	}
	return len(p), nil
}

// lines returns the rows, the last one (the cursor's) included.
func (s *screen) lines() []string {
	var out []string
	for _, r := range s.rows {
		out = append(out, string(r))
	}
	return out
}

// newTestConsole is a console at a terminal of the given width: chat,
// status and the editor all write to one screen, as at a real terminal.
func newTestConsole(width int) (*console, *screen) {
	s := newScreen(width)
	c := &console{out: s, logf: func(f string, a ...any) { fmt.Fprintf(s, f+"\n", a...) }}
	c.ed = &editor{w: s, width: func() int { return width }, prompt: "lobby> "}
	c.redraw()
	return c, s
}

// What arrives while a line is typed goes above it; the line stays whole
// on the last row, and Enter leaves it on the screen.
func TestEditorKeepsTheLine(t *testing.T) {
	c, s := newTestConsole(80)
	if lines, eof := c.typed([]byte("hello, how a")); lines != nil || eof {
		t.Fatalf("typed: %q, %v", lines, eof)
	}
	c.chat([]byte("bob: are you there?\n"))
	c.errorf("!!! you are sending too fast")
	c.chat([]byte("* bob waves\n"))
	lines, _ := c.typed([]byte("re you\r"))
	if diff := cmp.Diff([]string{"hello, how are you"}, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	want := []string{
		"bob: are you there?",
		"!!! you are sending too fast",
		"* bob waves",
		"lobby> hello, how are you",
		"lobby> ",
	}
	if diff := cmp.Diff(want, s.lines()); diff != "" {
		t.Errorf("screen (-want +got):\n%s", diff)
	}
	c.prompt("kitchen> ")
	c.typed([]byte("x"))
	c.clear()
	if diff := cmp.Diff(append(want[:4:4], ""), s.lines()); diff != "" {
		t.Errorf("after clear (-want +got):\n%s", diff)
	}
}

func TestEditorKeys(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		lines      []string
		row        string // the last row after the keys
		eof        bool
	}{
		{"enter", "a\rb\nc", []string{"a", "b"}, "> c", false},
		{"empty lines", "\r\r", []string{"", ""}, "> ", false},
		{"backspace", "grüß\x7f\x7fn\x08x", nil, "> grx", false},
		{"backspace on empty", "\x7f\x08a", nil, "> a", false},
		{"ctrl-u", "hello\x15bye", nil, "> bye", false},
		{"ctrl-w", "one two  \x17three", nil, "> one three", false},
		{"arrows and keys ignored", "a\x1b[Ab\x1b[1;5Cc\x1bOPd\x1bxe", nil, "> abcde", false},
		{"control characters ignored", "a\x01\x02b\x07", nil, "> ab", false},
		{"tab is a space", "a\tb", nil, "> a b", false},
		{"ctrl-d ends an empty line", "hi\r\x04more", []string{"hi"}, "> ", true},
		{"ctrl-d in a line does nothing", "hi\x04", nil, "> hi", false},
		{"utf-8 split across reads", "\xc3", nil, "> \ufffd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScreen(80)
			e := &editor{w: s, width: func() int { return 80 }, prompt: "> "}
			lines, eof := e.input([]byte(tc.keys))
			if diff := cmp.Diff(tc.lines, lines); diff != "" || eof != tc.eof {
				t.Errorf("lines (-want +got):\n%s\neof %v, want %v", diff, eof, tc.eof)
			}
			rows := s.lines()
			if got := rows[len(rows)-1]; got != tc.row {
				t.Errorf("last row %q, want %q", got, tc.row)
			}
		})
	}
	// A character split across two reads is whole once its end arrives.
	s := newScreen(80)
	e := &editor{w: s, width: func() int { return 80 }, prompt: "> "}
	e.input([]byte("gr\xc3"))
	lines, _ := e.input([]byte("\xbc\xc3\x9fe\r"))
	if len(lines) != 1 || lines[0] != "grüße" {
		t.Errorf("lines %q, want grüße", lines)
	}
}

// A line longer than the row shows its end, so the row never wraps and
// an arriving message still takes it all off the screen; Enter shows it
// whole.
func TestEditorLongLine(t *testing.T) {
	c, s := newTestConsole(20)
	long := strings.Repeat("abcdefghij", 4) + "ü"
	c.typed([]byte(long))
	rows := s.lines()
	if got, want := rows[len(rows)-1], "lobby> jabcdefghijü"; got != want {
		t.Errorf("last row %q, want %q", got, want)
	}
	c.chat([]byte("bob: hi\n"))
	c.typed([]byte("\r"))
	want := []string{
		"bob: hi",
		"lobby> abcdefghijabc", // the whole line, wrapped by the terminal
		"defghijabcdefghijabc",
		"defghijü",
		"lobby> ",
	}
	if diff := cmp.Diff(want, s.lines()); diff != "" {
		t.Errorf("screen (-want +got):\n%s", diff)
	}
	// The line is bounded.
	e := &editor{w: newScreen(20), width: func() int { return 0 }}
	e.input([]byte(strings.Repeat("x", maxTyped+10)))
	if len(e.line) != maxTyped {
		t.Errorf("line of %d bytes, want %d", len(e.line), maxTyped)
	}
}

// Each key costs one write, however many characters it draws.
func TestEditorWrites(t *testing.T) {
	c, s := newTestConsole(80)
	before := s.writes
	c.typed([]byte("paste of a whole line at once"))
	if n := s.writes - before; n != 1 {
		t.Errorf("%d writes for one read, want 1", n)
	}
}
