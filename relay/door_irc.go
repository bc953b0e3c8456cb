//go:build !minimal

package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
)

func init() {
	optionalDoors = append(optionalDoors, func(s *Server) door { return ircDoor{s} })
}

// ircDoor is the IRC door: IRC clients join the same rooms as channels,
// under the same names. Its connections are line-based like the line
// door's and served by the same drivers; what differs is the codec, an
// ircClient per connection, which reads IRC commands into the session's
// claim, join and requests and writes events as IRC messages (the wire
// format is proto's: see proto/irc.go).
type ircDoor struct{ s *Server }

func (ircDoor) name() string                 { return "irc" }
func (ircDoor) addr(c *config.Config) string { return c.Listen.IRC }

// ircGreeting is what an IRC connection is told before it registers.
var ircGreeting = lineEvent(proto.AppendIRC(nil, &proto.IRC{Prefix: proto.Host, Command: "NOTICE",
	Params: []string{"*", "*** roomrelay: register with NICK and USER; your nick is your name in every room"}}))

// serve admits c, or refuses it with an IRC ERROR saying why, and has a
// driver serve it; it does not block.
func (d ircDoor) serve(c net.Conn, _ <-chan struct{}) {
	s, door := d.s, "irc"
	if _, ok := c.(handshaker); ok {
		door = "irc_tls"
	}
	if r := s.admit(c); r.why != "" {
		s.refuseIn(door, c, r, ircError)
		return
	}
	s.drive(c, door, ircGreeting, func(m *member) codec { return &ircClient{m: m} })
}

// ircError is the ERROR message that ends an IRC connection with e's text.
func ircError(e *proto.Event) []byte {
	return proto.AppendIRC(nil, &proto.IRC{Command: "ERROR", Params: []string{"Closing link: " + e.Text}})
}

// ircCaps are the IRCv3 capabilities the door offers.
const ircCaps = "server-time"

// ircClient is the IRC door's codec for one member.
type ircClient struct {
	m *member // set once

	// Its reader's.
	nick, user string // as registered; nick is its name once claimed
	pass       string // as given by PASS, until registration checks it
	capping    bool   // capability negotiation started and not ended

	serverTime atomic.Bool // set by its reader (CAP REQ), read by its writer

	// Its writer's.
	channel string // the room its client was last told it is in; "" before the first
}

// hello takes one line of registration at t: CAP, PASS, NICK and USER,
// PING. Once it has a nick and a user and capability negotiation is over,
// it checks the relay's password (given by PASS; a relay without one
// takes any), claims the nick as the member's name and welcomes it; the
// session then puts it in the default room, which it sees as a JOIN. A
// missing or wrong password, or a banned nick, is answered (464, 465) and
// ends the connection, as IRC servers do.
func (c *ircClient) hello(line []byte, err error, t time.Time) (proto.Hello, bool, error) {
	switch {
	case err == proto.ErrLineTooLong:
		return proto.Hello{}, false, nil
	case err != nil:
		return proto.Hello{}, false, err
	}
	msg, err := proto.ParseIRC(line)
	if err != nil {
		return proto.Hello{}, false, nil // as servers do: ignored
	}
	switch msg.Command {
	case "CAP":
		c.cap(&msg, false)
	case "PASS":
		c.pass = strings.Join(msg.Params, " ") // some clients send a password with a space unquoted (irssi -w)
	case "NICK":
		if c.checkNick(&msg) {
			c.nick = msg.Params[0]
		}
	case "USER":
		if len(msg.Params) < 4 {
			c.reply(proto.ErrNeedMoreParam, "USER", "Not enough parameters")
			break
		}
		c.user = msg.Params[0]
	case "PING":
		c.send(proto.AppendIRC(nil, &proto.IRC{Prefix: proto.Host, Command: "PONG", Params: []string{proto.Host, msg.Param(0)}}))
	case "QUIT":
		return proto.Hello{}, false, io.EOF
	default:
		c.reply(proto.ErrNotRegistered, "You have not registered")
	}
	if c.nick == "" || c.user == "" || c.capping {
		return proto.Hello{}, false, nil
	}
	s := c.m.srv
	if s.conf().Password != "" && !c.m.passed {
		given := c.pass
		c.pass = ""
		if given == "" {
			c.reply(proto.ErrPasswdMismatch, "Password required: send PASS before NICK and USER")
			return proto.Hello{}, false, proto.ErrQuit
		}
		if err := s.password(c.m, given, t); err != nil {
			c.reply(proto.ErrPasswdMismatch, "Password incorrect: "+secretError("password", err))
			return proto.Hello{}, false, proto.ErrQuit
		}
		c.m.passed = true
	}
	if b, ok := s.banned(netip.Addr{}, c.nick, t); ok {
		s.stats.banned.Add(1)
		c.reply(proto.ErrYoureBanned, "The nick "+proto.IRCName(c.nick)+" is "+bannedWhy(b))
		return proto.Hello{}, false, proto.ErrQuit
	}
	if err := s.claim(c.m, c.nick, false); err != nil {
		if !errors.Is(err, errNameTaken) {
			return proto.Hello{}, false, err
		}
		nick := c.nick
		c.nick = ""
		c.reply(proto.ErrNickInUse, proto.IRCName(nick), "Nickname is already in use (by a member of any door)")
		return proto.Hello{}, false, nil
	}
	c.welcome()
	return proto.Hello{Name: c.nick}, true, nil
}

// checkNick reports whether a NICK message holds a valid name, and
// answers it when it does not.
func (c *ircClient) checkNick(msg *proto.IRC) bool {
	if msg.Param(0) == "" {
		c.reply(proto.ErrNoNickGiven, "No nickname given")
		return false
	}
	if err := proto.CheckName(msg.Params[0]); err != nil {
		c.reply(proto.ErrBadNick, msg.Params[0], fmt.Sprint(err))
		return false
	}
	return true
}

// cap answers a CAP command.
func (c *ircClient) cap(msg *proto.IRC, registered bool) {
	sub := strings.ToUpper(msg.Param(0))
	reply := func(params ...string) {
		c.send(proto.AppendIRC(nil, &proto.IRC{Prefix: proto.Host, Command: "CAP",
			Params: append([]string{c.target(), sub}, params...)}))
	}
	switch sub {
	case "LS":
		c.capping = !registered
		reply(ircCaps)
	case "LIST":
		var on string
		if c.serverTime.Load() {
			on = "server-time"
		}
		reply(on)
	case "REQ":
		c.capping = !registered
		asked := strings.Fields(msg.Param(1))
		if len(asked) == 0 || slices.ContainsFunc(asked, func(a string) bool { return strings.TrimPrefix(a, "-") != "server-time" }) {
			sub = "NAK"
			reply(msg.Param(1))
			return
		}
		for _, a := range asked {
			c.serverTime.Store(a == "server-time")
		}
		sub = "ACK"
		reply(msg.Param(1))
	case "END":
		c.capping = false
	default:
		c.reply("410", msg.Param(0), "Invalid CAP command")
	}
}

// welcome sends what a client gets on registering: 001 to 005, the
// counts, the message of the day.
func (c *ircClient) welcome() {
	s, nick := c.m.srv, proto.IRCName(c.nick)
	cfg := s.conf()
	b := c.numeric(nil, proto.RplWelcome, "Welcome to roomrelay, "+nick)
	b = c.numeric(b, proto.RplYourHost, "Your host is "+proto.Host+", a roomrelay chat relay")
	b = c.numeric(b, proto.RplCreated, "Rooms keep their last "+strconv.Itoa(cfg.Limits.History)+" events")
	b = c.numeric(b, proto.RplMyInfo, proto.Host, "roomrelay", "i", "nt")
	b = c.numeric(b, proto.RplISupport, "CASEMAPPING=ascii", "CHANTYPES=#", "CHANLIMIT=#:1", "MAXCHANNELS=1",
		"CHANMODES=,,,nt", "PREFIX=", "NETWORK=roomrelay",
		"NICKLEN="+strconv.Itoa(proto.MaxNameBytes), "CHANNELLEN="+strconv.Itoa(1+proto.MaxRoomBytes),
		"are supported by this server")
	b = c.lusers(b)
	b = c.motd(b)
	c.send(b)
}

// motd is the message of the day: how the relay differs from an IRC
// network.
var motd = []string{
	"roomrelay: one set of rooms and names for every door (nc, the tutorial clients, IRC).",
	"A room is a channel: #kitchen is the room kitchen. You are in one room at a time:",
	"JOIN moves you there, PART takes you back to the default room.",
	"A name with spaces shows as first_client here, and is written so in PRIVMSG.",
	"JOIN replays the room's recent messages (with their time, or in server-time tags).",
}

// motd appends the message of the day.
func (c *ircClient) motd(b []byte) []byte {
	b = c.numeric(b, proto.RplMotdStart, "- "+proto.Host+" Message of the day -")
	for _, l := range motd {
		b = c.numeric(b, proto.RplMotd, "- "+l)
	}
	return c.numeric(b, proto.RplEndOfMotd, "End of /MOTD command.")
}

// lusers appends the counts of members and rooms.
func (c *ircClient) lusers(b []byte) []byte {
	s := c.m.srv
	s.mu.Lock()
	members, conns, rooms := len(s.names), len(s.conns), len(s.rooms)
	s.mu.Unlock()
	b = c.numeric(b, proto.RplLUserClient, fmt.Sprintf("There are %d users and 0 services on 1 server", members))
	b = c.numeric(b, proto.RplLUserOp, "0", "operator(s) online")
	b = c.numeric(b, proto.RplLUserUnknown, strconv.Itoa(max(conns-members, 0)), "unknown connection(s)")
	b = c.numeric(b, proto.RplLUserChannels, strconv.Itoa(rooms), "channels formed")
	return c.numeric(b, proto.RplLUserMe, fmt.Sprintf("I have %d clients and 0 servers", members))
}

// input handles one IRC command of a registered member, at t, or the
// error reading it: the chat commands become the session's requests
// (PRIVMSG #room is a message to the room, PRIVMSG nick a private one,
// JOIN, PART, NAMES, WHO, LIST, QUIT), the rest are answered here.
func (c *ircClient) input(line []byte, err error, t time.Time) (reason, bool) {
	s, m := c.m.srv, c.m
	if err != nil {
		return s.readFailed(m, err)
	}
	msg, err := proto.ParseIRC(line)
	if err != nil {
		return 0, false
	}
	switch msg.Command {
	case "PRIVMSG", "NOTICE":
		if len(msg.Params) < 2 {
			c.reply(proto.ErrNeedMoreParam, msg.Command, "Not enough parameters")
			return 0, false
		}
		return c.say(msg.Params[0], msg.Params[1], t)
	case "JOIN":
		return c.join(&msg, t)
	case "PART":
		room, ok := c.roomOf(msg.Param(0))
		if !ok {
			return 0, false
		}
		if proto.Fold(room) != proto.Fold(m.room.name) {
			c.reply(proto.ErrNotOnChannel, "#"+room, "You're not on that channel")
			return 0, false
		}
		return s.request(m, proto.Request{Op: proto.Part, Arg: room}, t)
	case "NAMES":
		room := m.room.name
		if msg.Param(0) != "" {
			room = strings.TrimPrefix(msg.Params[0], "#")
		}
		c.send(c.names(nil, c.nick, room))
	case "WHO":
		c.send(c.who(nil, msg.Param(0)))
	case "WHOIS":
		c.send(c.whois(nil, msg.Params))
	case "LIST":
		c.send(c.list())
	case "TOPIC":
		room, ok := c.roomOf(msg.Param(0))
		switch {
		case !ok:
		case len(msg.Params) > 1 && !s.isAdmin(m):
			c.reply(proto.ErrChanOpNeeded, "#"+room, "Only an admin sets a topic (OPER first)")
		case len(msg.Params) > 1 && proto.Fold(room) != proto.Fold(m.room.name):
			c.reply(proto.ErrNotOnChannel, "#"+room, "You're not on that channel")
		case len(msg.Params) > 1:
			text := proto.Clean([]byte(proto.StripIRC(msg.Params[1])))
			if text == "" {
				text = "-"
			}
			s.admin(m, proto.Request{Op: proto.Topic, Text: text}, t)
		default:
			c.send(c.topic(nil, room))
		}
	case "OPER":
		if len(msg.Params) < 2 {
			c.reply(proto.ErrNeedMoreParam, "OPER", "Not enough parameters")
			break
		}
		c.oper(msg.Params[1], t)
	case "KICK":
		c.kick(&msg, t)
	case "MODE":
		c.mode(&msg)
	case "MOTD":
		c.send(c.motd(nil))
	case "LUSERS":
		c.send(c.lusers(nil))
	case "PING":
		c.send(proto.AppendIRC(nil, &proto.IRC{Prefix: proto.Host, Command: "PONG", Params: []string{proto.Host, msg.Param(0)}}))
	case "PONG":
	case "CAP":
		c.cap(&msg, true)
	case "NICK":
		if msg.Param(0) != "" && proto.Fold(msg.Params[0]) != m.key {
			m.notify(proto.KindError, "a name cannot change: reconnect with the nick %s", msg.Params[0])
		}
	case "USER", "PASS":
		c.reply(proto.ErrRegistered, "You may not reregister")
	case "STATS":
		s.answerStats(m)
	case "QUIT":
		return s.request(m, proto.Request{Op: proto.Quit}, t)
	default:
		c.reply(proto.ErrUnknown, msg.Command, "Unknown command")
	}
	return 0, false
}

// say sends text from PRIVMSG or NOTICE to target: a message (or, as a
// CTCP ACTION, an action) to the member's room, or a private message to
// a member. Other CTCP requests are dropped.
func (c *ircClient) say(target, text string, t time.Time) (reason, bool) {
	s, m := c.m.srv, c.m
	req := proto.Request{Op: proto.Say}
	if strings.HasPrefix(text, "\x01") {
		body := strings.TrimSuffix(text[1:], "\x01")
		act, ok := strings.CutPrefix(body, "ACTION ")
		if !ok {
			return 0, false
		}
		req.Op, text = proto.Me, act
	}
	req.Text = proto.Clean([]byte(proto.StripIRC(text)))
	req.RawLen = len(text)
	if room, ok := strings.CutPrefix(target, "#"); ok {
		if proto.Fold(room) != proto.Fold(m.room.name) {
			c.reply(proto.ErrCannotSend, target, "Cannot send to channel: you are in #"+m.room.name+" (one room at a time)")
			return 0, false
		}
		return s.request(m, req, t)
	}
	if s.lookup(target) == nil {
		c.reply(proto.ErrNoSuchNick, target, "No such nick/channel")
		return 0, false
	}
	if req.Op == proto.Me {
		m.notify(proto.KindError, "an action goes to the room only, not to %s; not sent", target)
		return 0, false
	}
	req.Op, req.Arg = proto.Msg, target
	return s.request(m, req, t)
}

// join moves the member to the first channel of a JOIN (JOIN 0 parts);
// it is in one room at a time, so any other channel is refused.
func (c *ircClient) join(msg *proto.IRC, t time.Time) (reason, bool) {
	s, m := c.m.srv, c.m
	if msg.Param(0) == "0" {
		return s.request(m, proto.Request{Op: proto.Part}, t)
	}
	chans := strings.Split(msg.Param(0), ",")
	room, ok := c.roomOf(chans[0])
	if !ok {
		return 0, false
	}
	for _, ch := range chans[1:] {
		c.reply(proto.ErrTooManyChans, ch, "You are in one room at a time: #"+room+" only")
	}
	if proto.Fold(room) == proto.Fold(m.room.name) {
		c.send(c.joinLines(nil, m.room.name)) // its client may not know it is there
		return 0, false
	}
	key, _, _ := strings.Cut(msg.Param(1), ",")
	return s.request(m, proto.Request{Op: proto.Join, Arg: room, Key: key}, t)
}

// refuseJoin answers a JOIN refused for want of the room's key (475).
func (c *ircClient) refuseJoin(room string, err error) {
	why := "Cannot join channel (+k)"
	if err != errNeedsKey {
		why += ": " + secretError("key", err)
	}
	c.reply(proto.ErrBadChannelKey, "#"+room, why)
}

// oper makes the member an admin when pass is the admin password (the
// name OPER gives is not looked at).
func (c *ircClient) oper(pass string, t time.Time) {
	switch err := c.m.srv.becomeAdmin(c.m, pass, t); {
	case err == errNoAdmin:
		c.reply(proto.ErrPasswdMismatch, "The relay has no admin password (relay.admin_password)")
	case err != nil:
		c.reply(proto.ErrPasswdMismatch, "Password incorrect: "+secretError("admin password", err))
	default:
		c.reply(proto.RplYoureOper, "You are now an admin of the relay: KICK, TOPIC, STATS (and /admin help on the line door)")
	}
}

// kick answers KICK #room nick [reason]: an admin's kick of a member of
// its room.
func (c *ircClient) kick(msg *proto.IRC, t time.Time) {
	s, m := c.m.srv, c.m
	room, ok := c.roomOf(msg.Param(0))
	switch {
	case !ok:
	case msg.Param(1) == "":
		c.reply(proto.ErrNeedMoreParam, "KICK", "Not enough parameters")
	case !s.isAdmin(m):
		c.reply(proto.ErrNoPrivileges, "Permission Denied- You're not an admin of the relay (OPER first)")
	default:
		in := false
		if to := s.lookup(msg.Params[1]); to != nil {
			to.mu.Lock()
			in = to.room != nil && proto.Fold(to.room.name) == proto.Fold(room)
			to.mu.Unlock()
		}
		if !in {
			c.reply(proto.ErrUserNotInChannel, msg.Params[1], "#"+room, "They aren't on that channel")
			return
		}
		s.admin(m, proto.Request{Op: proto.Kick, Arg: msg.Params[1], Text: proto.Clean([]byte(msg.Param(2)))}, t)
	}
}

// topic appends the topic reply of room: 332 with its topic, 331 without.
func (c *ircClient) topic(b []byte, room string) []byte {
	if _, topic, _ := c.m.srv.roomSettings(room); topic != "" {
		return c.numeric(b, proto.RplTopic, "#"+room, topic)
	}
	return c.numeric(b, proto.RplNoTopic, "#"+room, "No topic is set")
}

// roomOf returns the room of a channel parameter, or answers it with
// 461 or 403 when it names none.
func (c *ircClient) roomOf(ch string) (string, bool) {
	if ch == "" {
		c.reply(proto.ErrNeedMoreParam, "JOIN", "Not enough parameters")
		return "", false
	}
	room, ok := strings.CutPrefix(ch, "#")
	if !ok {
		c.reply(proto.ErrNoSuchChannel, ch, "No such channel: channels start with #")
		return "", false
	}
	if err := proto.CheckRoom(room); err != nil {
		c.reply(proto.ErrNoSuchChannel, ch, fmt.Sprint(err))
		return "", false
	}
	return room, true
}

// mode answers MODE: rooms have modes +nt, members none, and neither
// can be changed.
func (c *ircClient) mode(msg *proto.IRC) {
	target := msg.Param(0)
	switch {
	case !strings.HasPrefix(target, "#"):
		c.reply(proto.RplUModeIs, "+")
	case len(msg.Params) == 1:
		c.reply(proto.RplChannelModeIs, target, "+nt")
	case strings.Trim(msg.Params[1], "+") == "b":
		c.reply(proto.RplEndOfBanList, target, "End of channel ban list")
	default:
		c.reply(proto.ErrChanOpNeeded, target, "Rooms' modes cannot change")
	}
}

// names appends the names replies (353, 366) of room for nick.
func (c *ircClient) names(b []byte, nick, room string) []byte {
	var names []string
	if r := c.m.srv.findRoom(room); r != nil && c.m.srv.mayLook(c.m, r) {
		names = r.names()
		room = r.name
	}
	nick = proto.IRCName(nick)
	head := ":" + proto.Host + " " + proto.RplNamReply + " " + nick + " = #" + room + " :"
	line := []byte(head)
	for i, n := range names {
		n = proto.IRCName(n)
		if i > 0 && len(line)+1+len(n)+2 > proto.MaxIRC {
			b = append(append(b, line...), '\r', '\n')
			line = append(line[:0], head...)
		} else if i > 0 {
			line = append(line, ' ')
		}
		line = append(line, n...)
	}
	if len(names) > 0 {
		b = append(append(b, line...), '\r', '\n')
	}
	return proto.AppendIRC(b, &proto.IRC{Prefix: proto.Host, Command: proto.RplEndOfNames,
		Params: []string{nick, "#" + room, "End of /NAMES list."}})
}

// who answers WHO: a line per member of the room it names.
func (c *ircClient) who(b []byte, mask string) []byte {
	if r := c.m.srv.findRoom(strings.TrimPrefix(mask, "#")); r != nil && strings.HasPrefix(mask, "#") && c.m.srv.mayLook(c.m, r) {
		for _, n := range r.names() {
			n = proto.IRCName(n)
			b = c.numeric(b, proto.RplWhoReply, "#"+r.name, n, proto.Host, proto.Host, n, "H", "0 "+n)
		}
	}
	return c.numeric(b, proto.RplEndOfWho, mask, "End of /WHO list.")
}

// whois answers WHOIS nick (or WHOIS server nick).
func (c *ircClient) whois(b []byte, params []string) []byte {
	if len(params) == 0 {
		return c.numeric(b, proto.ErrNoNickGiven, "No nickname given")
	}
	nick := params[len(params)-1]
	if m := c.m.srv.lookup(nick); m != nil {
		n := proto.IRCName(m.name)
		b = c.numeric(b, proto.RplWhoisUser, n, n, proto.Host, "*", m.name+" (by the "+m.door+" door)")
	} else {
		b = c.numeric(b, proto.ErrNoSuchNick, nick, "No such nick/channel")
	}
	return c.numeric(b, proto.RplEndOfWhois, nick, "End of /WHOIS list.")
}

// list answers LIST: every room, with its members.
func (c *ircClient) list() []byte {
	rooms := c.m.srv.allRooms()
	slices.SortFunc(rooms, func(a, b *room) int { return strings.Compare(a.name, b.name) })
	b := c.numeric(nil, proto.RplListStart, "Channel", "Users  Name")
	all := c.m.srv.isAdmin(c.m)
	for _, r := range rooms {
		key, topic, hidden := c.m.srv.roomSettings(r.name)
		switch {
		case hidden && !all:
		case key != "" && !c.m.srv.mayLook(c.m, r):
			b = c.numeric(b, proto.RplList, "#"+r.name, strconv.Itoa(r.size()), "[+k]") // its topic is its members'
		case key != "":
			b = c.numeric(b, proto.RplList, "#"+r.name, strconv.Itoa(r.size()), "[+k] "+topic)
		default:
			b = c.numeric(b, proto.RplList, "#"+r.name, strconv.Itoa(r.size()), topic)
		}
	}
	return c.numeric(b, proto.RplListEnd, "End of /LIST")
}

// findRoom returns the room called name, or nil.
func (s *Server) findRoom(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[proto.Fold(name)]
}

// target is whom the reader's replies are to: its nick, or "*" before it
// has one.
func (c *ircClient) target() string {
	if c.nick == "" {
		return "*"
	}
	return proto.IRCName(c.nick)
}

// numeric appends a reply from the relay to the member's nick.
func (c *ircClient) numeric(b []byte, code string, params ...string) []byte {
	return proto.AppendIRC(b, &proto.IRC{Prefix: proto.Host, Command: code, Params: append([]string{c.target()}, params...)})
}

// reply sends the member one numeric reply.
func (c *ircClient) reply(code string, params ...string) { c.send(c.numeric(nil, code, params...)) }

// send queues lines for the member, in order with its events.
func (c *ircClient) send(b []byte) { c.m.deliver(lineEvent(b)) }

// joinLines appends what a client gets on joining room: its JOIN, the
// topic and the names.
func (c *ircClient) joinLines(b []byte, room string) []byte {
	b = proto.AppendIRC(b, &proto.IRC{Prefix: proto.IRCUser(c.m.name), Command: "JOIN", Params: []string{"#" + room}})
	if _, topic, _ := c.m.srv.roomSettings(room); topic != "" {
		b = proto.AppendIRC(b, &proto.IRC{Prefix: proto.Host, Command: proto.RplTopic,
			Params: []string{proto.IRCName(c.m.name), "#" + room, topic}})
	} else {
		b = proto.AppendIRC(b, &proto.IRC{Prefix: proto.Host, Command: proto.RplNoTopic,
			Params: []string{proto.IRCName(c.m.name), "#" + room, "No topic is set"}})
	}
	return c.names(b, c.m.name, room)
}

// append appends ev's IRC lines: the door's own replies as they are; the
// welcome to a room as the client's PART of its channel and JOIN of the
// room's; a notice, error or private message to the member alone; a
// room's event as the lines every IRC member shares, with the server-time
// tag when the client asked for it. A replayed message carries its time
// in its text when the client did not ask for server-time; joins and
// parts are not replayed, since the client would take them for now.
func (c *ircClient) append(bufs net.Buffers, ev *event) net.Buffers {
	switch {
	case ev.kind == 0: // a line of the door's own
		return append(bufs, ev.text)
	case ev.kind == proto.KindNotice && ev.epoch() != "": // the welcome to a room
		var b []byte
		if c.channel != "" && proto.Fold(c.channel) != proto.Fold(ev.room) {
			b = proto.AppendIRC(b, &proto.IRC{Prefix: proto.IRCUser(c.m.name), Command: "PART",
				Params: []string{"#" + c.channel, "joined #" + ev.room}})
		}
		c.channel = ev.room
		return append(bufs, c.joinLines(b, ev.room))
	case ev.roomSeq() == 0: // to this member alone
		to := c.m.name
		if ev.kind != proto.KindPrivate && c.channel != "" {
			to = "#" + c.channel
		}
		full := ev.full()
		return append(bufs, proto.AppendIRCEvent(nil, &full, to))
	}
	tags := c.serverTime.Load()
	if ev.seq < c.m.base.Load() { // replayed
		switch {
		case ev.kind == proto.KindJoin || ev.kind == proto.KindPart:
			return bufs
		case !tags:
			if st := ev.stamped(); st != nil {
				stamped := ev.full()
				stamped.Text = string(st) + stamped.Text
				return append(bufs, proto.AppendIRCEvent(nil, &stamped, ""))
			}
		}
	}
	l := ev.ircLines()
	if !tags {
		return append(bufs, l.lines)
	}
	for rest := l.lines; len(rest) > 0; {
		n := bytes.IndexByte(rest, '\n') + 1
		bufs = append(bufs, l.tag, rest[:n])
		rest = rest[n:]
	}
	return bufs
}

// ircLines returns a room event's IRC lines, made by the first IRC member
// that needs them (two at once make the same).
func (ev *event) ircLines() *ircLines {
	x := ev.ext()
	if l := x.irc.Load(); l != nil {
		return l
	}
	e := ev.full()
	l := &ircLines{lines: proto.AppendIRCEvent(make([]byte, 0, len(ev.text)+3*len(e.From)+len(e.Room)+48), &e, "")}
	if !e.Time.IsZero() {
		l.tag = proto.AppendIRCTime(make([]byte, 0, 32), e.Time)
	}
	x.irc.Store(l)
	return l
}

// farewell is the ERROR that ends the connection.
func (c *ircClient) farewell(e *proto.Event) []byte { return ircError(e) }

// ping is the keepalive sent to a quiet client (see member.tick); its
// PONG counts as the client speaking.
func (c *ircClient) ping() []byte {
	return proto.AppendIRC(nil, &proto.IRC{Command: "PING", Params: []string{proto.Host}})
}
