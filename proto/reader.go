package proto

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// ErrLineTooLong is returned by [LineReader.ReadLine] for a line over the
// limit. The line has been discarded up to its end, so the next ReadLine
// starts at the next line: the stream stays in sync.
var ErrLineTooLong = errors.New("line too long")

// lineBufStart is the size a LineReader's buffer starts at: a connection
// that has sent a line and nothing since holds none (see smallBufs). It doubles while reads fill it, for a long
// line or a client streaming lines (which then gets fewer, larger reads),
// up to the line limit or lineBufStream, whichever is more, and falls
// back once the connection is quiet again.
const lineBufStart = 128

// smallBufs holds the buffers of lineBufStart bytes that quiet readers
// gave back: a connection that has nothing to read holds no buffer.
var smallBufs = sync.Pool{New: func() any { return new([lineBufStart]byte) }}

// lineBufStream is how far the buffer may grow for a client that
// streams, past a smaller line limit: one read takes many lines.
const lineBufStream = 16 << 10

// LineReader reads LF- or CRLF-ended lines of at most a fixed number of
// bytes from a stream. Its buffer grows with the lines and reads it
// meets, within the bound above.
type LineReader struct {
	r       io.Reader
	max     int
	buf     []byte
	start   int // buf[start:end] is read but not yet returned
	end     int
	scanned int   // bytes after start known to hold no '\n'
	err     error // a read error to return once the buffer is used up
	discard bool  // in the middle of an over-long line
	full    bool  // the last read filled the buffer
	quiet   bool  // the last read was small
}

// NewLineReader returns a reader of lines of at most max bytes (not
// counting the line end).
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{r: r, max: max}
}

// ReadLine returns the next line without its line end. The slice is valid
// until the next call. A last line without a line end is returned before
// io.EOF. After an error other than ErrLineTooLong (a timeout, say) a call
// may be repeated and goes on where the stream stands.
func (l *LineReader) ReadLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(l.buf[l.start+l.scanned:l.end], '\n'); i >= 0 {
			line := l.buf[l.start : l.start+l.scanned+i]
			l.start += l.scanned + i + 1
			l.scanned = 0
			if l.discard {
				l.discard = false
				return nil, ErrLineTooLong
			}
			return l.trim(line)
		}
		l.scanned = l.end - l.start
		if l.discard || l.scanned > l.max+1 { // +1: room for a CR
			l.discard = true
			l.start, l.end, l.scanned = 0, 0, 0
		}
		if err := l.err; err != nil {
			l.err = nil
			if err == io.EOF && l.discard { // a last line, over the limit
				l.discard, l.err = false, io.EOF
				return nil, ErrLineTooLong
			}
			if err == io.EOF && l.end > l.start {
				line := l.buf[l.start:l.end]
				l.start, l.scanned = l.end, 0
				l.err = io.EOF
				return l.trim(line)
			}
			if l.start == l.end && len(l.buf) == lineBufStart {
				// Nothing to read now, nothing kept: the buffer goes back
				// until there is (an idle member holds none).
				smallBufs.Put((*[lineBufStart]byte)(l.buf))
				l.buf, l.start, l.end = nil, 0, 0
			}
			return nil, err
		}
		l.fill()
	}
}

// Idle reports whether l holds nothing: no buffer, no part of a line,
// no error to return. An idle reader may be Reset for another stream.
func (l *LineReader) Idle() bool { return l.buf == nil && l.err == nil && !l.discard }

// Reset makes l a reader of r as NewLineReader(r, max) would make it.
func (l *LineReader) Reset(r io.Reader, max int) { *l = LineReader{r: r, max: max} }

// Buffered returns how many bytes were read from the stream and not yet
// returned in lines.
func (l *LineReader) Buffered() int { return l.end - l.start }

// fill reads once into the buffer, making room first.
func (l *LineReader) fill() {
	if l.start == l.end && len(l.buf) > lineBufStart && l.quiet {
		l.buf = nil // the connection is quiet: fall back to a small buffer
		l.start, l.end = 0, 0
	}
	if l.start > 0 {
		n := copy(l.buf, l.buf[l.start:l.end])
		l.start, l.end = 0, n
	}
	if most := max(l.max+2, lineBufStream); l.end == len(l.buf) || l.full && len(l.buf) < most {
		size := min(max(2*len(l.buf), lineBufStart), most)
		if size <= len(l.buf) { // full at the limit: only while discarding
			l.start, l.end, l.scanned = 0, 0, 0
		} else if size == lineBufStart {
			l.buf = smallBufs.Get().(*[lineBufStart]byte)[:] // l.end is 0
		} else {
			buf := make([]byte, size)
			copy(buf, l.buf[:l.end])
			l.buf = buf
		}
	}
	n, err := l.r.Read(l.buf[l.end:])
	l.end += n
	l.err = err
	l.full = l.end == len(l.buf)
	l.quiet = n < lineBufStart/2
}

func (l *LineReader) trim(line []byte) ([]byte, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > l.max {
		return nil, ErrLineTooLong
	}
	return line, nil
}
