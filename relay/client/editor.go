package client

import (
	"io"
	"unicode/utf8"
)

// maxTyped bounds the line being typed, in bytes; past it keys are
// ignored. It matches the longest input line read from a pipe.
const maxTyped = 64 << 10

// editor is the line being typed at a terminal in non-canonical mode: it
// echoes what is typed, hands back whole lines, and keeps the line on the
// terminal's last row below whatever is written meanwhile (above). It
// knows the terminal only as a writer and a width, so tests drive it
// with a fake one. It is not safe for concurrent use: console serialises
// it with everything else written to the terminal.
type editor struct {
	w      io.Writer  // the terminal
	width  func() int // its columns; 0 when not known
	prompt string
	line   []byte
	esc    int // escape sequence being skipped: 1 after ESC, 2 inside ESC [ or ESC O
}

// input takes the bytes typed, returns the lines they complete, and
// redraws the line being typed. eof is Ctrl-D on an empty line. Enter
// ends a line, Backspace deletes a character, Ctrl-U the line, Ctrl-W a
// word; Ctrl-L redraws; escape sequences (arrow keys and the like) and
// other control characters are ignored.
func (e *editor) input(p []byte) (lines []string, eof bool) {
	defer e.draw()
	for _, b := range p {
		switch {
		case e.esc == 1:
			e.esc = 0
			if b == '[' || b == 'O' {
				e.esc = 2
			}
			continue
		case e.esc == 2:
			if b >= 0x40 && b <= 0x7e { // the final byte
				e.esc = 0
			}
			continue
		}
		switch b {
		case '\r', '\n':
			// The line stays on the screen whole, as in canonical mode.
			io.WriteString(e.w, "\r\x1b[K"+e.prompt+string(e.line)+"\r\n")
			lines = append(lines, string(e.line))
			e.line = e.line[:0]
		case 0x7f, 0x08: // Backspace, Ctrl-H
			_, n := utf8.DecodeLastRune(e.line)
			e.line = e.line[:len(e.line)-n]
		case 0x15: // Ctrl-U
			e.line = e.line[:0]
		case 0x17: // Ctrl-W: the blanks before the cursor, then the word
			i := len(e.line)
			for i > 0 && e.line[i-1] == ' ' {
				i--
			}
			for i > 0 && e.line[i-1] != ' ' {
				i--
			}
			e.line = e.line[:i]
		case 0x04: // Ctrl-D
			if len(e.line) == 0 {
				return lines, true
			}
		case 0x1b:
			e.esc = 1
		case '\t':
			b = ' '
			fallthrough
		default:
			if b >= 0x20 && len(e.line) < maxTyped {
				e.line = append(e.line, b)
			}
		}
	}
	return lines, false
}

// above writes something above the line being typed: it takes the line
// off the screen, calls write, which must end its output with a newline,
// and draws the line again below.
func (e *editor) above(write func()) {
	e.clear()
	write()
	e.draw()
}

// setPrompt changes the prompt and redraws.
func (e *editor) setPrompt(p string) {
	e.prompt = p
	e.draw()
}

// clear takes the line being typed off the screen, leaving the cursor at
// the start of the empty row.
func (e *editor) clear() { io.WriteString(e.w, "\r\x1b[K") }

// draw shows the prompt and the line on the current row. A line too long
// for the row shows its end, so the row never wraps and one clear takes
// it all away. Characters count one column each.
func (e *editor) draw() {
	room := 79
	if w := e.width(); w > 0 {
		room = w - 1 // the cursor's column stays free
	}
	room -= utf8.RuneCountInString(e.prompt)
	shown := e.line
	for extra := utf8.RuneCount(shown) - max(room, 1); extra > 0; extra-- {
		_, n := utf8.DecodeRune(shown)
		shown = shown[n:]
	}
	io.WriteString(e.w, "\r\x1b[K"+e.prompt+string(shown))
}
