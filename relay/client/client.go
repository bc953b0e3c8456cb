// Package client is `roomrelay client`: a line-door client for people and
// scripts. It reads lines from its input and sends them to the room, and
// writes the room's events to its output as text. It speaks the JSON mode
// of the line protocol, remembers the last event it saw of each room (the
// room's epoch and the sequence number in it), and on a dropped connection
// reconnects with backoff and resumes from there, so nothing still in the
// relay's history window is lost. After a relay restart the room has
// another epoch, and the relay replays all it keeps instead.
//
// With client.mode "tutorial" it speaks the tutorials' chat-room protocol
// instead (see tutorial.go): it listens on its own endpoint first, then
// registers with a legacy door or messenger_server.py, and sends each
// line as a post on a connection of its own.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"roomrelay/proto"
	"roomrelay/relay"
)

// pingEvery is how long the client waits on a silent connection before it
// asks the relay for a pong; a relay that does not answer within the
// timeout is taken for dead.
const pingEvery = 60 * time.Second

// inputQueue bounds the lines read ahead of the connection; past it the
// client stops reading its input until the relay takes more.
const inputQueue = 256

// Client is one `roomrelay client` run.
type Client struct {
	cfg  relay.ClientConfig
	out  io.Writer
	logf relay.Logf

	lines chan string // input lines; closed at end of input

	// Owned by the connection loop.
	room string                 // current room ("" until the first join)
	seen map[string]proto.Point // last event seen, by room: the epoch from the welcome, the seq from events

	inputEnded atomic.Int64 // when the input ended (Unix ns); 0 while it goes on
}

// Run connects to cfg.Server as cfg.Name and chats until ctx ends, the
// input ends (with cfg.ExitOnEOF), or the relay refuses the name for good.
// It returns nil on a clean end.
func Run(ctx context.Context, cfg relay.ClientConfig, in io.Reader, out io.Writer, logf relay.Logf) error {
	if cfg.Mode == "tutorial" {
		return runTutorial(ctx, cfg, in, out, logf)
	}
	if cfg.Name == "" {
		return errors.New("client: no name: give one with -name or client.name")
	}
	if err := proto.CheckName(cfg.Name); err != nil {
		return fmt.Errorf("client name: %w", err)
	}
	c := &Client{cfg: cfg, out: out, logf: logf, lines: make(chan string, inputQueue), seen: map[string]proto.Point{}}
	go c.readInput(in)
	retry := cfg.Retry.D()
	for {
		connected, err := c.session(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFatal) {
			return err
		}
		if connected {
			retry = cfg.Retry.D()
		}
		// Once the input has ended, a relay that stays out of reach is not
		// waited for forever: a script gets its exit status.
		if t := c.inputEnded.Load(); t != 0 && cfg.ExitOnEOF && time.Since(time.Unix(0, t)) > cfg.RetryMax.D() {
			return fmt.Errorf("client: gave up after the input ended: %v; %d input lines not sent", err, len(c.lines))
		}
		logf("client: %v; reconnecting in %v", err, retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		retry = min(2*retry, cfg.RetryMax.D())
	}
}

// errFatal marks errors that reconnecting cannot mend.
var errFatal = errors.New("fatal")

func (c *Client) readInput(in io.Reader) {
	defer close(c.lines)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		c.lines <- sc.Text()
	}
	if err := sc.Err(); err != nil {
		c.logf("client: input: %v", err)
	}
	c.inputEnded.Store(time.Now().UnixNano())
}

// session runs one connection. connected says whether the relay took the
// hello; a nil error means the client is done.
func (c *Client) session(ctx context.Context) (connected bool, err error) {
	timeout := c.cfg.Timeout.D()
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Server)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	h := proto.Hello{Name: c.cfg.Name, Mode: "json", Room: c.cfg.Room, Replay: c.cfg.Replay}
	if c.room != "" {
		p := c.seen[c.room]
		h.Room, h.Epoch, h.Since, h.Replay = c.room, p.Epoch, &p.Seq, nil
	}
	hello, _ := json.Marshal(h)
	conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(append(hello, '\n')); err != nil {
		return false, err
	}

	lr := proto.NewLineReader(conn, 256*1024)
	// The first JSON line answers the hello: an error refuses it.
	conn.SetReadDeadline(time.Now().Add(timeout))
	var first proto.Event
	for {
		line, err := lr.ReadLine()
		if err != nil {
			return false, fmt.Errorf("waiting for the relay's answer: %w", err)
		}
		if len(line) == 0 || line[0] != '{' {
			continue // the text greeting
		}
		if first, err = proto.DecodeJSON(line); err != nil {
			return false, err
		}
		break
	}
	if first.Kind == proto.KindError {
		why := strings.TrimSuffix(first.Text, "; send another name")
		if strings.Contains(why, "in use") {
			return false, fmt.Errorf("relay: %s", why) // it may be free soon
		}
		return false, fmt.Errorf("%w: relay refused the hello: %s", errFatal, why)
	}
	c.show(first)

	done := make(chan error, 1)
	stopSend := make(chan struct{})
	go func() { done <- c.send(conn, stopSend) }()
	err = c.receive(ctx, conn, lr)
	close(stopSend)
	conn.SetDeadline(time.Unix(1, 0))
	if serr := <-done; serr == errInputDone && (err == nil || errors.Is(err, io.EOF)) {
		return true, nil
	}
	if err == nil {
		err = errors.New("relay closed the connection")
	}
	return true, err
}

// errInputDone is the sender's word that the input ended and /quit went out.
var errInputDone = errors.New("input done")

// send writes input lines to the relay, and pings it when all is quiet.
func (c *Client) send(conn net.Conn, stop <-chan struct{}) error {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	write := func(s string) error {
		conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout.D()))
		_, err := io.WriteString(conn, s)
		return err
	}
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				if !c.cfg.ExitOnEOF {
					c.lines = nil // keep listening
					continue
				}
				if err := write("/quit\n"); err != nil {
					return err
				}
				return errInputDone
			}
			if err := write(line + "\n"); err != nil {
				return err
			}
		case <-stop:
			return nil
		case <-ping.C:
			if err := write("/ping\n"); err != nil {
				return err
			}
		}
	}
}

// receive prints events until the connection ends, or ctx does.
func (c *Client) receive(ctx context.Context, conn net.Conn, lr *proto.LineReader) error {
	for {
		conn.SetReadDeadline(time.Now().Add(pingEvery + c.cfg.Timeout.D()))
		// After the deadline is armed: had ctx ended just before, its
		// deadline in the past (see session) would be overwritten.
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := lr.ReadLine()
		if err != nil {
			return err
		}
		e, err := proto.DecodeJSON(line)
		if err != nil {
			c.logf("client: %v", err)
			continue
		}
		c.show(e)
	}
}

// show records where an event is in its room and prints it as text,
// leaving out the client's own messages and pongs.
func (c *Client) show(e proto.Event) {
	mine := strings.EqualFold(e.From, c.cfg.Name)
	switch {
	case e.Kind == proto.KindNotice && e.Room != "" && e.Epoch != "":
		// The welcome. In another epoch than the one seen (the relay
		// restarted) nothing of this one is seen yet: should the
		// connection drop before the replay ends, the resume starts at
		// its beginning.
		if c.seen[e.Room].Epoch != e.Epoch {
			c.seen[e.Room] = proto.Point{Epoch: e.Epoch}
		}
	case e.Seq != 0:
		// The relay sends each event once per connection, and resuming
		// asks only for what came after: no event is shown twice.
		p := c.seen[e.Room]
		p.Seq = e.Seq
		c.seen[e.Room] = p
	}
	if mine && e.Kind == proto.KindJoin {
		c.room = e.Room
		return
	}
	if mine && (e.Kind == proto.KindMsg || e.Kind == proto.KindAction || e.Kind == proto.KindPart) ||
		e.Kind == proto.KindNotice && strings.HasPrefix(e.Text, "pong") {
		return
	}
	c.out.Write(proto.AppendText(nil, &e))
}
