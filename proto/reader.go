package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ErrLineTooLong is returned by [LineReader.ReadLine] for a line over the
// limit. The line has been discarded up to its end, so the next ReadLine
// starts at the next line: the stream stays in sync.
var ErrLineTooLong = errors.New("line too long")

// LineReader reads LF- or CRLF-ended lines of at most a fixed number of
// bytes from a stream, through one buffer allocated up front.
type LineReader struct {
	r       *bufio.Reader
	max     int
	discard bool // in the middle of an over-long line
}

// NewLineReader returns a reader of lines of at most max bytes (not
// counting the line end).
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, max+2), max: max}
}

// ReadLine returns the next line without its line end. The slice is valid
// until the next call. A last line without a line end is returned before
// io.EOF. After an error other than ErrLineTooLong (a timeout, say) a call
// may be repeated and goes on where the stream stands.
func (l *LineReader) ReadLine() ([]byte, error) {
	for {
		line, err := l.r.ReadSlice('\n')
		if l.discard {
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				return nil, err
			}
			l.discard = false
			return nil, ErrLineTooLong
		}
		switch {
		case err == bufio.ErrBufferFull:
			l.discard = true
			continue
		case err == io.EOF && len(line) > 0:
			return l.trim(line)
		case err != nil:
			return nil, err
		}
		return l.trim(line)
	}
}

func (l *LineReader) trim(line []byte) ([]byte, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > l.max {
		return nil, ErrLineTooLong
	}
	return line, nil
}

// Buffered reports how many bytes are read from the stream but not yet
// returned.
func (l *LineReader) Buffered() int { return l.r.Buffered() }
