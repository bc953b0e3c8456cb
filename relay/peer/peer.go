// Package peer is `roomrelay peer`: the tutorial's P2P messenger
// (messenger.py), hardened. A peer listens on its own endpoint and prints
// every message it receives; each line of its input goes to its friend's
// endpoint on a new TCP connection, which is then closed. It talks to an
// unmodified messenger.py both ways.
//
// On the wire, one connection carries one message: the raw UTF-8 text of a
// line, no newline, no name, ended by the sender closing (see the tutorial
// protocol in package proto). A received message is printed as
// messenger.py prints it, the sender's address as a Python tuple, then the
// stripped text:
//
//	('127.0.0.1', 47893): hello! how are you?
//
// Unlike messenger.py, a peer reads many connections at once under a
// deadline and a size limit, decodes each message as a whole (a character
// split across reads survives), shows control characters and invalid
// UTF-8 as U+FFFD, and keeps going when its friend is down: the line is
// lost and the failure logged. The package also gives [Receiver] and
// [Send], the two halves of the tutorial transport, to the tutorial mode of
// `roomrelay client`.
package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"roomrelay/relay/config"
	"strings"
	"sync"
	"time"

	"roomrelay/proto"
)

// Peer is one `roomrelay peer`. Create it with New, bind its endpoint with
// Start, send with Send or SendLines, stop it with Close.
type Peer struct {
	cfg  config.PeerConfig // set once
	logf config.Logf       // set once

	outMu sync.Mutex // serialises writes to out
	out   io.Writer

	mu  sync.Mutex
	rcv *Receiver // guarded by mu; nil until Start
}

// New returns a peer for cfg, which must have passed validation, printing
// received messages to out. Nothing listens until Start.
func New(cfg config.PeerConfig, out io.Writer, logf config.Logf) *Peer {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Peer{cfg: cfg, out: out, logf: logf}
}

// Start binds cfg.Listen and receives in the background.
func (p *Peer) Start() error {
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	logf := func(format string, args ...any) { p.logf("peer: "+format, args...) }
	r := NewReceiver(ln, p.cfg.MaxMessageBytes, p.cfg.MaxConns, p.cfg.Timeout.D(), logf, p.print)
	p.mu.Lock()
	p.rcv = r
	p.mu.Unlock()
	return nil
}

// print writes one received message as messenger.py does.
func (p *Peer) print(from netip.AddrPort, payload []byte) {
	line := proto.AppendLegacyAddr(nil, from)
	line = append(append(append(line, ": "...), proto.LegacyText(payload)...), '\n')
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if _, err := p.out.Write(line); err != nil {
		p.logf("peer: output: %v", err)
	}
}

// Addr returns the bound address, or nil before Start.
func (p *Peer) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rcv == nil {
		return nil
	}
	return p.rcv.Addr()
}

// Close stops receiving and waits for every connection to end. It may be
// called more than once.
func (p *Peer) Close() error {
	p.mu.Lock()
	r := p.rcv
	p.mu.Unlock()
	if r != nil {
		return r.Close()
	}
	return nil
}

// Send sends text to the friend on a connection of its own. Invalid UTF-8
// is sent as U+FFFD, so that the friend can decode it.
func (p *Peer) Send(ctx context.Context, text string) error {
	return Send(ctx, p.cfg.Friend, []byte(strings.ToValidUTF8(text, "\uFFFD")), p.cfg.Timeout.D())
}

// SendLines sends each line of in to the friend until in ends or ctx is
// done. A line longer than MaxMessageBytes is not sent; a friend that
// cannot be reached loses the line. Both are logged and the next line is
// tried. It returns nil at the end of in, ctx's error when ctx ends first.
// When ctx ends during a read of in, that read is left to finish on its
// own: the goroutine doing it ends with it.
func (p *Peer) SendLines(ctx context.Context, in io.Reader) error {
	lines := make(chan string)
	stop := make(chan struct{})
	defer close(stop)
	go ReadLines("peer", in, p.cfg.MaxMessageBytes, lines, stop, p.logf)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if err := p.Send(ctx, line); err != nil && ctx.Err() == nil {
				p.logf("peer: %v; the line is lost", err)
			}
		}
	}
}

// ReadLines sends the lines of in, each at most max bytes, to lines until
// in ends or stop is closed, then closes lines. who names the program in
// its log lines.
func ReadLines(who string, in io.Reader, max int, lines chan<- string, stop <-chan struct{}, logf config.Logf) {
	defer close(lines)
	lr := proto.NewLineReader(in, max)
	for {
		line, err := lr.ReadLine()
		if err == proto.ErrLineTooLong {
			logf("%s: input line longer than %d bytes; not sent", who, max)
			continue
		}
		if err != nil {
			if err != io.EOF {
				logf("%s: input: %v", who, err)
			}
			return
		}
		select {
		case lines <- string(line):
		case <-stop:
			return
		}
	}
}

// Run is `roomrelay peer`: it listens on cfg.Listen, prints what arrives to
// out, and sends each line of in to cfg.Friend. At the end of in it stops
// sending and goes on receiving, as messenger.py does, until ctx ends; then
// it closes every connection and returns nil.
func Run(ctx context.Context, cfg config.PeerConfig, in io.Reader, out io.Writer, logf config.Logf) error {
	p := New(cfg, out, logf)
	if err := p.Start(); err != nil {
		return err
	}
	defer p.Close()
	p.logf("peer: listening on %s; lines go to %s", p.Addr(), cfg.Friend)
	if err := p.SendLines(ctx, in); err == nil {
		p.logf("peer: end of input; still receiving")
		<-ctx.Done()
	}
	return nil
}

// Send writes payload to addr the tutorial way: on a new TCP connection,
// which it then closes (a FIN after the data: shutdown, then close). Dial
// and write each have timeout; ctx ending aborts both.
func Send(ctx context.Context, addr string, payload []byte, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(payload); err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return fmt.Errorf("send to %s: %w", addr, err)
		}
	}
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	return nil
}
