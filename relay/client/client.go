// Package client is `roomrelay client`: a line-door client for people and
// scripts. It reads lines from its input and sends them to the room, and
// writes the room's events to its output as text. It speaks the JSON mode
// of the line protocol, remembers the last event it saw of each room (the
// room's epoch and the sequence number in it), and on a dropped connection
// reconnects with backoff and resumes from there, so nothing still in the
// relay's history window is lost. After a relay restart the room has
// another epoch, and the relay replays all it keeps instead.
//
// Chat goes to the output and status (the relay's notices and errors, the
// client's own lines) to the log; see console.go. At a terminal (Linux) the
// line being typed stays whole below what arrives (editor.go, term_linux.go)
// and a taken name is asked again. Reading from a pipe or a file, the
// client is quiet: no replay unless client.replay asks for one, and no
// status but errors; a taken name ends it with an error.
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
	"os"
	"roomrelay/relay/config"
	"strings"
	"sync/atomic"
	"time"

	"roomrelay/proto"
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
	cfg         config.ClientConfig
	con         *console
	interactive bool // input from a terminal: a taken name is asked again

	lines chan string // input lines; closed at end of input

	// Owned by the connection loop.
	room    string                 // current room ("" until the first join)
	seen    map[string]proto.Point // last event seen, by room: the epoch from the welcome, the seq from events
	claimed bool                   // the relay may hold the name for us: a hello went out and was not refused

	inputEnded atomic.Int64 // when the input ended (Unix ns); 0 while it goes on
}

// Run connects to cfg.Server as cfg.Name and chats until ctx ends, the
// input ends (with cfg.ExitOnEOF), or the relay refuses the name for good.
// Chat goes to out, status to logf. It returns nil on a clean end.
func Run(ctx context.Context, cfg config.ClientConfig, in io.Reader, out io.Writer, logf config.Logf) error {
	if cfg.Mode == "tutorial" {
		return runTutorial(ctx, cfg, in, out, logf)
	}
	con := &console{out: out, logf: logf}
	f, _ := in.(*os.File)
	if f == nil || !isTerminal(f) {
		con.quiet = true
		return run(ctx, cfg, in, con, false)
	}
	if t, err := openTerminal(f); err == nil {
		defer t.restore()
		con.ed = &editor{w: t.w, width: t.width, prompt: "> "}
		var cancel context.CancelFunc
		ctx, cancel = t.watch(ctx, con.redraw)
		defer cancel()
		defer con.clear()
		con.redraw()
	}
	return run(ctx, cfg, in, con, true)
}

func run(ctx context.Context, cfg config.ClientConfig, in io.Reader, con *console, interactive bool) error {
	if cfg.Name == "" {
		return errors.New("client: no name: give one with -name or client.name")
	}
	if err := proto.CheckName(cfg.Name); err != nil {
		return fmt.Errorf("client name: %w", err)
	}
	if con.quiet && cfg.Replay == nil {
		cfg.Replay = new(int) // a script's alert needs no history
	}
	c := &Client{cfg: cfg, con: con, interactive: interactive, lines: make(chan string, inputQueue), seen: map[string]proto.Point{}}
	if con.ed != nil {
		go c.readKeys(in)
	} else {
		go c.readInput(in)
	}
	retry := cfg.Retry.D()
	for {
		connected, err := c.session(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFatal) {
			return err
		}
		if errors.As(err, new(nameTaken)) && !c.claimed {
			// Not our own earlier connection, not yet seen off: someone
			// else has the name.
			if !c.interactive {
				return fmt.Errorf("client: the name %s is taken on %s: choose another with -name", c.cfg.Name, c.cfg.Server)
			}
			if c.cfg.Name, err = c.askName(ctx); err != nil || ctx.Err() != nil {
				return err
			}
			continue
		}
		if connected {
			retry = cfg.Retry.D()
		}
		// Once the input has ended, a relay that stays out of reach is not
		// waited for forever: a script gets its exit status.
		if t := c.inputEnded.Load(); t != 0 && cfg.ExitOnEOF && time.Since(time.Unix(0, t)) > cfg.RetryMax.D() {
			n, s := len(c.lines), "s"
			if n == 1 {
				s = ""
			}
			return fmt.Errorf("client: gave up after the input ended: %v; %d input line%s not sent", err, n, s)
		}
		c.con.status("client: %v; reconnecting in %v", err, retry)
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

// nameTaken is the relay's refusal of a name in use. After a dropped
// connection it may be the client's own, which the relay has not seen off
// yet.
type nameTaken struct{ why string }

func (e nameTaken) Error() string { return "relay: " + e.why }

// askName asks the terminal for another name than the taken one, and
// returns the first valid one typed. The input ending ends the client.
func (c *Client) askName(ctx context.Context) (string, error) {
	c.con.errorf("client: the name %s is taken; type another name", c.cfg.Name)
	c.con.prompt("name: ")
	defer c.con.prompt("> ")
	for {
		select {
		case <-ctx.Done():
			return "", nil
		case line, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("client: the name %s is taken on %s, and the input ended", c.cfg.Name, c.cfg.Server)
			}
			name := strings.TrimSpace(line)
			if err := proto.CheckName(name); err != nil {
				c.con.errorf("client: %v; type another name", err)
				continue
			}
			return name, nil
		}
	}
}

// readKeys reads a terminal's keys through the editor and queues the lines
// they complete. Ctrl-D on an empty line ends the input.
func (c *Client) readKeys(in io.Reader) {
	defer close(c.lines)
	defer c.inputEnded.Store(time.Now().UnixNano())
	buf := make([]byte, 256)
	for {
		n, err := in.Read(buf)
		lines, eof := c.con.typed(buf[:n])
		for _, l := range lines {
			c.lines <- l
		}
		if eof || err != nil {
			return
		}
	}
}

func (c *Client) readInput(in io.Reader) {
	defer close(c.lines)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		c.lines <- sc.Text()
	}
	if err := sc.Err(); err != nil {
		c.con.errorf("client: input: %v", err)
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
	if c.cfg.TLS || c.cfg.Fingerprint != "" {
		if conn, err = secure(ctx, conn, c.cfg); err != nil {
			return false, err
		}
		defer conn.Close()
	}
	// Closed, not given a past deadline: receive sets a new deadline
	// before each read, which could undo that.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	h := proto.Hello{Name: c.cfg.Name, Mode: "json", Room: c.cfg.Room, Replay: c.cfg.Replay, Password: c.cfg.Password, Key: c.cfg.Key}
	if c.room != "" {
		p := c.seen[c.room]
		h.Room, h.Epoch, h.Since, h.Replay = c.room, p.Epoch, &p.Seq, nil
		if proto.Fold(c.room) != proto.Fold(c.cfg.Room) {
			h.Key = "" // the key is client.room's; a wrong one would count as a guess
		}
	}
	hello, _ := json.Marshal(h)
	conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(append(hello, '\n')); err != nil {
		return false, err
	}
	claimed := c.claimed
	c.claimed = true // the relay may take the hello though its answer never comes

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
		c.claimed = claimed
		switch {
		case strings.Contains(why, "in use"):
			return false, nameTaken{why} // it may be free soon
		case strings.HasPrefix(why, "this relay has a password") && c.cfg.Password == "":
			return false, fmt.Errorf("%w: this relay has a password: give it with -password or client.password", errFatal)
		case strings.Contains(why, "; you are in "):
			// Not let into its room, it is in the default room: it leaves
			// with /quit rather than send there what was meant for the room.
			conn.SetDeadline(time.Now().Add(timeout))
			io.WriteString(conn, "/quit\n")
			for { // until the relay closes
				if _, err := lr.ReadLine(); err != nil {
					break
				}
			}
			why, in, _ := strings.Cut(why, "; you are in ")
			switch {
			case strings.Contains(why, "try again in"): // its address waits after wrong tries: it will be let in
				return false, fmt.Errorf("%s; quit rather than stay in %s", why, in)
			case strings.Contains(why, "wrong key") || strings.Contains(why, "has a key"):
				why, _, _ = strings.Cut(why, " (/join")
				why += " (give it with -key or client.key)"
			}
			return false, fmt.Errorf("%w: %s; quit rather than stay in %s", errFatal, why, in)
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
			c.con.errorf("client: %v", err)
			continue
		}
		c.show(e)
	}
}

// show records where an event is in its room and prints it as text,
// leaving out the client's own messages and pongs: what the room holds
// to the chat, the relay's notices and errors to the status.
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
		c.con.prompt(e.Room + "> ")
		return
	}
	if mine && (e.Kind == proto.KindMsg || e.Kind == proto.KindAction || e.Kind == proto.KindPart) ||
		e.Kind == proto.KindNotice && strings.HasPrefix(e.Text, "pong") {
		return
	}
	text := proto.AppendText(nil, &e)
	switch e.Kind {
	case proto.KindNotice:
		c.con.status("%s", text[:len(text)-1])
	case proto.KindError:
		c.con.errorf("%s", text[:len(text)-1])
	default:
		c.con.chat(text)
	}
}
