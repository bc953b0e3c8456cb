package client

import (
	"io"
	"roomrelay/relay/config"
	"sync"
)

// console is where everything the client shows goes. Chat, what the room
// holds (messages, actions, private messages, joins and parts), goes to
// out; status, the relay's notices and errors and the client's own lines,
// goes to logf (stderr). Errors always show; the rest of the status only
// when not quiet. At a terminal in non-canonical mode, ed keeps the line
// being typed below what arrives. Every write takes mu, from whichever
// goroutine it comes.
type console struct {
	mu    sync.Mutex
	out   io.Writer
	logf  config.Logf
	quiet bool    // set once
	ed    *editor // set once; nil without line editing
}

// chat writes one line of the room's, newline included, to out.
func (c *console) chat(line []byte) {
	c.write(func() { c.out.Write(line) })
}

// status writes a status line, unless quiet.
func (c *console) status(format string, args ...any) {
	if !c.quiet {
		c.write(func() { c.logf(format, args...) })
	}
}

// errorf writes a status line that shows even when quiet.
func (c *console) errorf(format string, args ...any) {
	c.write(func() { c.logf(format, args...) })
}

func (c *console) write(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ed != nil {
		c.ed.above(f)
	} else {
		f()
	}
}

// typed passes keys to the editor: see editor.input.
func (c *console) typed(p []byte) (lines []string, eof bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ed.input(p)
}

// prompt sets the editor's prompt, when there is an editor.
func (c *console) prompt(p string) { c.withEditor(func(e *editor) { e.setPrompt(p) }) }

// redraw draws the line being typed again, after the terminal was away
// (the client stopped and continued), and clear takes it off the screen
// for good: the client is ending.
func (c *console) redraw() { c.withEditor((*editor).draw) }
func (c *console) clear()  { c.withEditor((*editor).clear) }

func (c *console) withEditor(f func(*editor)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ed != nil {
		f(c.ed)
	}
}
