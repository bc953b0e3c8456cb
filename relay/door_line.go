package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"roomrelay/proto"
)

// greeting is the first line of every line-door session: a text line
// even to a client about to say hello in JSON.
var greeting = lineEvent(proto.AppendText(nil, &proto.Event{Kind: proto.KindNotice,
	Text: "welcome to roomrelay. Send your name (1-24 letters of one script, digits, single spaces, _ - .)"}))

// adoptLine hands a new line-door connection to the loop, which greets
// it, reads its hello and serves it from then on without a goroutine of
// its own. It reports false where there is no loop, or c is no socket:
// serveLine serves it then.
func (s *Server) adoptLine(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok || s.loop == nil {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	m := &member{srv: s, conn: c, lp: s.loop, nb: nbReader{raw: raw}, done: make(chan struct{})}
	m.lr = proto.NewLineReader(&m.nb, s.conf().Limits.MaxLineBytes)
	// Counted before the loop has it: the loop may see it off (at
	// shutdown, say) before add returns, and Shutdown's Wait must not see
	// the count reach zero in between.
	s.wg.Add(1) // done when the loop has seen it off
	if err := s.loop.add(m); err != nil {
		s.wg.Done()
		s.warnf("line %s: %v", c.RemoteAddr(), err)
		return false
	}
	m.deliver(greeting)
	return true
}

// serveLine runs one line-door session on a goroutine of its own: the
// handshake, then one request a line until the member leaves.
func (s *Server) serveLine(c net.Conn) {
	m := s.newMember(c)
	m.lr = proto.NewLineReader(c, s.conf().Limits.MaxLineBytes)
	h, err := s.handshake(m)
	if err != nil {
		s.debugf("line %s: handshake: %v", c.RemoteAddr(), err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			m.why = byNoName
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(m.goodbye())
		}
		return
	}
	c.SetDeadline(time.Time{})
	go m.writeLoop()
	s.enter(m, h)
	why := s.readLoop(m)
	m.kick(why)
	<-m.w.done
	s.leave(m)
	if m.why.told() {
		hangUp(c, time.Second)
	}
	s.infof("line %s: %s left: %s", c.RemoteAddr(), m.name, m.why)
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
	if err := s.join(m, room, h.Resume(), replay); err != nil {
		m.notify(proto.KindError, "%v; you are in %s", err, s.conf().DefaultRoom)
		s.join(m, s.conf().DefaultRoom, nil, replay)
	}
}

// handshake greets the client and reads hello lines until one names a
// free, valid name, within Timeouts.Handshake.
func (s *Server) handshake(m *member) (proto.Hello, error) {
	c := m.conn
	c.SetDeadline(time.Now().Add(s.conf().Timeouts.Handshake.D()))
	if _, err := c.Write(greeting.text); err != nil {
		return proto.Hello{}, err
	}
	for {
		line, err := m.lr.ReadLine()
		h, reply, err := s.hello(m, line, err)
		if err != nil || reply == nil {
			return h, err
		}
		if _, err := c.Write(reply); err != nil {
			return proto.Hello{}, err
		}
	}
}

// hello takes one line of a handshake, or the error reading it: a hello
// that claims a free, valid name for m, or a line to answer with the
// reason it does not. An error ends the handshake.
func (s *Server) hello(m *member, line []byte, err error) (h proto.Hello, reply []byte, _ error) {
	if err == proto.ErrLineTooLong {
		err = fmt.Errorf("line too long (at most %d bytes)", s.conf().Limits.MaxLineBytes)
	} else if err != nil {
		return h, nil, err
	}
	if err == nil {
		h, err = proto.ParseHello(line)
	}
	if err == nil {
		err = s.claim(m, h.Name, h.JSON())
	}
	if err == nil {
		return h, nil, nil
	}
	e := proto.Event{Kind: proto.KindError, Text: err.Error() + "; send another name"}
	if len(line) > 0 && line[0] == '{' {
		return h, proto.AppendJSON(nil, &e), nil
	}
	return h, proto.AppendText(nil, &e), nil
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
	if req.Op == proto.Say && strings.TrimSpace(req.Text) == "" {
		return 0, false // a blank line (Enter pressed) is no message; it still counts as life
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
		switch {
		case !m.json:
			m.notify(proto.KindNotice, "sent privately to %s", to.name)
		case to != m:
			m.deliver(newEvent(&e, m.id)) // programs see what they sent (once, when it was to themselves)
		}
	case proto.Join:
		if err := s.join(m, req.Arg, req.Since, s.conf().Limits.Replay); err != nil {
			m.notify(proto.KindError, "cannot join %s: %v", req.Arg, err)
		}
	case proto.Since:
		s.join(m, m.room.name, req.Since, 0)
	case proto.Part:
		s.part(m, req.Arg)
	case proto.Time:
		s.stamps(m, req.Arg)
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

// part takes m out of its room (which must be room, when that is not
// empty) into the default room.
func (s *Server) part(m *member, room string) {
	here, def := m.room.name, s.conf().DefaultRoom
	switch {
	case room != "" && proto.Fold(room) != proto.Fold(here):
		m.notify(proto.KindError, "you are in %s, not in %s", here, room)
	case proto.Fold(here) == proto.Fold(def):
		m.notify(proto.KindNotice, "%s is the default room: /part leaves other rooms for it; /quit disconnects", here)
	default:
		if err := s.join(m, def, nil, s.conf().Limits.Replay); err != nil {
			m.notify(proto.KindError, "cannot leave %s for %s: %v", here, def, err)
		}
	}
}

// stamps turns m's time stamps on or off (arg "on" or "off") and says
// which they are.
func (s *Server) stamps(m *member, arg string) {
	if m.json {
		m.notify(proto.KindError, `in JSON mode every event carries its "time"; /time is for text mode`)
		return
	}
	if arg != "" {
		m.stamps.Store(arg == "on")
	}
	if !m.stamps.Load() {
		m.notify(proto.KindNotice, "time stamps off")
		return
	}
	zone, _ := time.Now().Zone()
	m.notify(proto.KindNotice, "time stamps on: [HH:MM] before messages, in the relay's time zone (%s)", zone)
}

// list sends items to m as notices starting with title, separated by ", "
// (names may hold spaces, never a comma), as many to a line as fit in
// Limits.MaxLineBytes; a line holds at least one item.
func (s *Server) list(m *member, title string, items []string) {
	max := s.conf().Limits.MaxLineBytes - len("--- \n")
	var b strings.Builder
	b.WriteString(title)
	sep := " "
	for _, it := range items {
		if sep != " " && b.Len()+len(sep)+len(it) > max {
			m.notify(proto.KindNotice, "%s", b.String())
			b.Reset()
			b.WriteString(title)
			sep = " "
		}
		b.WriteString(sep)
		b.WriteString(it)
		sep = ", "
	}
	m.notify(proto.KindNotice, "%s", b.String())
}
