package relay

import (
	"net"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

// greeting is the first line of every line-door session: a text line
// even to a client about to say hello in JSON.
var greeting = lineEvent(proto.AppendText(nil, &proto.Event{Kind: proto.KindNotice,
	Text: "welcome to roomrelay. Send your name (1-24 letters of one script, digits, single spaces, _ - .)"}))

// passGreeting is the greeting of a relay with a password.
var passGreeting = lineEvent(proto.AppendText(nil, &proto.Event{Kind: proto.KindNotice,
	Text: "welcome to roomrelay. This relay has a password: send /pass PASSWORD, then your name (1-24 letters of one script, digits, single spaces, _ - .)"}))

// lineDoor is the line protocol's door: nc, telnet, `roomrelay client`.
// Its members are served by the loop where there is one, by a goroutine
// pair otherwise (and for connections that are not sockets).
type lineDoor struct{ s *Server }

func (lineDoor) name() string                 { return "line" }
func (lineDoor) addr(c *config.Config) string { return c.Listen.Line }

// serve admits c, or refuses it with a line saying why, and has a driver
// serve it, greeting it first; it does not block.
func (d lineDoor) serve(c net.Conn, _ <-chan struct{}) {
	s, door := d.s, "line"
	if _, ok := c.(handshaker); ok {
		door = "line_tls"
	}
	if r := s.admit(c); r.why != "" {
		s.refuse(door, c, r)
		return
	}
	greet := greeting
	if s.conf().Password != "" {
		greet = passGreeting
	}
	s.drive(c, door, greet, nil)
}

// drive has a driver serve c, an admitted connection of door, greeted
// with greet, with the codec newCodec makes (nil: the line protocol's):
// the loop where there is one, a goroutine pair otherwise (and for
// connections that are not sockets). It does not block.
func (s *Server) drive(c net.Conn, door string, greet *event, newCodec func(*member) codec) {
	if s.loop != nil && s.loop.adopt(c, door, greet, newCodec) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serveConn(c, door, greet, newCodec)
	}()
}
