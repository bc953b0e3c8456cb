//go:build !minimal

package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"roomrelay/proto"
)

// The HTTP door's own HTTP/1.1 server: net/http parses each request
// (http.ReadRequest) and the door's handlers are http.Handlers, but the
// connections are the relay's (accepted by its doors, admitted by
// admit.go) and served here, without http.Server, which would bring TLS
// and HTTP/2 into the binary (over 1.5 MiB for mipsle). Responses are
// buffered and sent with their length, so a connection is kept alive
// between requests; an event stream (a handler that flushes) is sent as
// it comes and ends the connection.

// serve admits c, or refuses it with a 503, and serves its requests on a
// goroutine of its own until it closes, is idle for httpIdle, or the door
// closes (stop).
func (d *httpDoor) serve(c net.Conn, stop <-chan struct{}) {
	s := d.s
	if r := s.admit(c); r.why != "" {
		s.refuseIn("http", c, r, func(e *proto.Event) []byte {
			body := proto.AppendError(nil, e.Text)
			return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		})
		return
	}
	accepted := time.Now()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.release(c)
		if _, ok := c.(handshaker); ok && !s.handshake(c, "https", accepted.Add(s.conf().Timeouts.Handshake.D())) {
			return
		}
		done := make(chan struct{})
		defer close(done)
		go func() { // the door closing ends a connection waiting for a request
			select {
			case <-stop:
				c.SetReadDeadline(time.Unix(1, 0))
			case <-done:
			}
		}()
		d.conn(c, stop)
	}()
}

// conn serves c's requests one after another.
func (d *httpDoor) conn(c net.Conn, stop <-chan struct{}) {
	h := d.handler(stop)
	lr := &io.LimitedReader{R: c}
	br := bufio.NewReaderSize(lr, 4<<10)
	for n := 0; ; n++ {
		start := time.Now()
		if n > 0 { // kept alive: the next request may take httpIdle to come
			c.SetReadDeadline(start.Add(httpIdle))
			if _, err := br.Peek(1); err != nil {
				return
			}
			select {
			case <-stop:
				return
			default:
			}
			start = time.Now()
		}
		c.SetReadDeadline(start.Add(min(httpReadHeader, d.s.conf().Timeouts.Handshake.D()))) // a slowloris is cut as in every door
		lr.N = httpMaxHeader - int64(br.Buffered())                                          // what is read of the request already counts
		req, err := http.ReadRequest(br)
		if err != nil {
			status, msg := http.StatusBadRequest, "bad request: "+err.Error()
			switch {
			case lr.N <= 0: // cut off by the bound: what ReadRequest says is an unexpected EOF
				status, msg = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request headers too large: at most %d bytes, the request line included", httpMaxHeader)
			case errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded):
				return
			}
			w := &respWriter{c: c, hdr: http.Header{}}
			fail(w, status, msg)
			w.finish(false)
			return
		}
		lr.N = math.MaxInt64 // the body is bounded by its handler (form)
		c.SetReadDeadline(start.Add(httpRead))
		c.SetWriteDeadline(time.Now().Add(d.s.conf().Timeouts.Write.D()))
		ctx, cancel := context.WithCancel(context.Background())
		req = req.WithContext(ctx)
		req.RemoteAddr = c.RemoteAddr().String()
		if req.Header.Get("Expect") == "100-continue" {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
		}
		w := &respWriter{c: c, br: br, hdr: http.Header{}, head: req.Method == http.MethodHead, cancel: cancel}
		h.ServeHTTP(w, req)
		keep := !req.Close && req.ProtoAtLeast(1, 1)
		// What the handler left of the body is read, up to a bound; more
		// ends the connection.
		if n, _ := io.CopyN(io.Discard, req.Body, 64<<10); n == 64<<10 {
			keep = false
		}
		keep = w.finish(keep)
		cancel()
		if w.gone != nil {
			c.Close() // ends the reader that watched for the browser going
			<-w.gone
		}
		if !keep {
			return
		}
	}
}

// respWriter is the http.ResponseWriter of one request: it buffers the
// response until the handler returns, or, once the handler flushes (an
// event stream), writes its header at once and then each write as it
// comes, and watches for the browser going away (the request's context
// is cancelled then).
type respWriter struct {
	c      net.Conn
	br     *bufio.Reader
	hdr    http.Header
	head   bool // a HEAD request: no body
	cancel context.CancelFunc

	status int
	buf    bytes.Buffer
	stream bool          // the header is sent; writes go to c
	gone   chan struct{} // when streaming: closed when the watching reader returns
}

func (w *respWriter) Header() http.Header { return w.hdr }

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *respWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.stream {
		return w.c.Write(b)
	}
	return w.buf.Write(b)
}

// SetWriteDeadline is for http.ResponseController: a stream moves its
// deadline with each write.
func (w *respWriter) SetWriteDeadline(t time.Time) error { return w.c.SetWriteDeadline(t) }

// FlushError is for http.ResponseController: the first flush turns the
// response into a stream.
func (w *respWriter) FlushError() error {
	if w.stream {
		return nil
	}
	w.WriteHeader(http.StatusOK)
	w.stream = true
	w.gone = make(chan struct{})
	w.c.SetReadDeadline(time.Time{})
	go func() {
		defer close(w.gone)
		w.br.Discard(w.br.Buffered())
		var b [1]byte
		for spurious := 0; ; {
			_, err := w.c.Read(b[:])
			if errors.Is(err, os.ErrDeadlineExceeded) && spurious < 3 {
				// The door closing (see serve) is for connections
				// waiting for a request; a stream ends as its member
				// is told why.
				spurious++
				w.c.SetReadDeadline(time.Time{})
				continue
			}
			if err != nil {
				w.cancel()
				return
			}
		}
	}()
	w.hdr.Set("Connection", "close")
	return w.send(nil)
}

// finish sends a buffered response, with its length, kept alive when
// keep; a stream is done. It reports whether the connection may serve
// another request.
func (w *respWriter) finish(keep bool) bool {
	if w.stream {
		return false
	}
	w.WriteHeader(http.StatusOK)
	if !keep {
		w.hdr.Set("Connection", "close")
	}
	if w.status != http.StatusNoContent && w.status != http.StatusNotModified {
		w.hdr.Set("Content-Length", strconv.Itoa(w.buf.Len()))
	}
	return w.send(w.buf.Bytes()) == nil && keep
}

// send writes the status line and the header, then body unless the
// request was HEAD.
func (w *respWriter) send(body []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", w.status, http.StatusText(w.status))
	if w.hdr.Get("Date") == "" {
		w.hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	w.hdr.Write(&b)
	b.WriteString("\r\n")
	if !w.head {
		b.Write(body)
	}
	_, err := w.c.Write(b.Bytes())
	return err
}
