package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"roomrelay/proto"
)

// greeting is the first line of every line-door session.
var greeting = proto.AppendText(nil, &proto.Event{Kind: proto.KindNotice,
	Text: "welcome to roomrelay. Send your name (1-24 letters, digits, _ - .)"})

// serveLine runs one line-door session: the handshake, then one request a
// line until the member leaves. Once the member has joined, the loop
// serves it if it can, and serveLine returns true: the connection is the
// loop's.
func (s *Server) serveLine(c net.Conn) (kept bool) {
	lr := proto.NewLineReader(c, s.conf().Limits.MaxLineBytes)
	m, h, err := s.handshake(c, lr)
	if err != nil {
		s.debugf("line %s: handshake: %v", c.RemoteAddr(), err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(proto.AppendText(nil, &proto.Event{Kind: proto.KindError,
				Text: fmt.Sprintf("no name within %v; bye", s.conf().Timeouts.Handshake.D())}))
		}
		return false
	}
	c.SetDeadline(time.Time{})
	m.lr = lr
	if m.lp != nil {
		if err := m.lp.add(m); err != nil {
			s.errorf("line %s: %v", c.RemoteAddr(), err)
			m.kick(byRead)
			s.leave(m)
			return false
		}
		s.wg.Add(1) // done when the loop has seen it off
		s.enter(m, h)
		lr.SetReader(&m.nb)
		m.lp.start(m)
		return true
	}
	go m.writeLoop()
	s.enter(m, h)
	why := s.readLoop(m)
	m.kick(why)
	<-m.writerDone
	s.leave(m)
	if m.why.told() {
		hangUp(c, time.Second)
	}
	s.infof("line %s: %s left: %s", c.RemoteAddr(), m.name, m.why)
	return false
}

// enter puts a member that just said hello in the room it asked for.
func (s *Server) enter(m *member, h proto.Hello) {
	room := h.Room
	if room == "" {
		room = s.conf().DefaultRoom
	}
	replay := s.conf().Limits.Replay
	if h.Replay != nil {
		replay = min(*h.Replay, s.conf().Limits.History)
	}
	if err := s.join(m, room, h.Since, replay); err != nil {
		m.notify(proto.KindError, "%v; you are in %s", err, s.conf().DefaultRoom)
		s.join(m, s.conf().DefaultRoom, nil, replay)
	}
}

// handshake greets the client and reads hello lines until one names a
// free, valid name, within Timeouts.Handshake.
func (s *Server) handshake(c net.Conn, lr *proto.LineReader) (*member, proto.Hello, error) {
	c.SetDeadline(time.Now().Add(s.conf().Timeouts.Handshake.D()))
	if _, err := c.Write(greeting); err != nil {
		return nil, proto.Hello{}, err
	}
	for {
		line, err := lr.ReadLine()
		if err == proto.ErrLineTooLong {
			err = fmt.Errorf("line too long (at most %d bytes)", s.conf().Limits.MaxLineBytes)
		} else if err != nil {
			return nil, proto.Hello{}, err
		}
		var h proto.Hello
		if err == nil {
			h, err = proto.ParseHello(line)
		}
		var m *member
		if err == nil {
			m, err = s.claim(c, h.Name, h.JSON())
		}
		if err == nil {
			return m, h, nil
		}
		e := proto.Event{Kind: proto.KindError, Text: err.Error() + "; send another name"}
		var out []byte
		if len(line) > 0 && line[0] == '{' {
			out = proto.AppendJSON(nil, &e)
		} else {
			out = proto.AppendText(nil, &e)
		}
		if _, err := c.Write(out); err != nil {
			return nil, proto.Hello{}, err
		}
	}
}

// readLoop reads and handles lines until the member leaves, and says why.
func (s *Server) readLoop(m *member) reason {
	idle := s.conf().Timeouts.Idle.D()
	var armed time.Time
	for {
		t := time.Now()
		if t.Sub(armed) > time.Second { // re-arm the idle deadline at most once a second
			m.conn.SetReadDeadline(t.Add(idle))
			armed = t
		}
		line, err := m.lr.ReadLine()
		if m.isDone() {
			return m.why
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return byIdle
		}
		if why, leave := s.input(m, line, err, t); leave {
			return why
		}
	}
}

// input handles one line that m sent at t, or the error reading it. It
// reports whether m leaves, and why.
func (s *Server) input(m *member, line []byte, err error, t time.Time) (reason, bool) {
	switch {
	case err == proto.ErrLineTooLong:
		m.notify(proto.KindError, "line too long (at most %d bytes); discarded", s.conf().Limits.MaxLineBytes)
		return 0, false
	case err == io.EOF:
		return byEOF, true
	case err != nil:
		return byRead, true
	}
	req, err := proto.Parse(line)
	if err != nil {
		m.notify(proto.KindError, "%v", err)
		return 0, false
	}
	if req.Op == proto.Quit {
		return byQuit, true
	}
	if req.Op == proto.Say || req.Op == proto.Me || req.Op == proto.Msg {
		l := s.conf().Limits
		if !m.lim.allow(t, l.Rate, l.Burst) {
			if m.lim.refused > l.Burst {
				return byFlood, true
			}
			m.notify(proto.KindError, "slow down: at most %g messages a second; not sent", l.Rate)
			return 0, false
		}
	}
	s.handle(m, req)
	return 0, false
}

// handle carries out one request of a member in a room.
func (s *Server) handle(m *member, req proto.Request) {
	switch req.Op {
	case proto.Say, proto.Me:
		kind := proto.KindMsg
		if req.Op == proto.Me {
			kind = proto.KindAction
		}
		// "name: text" and "* name text" are both this long.
		if n := len(m.name) + 2 + len(req.Text); n > s.conf().Limits.MaxLineBytes {
			m.notify(proto.KindError, "message too long: it would make a %d-byte line (at most %d); not sent",
				n, s.conf().Limits.MaxLineBytes)
			return
		}
		m.room.post(&proto.Event{Kind: kind, From: m.name, Text: req.Text, Time: now()}, m.id, s.maxLag())
		s.stats.posted.Add(1)
	case proto.Msg:
		to := s.lookup(req.Arg)
		if to == nil {
			m.notify(proto.KindError, "no member called %s", req.Arg)
			return
		}
		e := proto.Event{Kind: proto.KindPrivate, From: m.name, To: to.name, Text: req.Text, Time: now()}
		to.deliver(newEvent(&e, m.id))
		if m.json {
			m.deliver(newEvent(&e, m.id)) // programs see what they sent
		} else {
			m.notify(proto.KindNotice, "sent privately to %s", to.name)
		}
	case proto.Join:
		var since *uint64
		if req.HasSeq {
			since = &req.Seq
		}
		if err := s.join(m, req.Arg, since, s.conf().Limits.Replay); err != nil {
			m.notify(proto.KindError, "cannot join %s: %v", req.Arg, err)
		}
	case proto.Since:
		s.join(m, m.room.name, &req.Seq, 0)
	case proto.Who:
		s.list(m, "in "+m.room.name+":", m.room.names())
	case proto.Rooms:
		s.list(m, "rooms:", s.roomList())
	case proto.Ping:
		m.notify(proto.KindNotice, "%s", strings.TrimSpace("pong "+req.Text))
	case proto.Help:
		for _, c := range proto.Commands {
			m.notify(proto.KindNotice, "%s", c)
		}
	}
}

// list sends items to m as notices starting with title, as many to a line
// as fit in Limits.MaxLineBytes.
func (s *Server) list(m *member, title string, items []string) {
	var b strings.Builder
	b.WriteString(title)
	for _, it := range items {
		if b.Len()+1+len(it)+5 > s.conf().Limits.MaxLineBytes {
			m.notify(proto.KindNotice, "%s", b.String())
			b.Reset()
			b.WriteString(title)
		}
		b.WriteByte(' ')
		b.WriteString(it)
	}
	m.notify(proto.KindNotice, "%s", b.String())
}
