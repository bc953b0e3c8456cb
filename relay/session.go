package relay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"roomrelay/internal/fmtlite"
	"strings"
	"time"

	"roomrelay/proto"
)

// The session: the one place for a member's policy, whatever its door and
// driver. A driver reads bytes, hands each line to line, writes what
// collect gives it, asks expired whether a deadline has passed when it
// wakes up without news, and calls end once when the member is done.
// Every rule reads the configuration in force, so a Reload applies to
// members already connected; times are arguments, so the policy is tested
// without sockets or sleeps.

// line handles one line m sent at t, or the error reading it: its hello
// until it has a name, then its requests. It reports whether m leaves,
// and why. Every door's lines come here, a browser's /api/send too.
func (m *member) line(line []byte, err error, t time.Time) (reason, bool) {
	s := m.srv
	if err == nil || err == proto.ErrLineTooLong {
		l := s.conf().Limits
		m.lim.spend(t, 1, l.Rate, float64(l.Burst)) // its driver asked paceBy first
		m.sinceStall++
	}
	if !m.named.Load() { // lastIn stays the time it connected
		if err == nil {
			s.stats.bytesIn.Add(int64(len(line)) + 1)
		}
		h, ok, err := m.hello(line, err, t)
		switch {
		case err == io.EOF:
			return byEOF, true
		case errors.Is(err, proto.ErrQuit):
			return byQuit, true
		case err != nil:
			s.debugf("%s %s: handshake: %v", m.door, m.addr(), err)
			return byRead, true
		case ok:
			s.enter(m, h, t)
			m.lastIn.Store(t.UnixNano())
			m.named.Store(true)
		}
		return 0, false
	}
	m.lastIn.Store(t.UnixNano())
	if err == nil {
		s.stats.bytesIn.Add(int64(len(line)) + 1) // and its end of line
	}
	if m.codec != nil {
		return m.codec.input(line, err, t)
	}
	return s.input(m, line, err, t)
}

// hello takes one line of m's handshake at t, or the error reading it, in
// its door's format, and answers it: it reports whether m now has a name
// and which room it asks for. An error ends the handshake.
func (m *member) hello(line []byte, err error, t time.Time) (proto.Hello, bool, error) {
	if m.codec != nil {
		return m.codec.hello(line, err, t)
	}
	h, reply, err := m.srv.hello(m, line, err, t)
	if reply != nil {
		m.deliver(lineEvent(reply))
	}
	return h, err == nil && reply == nil, err
}

// paceBy is when m's driver may hand its session the next line, at t:
// the zero time for now; otherwise when its budgets have refilled, its
// lines (Limits.Rate and Burst: every line counts, messages and commands
// alike) and the bytes of its replays (Limits.ReplayBytesPerMinute).
// Until then its driver reads nothing more from it: what it sent waits,
// in order, in its read buffer and its socket, and TCP slows the sender.
// A driver that asks paceBy before each line paces the member; see
// paced for when waiting input makes it a flooder.
func (m *member) paceBy(t time.Time) time.Time {
	l := m.srv.conf().Limits
	by := m.lim.readyAt(t, 1, l.Rate, float64(l.Burst))
	if rate, burst := replayBudget(l.ReplayBytesPerMinute); rate > 0 {
		if r := m.replays.readyAt(t, 0, rate, burst); r.After(by) {
			by = r
		}
	}
	return by
}

// Bounds of the stall of a publisher in a room under pressure: see
// stallBy and stallLines.
const (
	stallFor = 5 * time.Millisecond
	// A member whose socket has taken nothing for this long exerts no
	// pressure (see presses): about as long as a member that keeps
	// reading may pause on a busy machine (measured in TestFastPublishers:
	// most pauses under 60 ms, a few up to 210; up to 340 under -race).
	pressFor = 250 * time.Millisecond
)

// waitBy is when m's driver may hand its session the next line, at t: the
// zero time for now; otherwise paceBy's time (paced true: the driver
// calls paced), or stallBy's.
func (m *member) waitBy(t time.Time) (by time.Time, paced bool) {
	if by := m.paceBy(t); !by.IsZero() {
		return by, true
	}
	return m.stallBy(t), false
}

// stallBy is when m, a publisher in a room under pressure (see room.post
// and stallLines), may be read again: after each run of as many lines as
// the pressure allows, until the room's readers that press have caught
// up to a quarter of their bound (room.unstall ends the stall then, and
// has m's driver read it again), for stallFor at most, so that TCP paces
// a fast publisher to the room's readers while they catch up (the zero
// time: now). A driver asks before each line, so the pressure bounds the
// lines read in a turn as well.
func (m *member) stallBy(t time.Time) time.Time {
	if until := time.Unix(0, m.stallUntil.Load()); t.Before(until) {
		return until
	}
	r := m.room
	if r == nil {
		return time.Time{}
	}
	if n := int(r.pressure.Load()); n == 0 || int(m.sinceStall) < n {
		return time.Time{}
	}
	m.sinceStall = 0
	if r.relaxed(t) {
		return time.Time{} // its readers caught up since the last post
	}
	until := t.Add(m.srv.stallMax)
	m.stallUntil.Store(until.UnixNano())
	r.stall(m)
	if r.relaxedUnstall(t) {
		// Its readers caught up between relaxed and stall: their
		// caughtUp found no stall to end.
		return time.Time{}
	}
	m.srv.stats.stalled.Add(1)
	return until
}

// stallLines is how many lines each publisher of a room may send between
// two stalls (see stallBy) while the member furthest behind that presses
// (see presses) is lag events behind, maxLag being as far as it may fall
// before it is cut: no bound (0) up to a quarter of maxLag, then fewer the
// further it falls, from readBudget (a turn of the loop) down to one line
// a stall from three quarters of maxLag on. So the publishers go no
// faster than the readers that keep reading, which keep a quarter of the
// history in hand: ten publishers at one line a stall post 2 000 lines a
// second.
func stallLines(lag, maxLag uint64) int {
	low, top := maxLag/4, maxLag/4*3
	switch {
	case lag <= low:
		return 0
	case lag >= top:
		return 1
	}
	return max(1, int(readBudget*(top-lag)/(top-low)))
}

// presses reports whether m, behind in its room, may stall the room's
// publishers at t: while its socket takes what it is written, or has been
// full for less than pressFor. A member whose socket takes nothing for
// longer (frozen, or reading far slower than the room goes) is left to
// the cuts (its write deadline, its cursor leaving the history): a frozen
// member holds the room back for pressFor at most, in stalls of stallFor.
func (m *member) presses(t time.Time) bool {
	at := m.blockedAt.Load()
	return at == 0 || t.UnixNano()-at < int64(m.srv.pressMax)
}

// replayBudget is the rate (bytes a second) and burst of a member's
// replays for Limits.ReplayBytesPerMinute; a rate of 0 bounds nothing.
func replayBudget(perMinute int) (rate, burst float64) {
	return float64(perMinute) / 60, float64(perMinute)
}

// chargeReplay counts n bytes replayed to m at t against its replay
// budget; it may go into debt (see paceBy). Called with m.mu held.
func (m *member) chargeReplay(t time.Time, n int) {
	rate, burst := replayBudget(m.srv.conf().Limits.ReplayBytesPerMinute)
	m.replays.spend(t, float64(n), rate, burst)
}

// paced is what a driver calls when it stops reading m at t (see
// paceBy), with the unread bytes of input waiting in its read buffer and
// socket (known false: the driver cannot tell, and time alone judges). It
// counts the pause, and reports whether m has now held more than
// Limits.FloodBytes unread for longer than Timeouts.Flood: it is then
// disconnected as flooding. A paste drains at the member's rate and
// passes; a sender that never stops does not.
func (m *member) paced(t time.Time, unread int, known bool) (flooding bool) {
	c := m.srv.conf()
	m.srv.stats.paced.Add(1)
	if known && unread <= c.Limits.FloodBytes {
		m.floodAt = 0
		return false
	}
	if m.floodAt == 0 {
		m.floodAt = t.UnixNano()
		return false
	}
	return t.Sub(time.Unix(0, m.floodAt)) > c.Timeouts.Flood.D()
}

// readBy is when m's read deadline passes, as things stand: the end of
// its handshake until it has a name, then the end of its idle time; for a
// legacy member, Timeouts.LegacyLapse after it last registered, posted or
// took a delivery; for a browser member, its driver's lapseBy. A driver waits no longer than this.
func (m *member) readBy() time.Time {
	if isClosed(m.srv.quit) {
		return time.Unix(1, 0) // the relay is closing: now
	}
	tm := m.srv.conf().Timeouts
	switch {
	case m.conn == nil: // it lapses instead
		if l, ok := m.drv.(lapser); ok {
			return l.lapseBy(m)
		}
		return time.Unix(0, m.lastIn.Load()).Add(tm.LegacyLapse.D())
	case !m.named.Load():
		return time.Unix(0, m.lastIn.Load()).Add(tm.Handshake.D()) // when it connected
	}
	return time.Unix(0, m.lastIn.Load()).Add(tm.Idle.D())
}

// pingBy is when a named member whose codec has a keepalive (IRC's PING)
// is to be pinged, Timeouts.Keepalive after it last spoke or was pinged;
// the zero time for other members, or with Timeouts.Keepalive "0s".
func (m *member) pingBy() time.Time {
	k := m.srv.conf().Timeouts.Keepalive.D()
	if _, ok := m.codec.(pinger); !ok || k <= 0 || !m.named.Load() {
		return time.Time{}
	}
	return time.Unix(0, max(m.lastIn.Load(), m.pinged.Load())).Add(k)
}

// wakeBy is when a driver that reads m is to call tick at the latest.
func (m *member) wakeBy() time.Time {
	by := m.readBy()
	if p := m.pingBy(); !p.IsZero() && p.Before(by) {
		return p
	}
	return by
}

// tick applies m's rules of time at t, for a driver that woke without
// news: it reports a deadline that has passed (see expired), and
// otherwise pings a member that has been quiet for its keepalive.
func (m *member) tick(t time.Time) (reason, bool) {
	if why, ok := m.expired(t); ok {
		return why, true
	}
	if by := m.pingBy(); !by.IsZero() && !t.Before(by) && !m.isDone() {
		m.pinged.Store(t.UnixNano())
		m.deliver(lineEvent(m.codec.(pinger).ping()))
	}
	return 0, false
}

// lapser is the driver of members without a connection of their own
// that say when they lapse (the HTTP door's: a grace once their stream is
// gone).
type lapser interface{ lapseBy(m *member) time.Time }

// writeBy is when a write to m that makes no progress has to give up, or
// the zero time while its writes make progress.
func (m *member) writeBy() time.Time {
	at := m.blockedAt.Load()
	if at == 0 {
		return time.Time{}
	}
	return time.Unix(0, at).Add(m.srv.conf().Timeouts.Write.D())
}

// expired reports whether one of m's deadlines has passed at t, and which:
// the handshake, the idle time, or a write that made no progress for
// Timeouts.Write (the member is too slow: it does not take its data);
// for a legacy member, its lapse. Once the relay is
// closing, all have.
func (m *member) expired(t time.Time) (reason, bool) {
	switch {
	case m.isDone():
		return 0, false
	case isClosed(m.srv.quit):
		return byShutdown, true
	case t.After(m.readBy()):
		switch {
		case m.conn == nil:
			return byLapsed, true
		case !m.named.Load():
			return byNoName, true
		}
		return byIdle, true
	case m.blockedAt.Load() != 0 && t.After(m.writeBy()):
		return bySlow, true // its socket took nothing for Timeouts.Write
	}
	return 0, false
}

// blocked records whether m's socket took what was written at t: the
// write deadline counts from the first write in a row that made no
// progress.
func (m *member) blocked(stuck bool, t time.Time) {
	switch {
	case !stuck:
		m.blockedAt.Store(0)
	case m.blockedAt.Load() == 0:
		m.blockedAt.Store(t.UnixNano())
	}
}

// flushOver reports whether a leaving member is to get nothing more at t
// but its goodbye: it is not owed a flush, or the time for it is up.
func (m *member) flushOver(t time.Time) bool {
	return !m.why.flushes() || t.UnixNano() > m.flushBy
}

// end sees a member off, once its driver has written all it will but
// rest (what a cut write left): it leaves its room and frees its name, is
// counted and logged, and its connection is closed. A member told why it
// leaves gets rest and its goodbye within a second and a FIN after them
// (see hangUp), which may take up to two seconds in all: drivers call end
// for such members off their hot path.
func (m *member) end(rest net.Buffers) {
	s := m.srv
	s.leave(m)
	if m.id != 0 {
		s.infof(leftFormat, m.door, m.addr(), m.name, m.why)
	}
	if m.conn == nil {
		return
	}
	if bye := m.goodbye(); bye != nil && m.why.told() {
		m.conn.SetWriteDeadline(time.Now().Add(min(s.conf().Timeouts.Write.D(), time.Second)))
		rest = append(rest, bye)
		s.stats.bytesOut.Add(int64(len(bye)))
		rest.WriteTo(m.conn)
		hangUp(m.conn, time.Second)
	}
	s.release(m.conn)
}

// handleHook, when set (by tests only), runs before each request is
// handled.
var handleHook func(*member, proto.Request)

// addr is where m connects from, for the log: the address a legacy
// member registered from, a browser member's, or "-".
func (m *member) addr() string {
	if m.conn == nil {
		if m.from.IsValid() {
			return m.from.String() // a legacy or browser member's
		}
		return "-"
	}
	return m.conn.RemoteAddr().String()
}

// recovered turns a panic while serving m into its end: logged, and m
// kicked, so that its name and place are freed as for any other end. Use
// it deferred, in every goroutine that serves members.
func (m *member) recovered() {
	if p := recover(); p != nil {
		m.srv.errorf("%s %s: %s: panic: %v", m.door, m.addr(), m.name, p)
		m.kick(byPanic)
	}
}

// enter puts a member that just said hello at t in the room it asked
// for, given its key when it has one.
func (s *Server) enter(m *member, h proto.Hello, t time.Time) {
	room := h.Room
	if room == "" {
		room = s.conf().DefaultRoom
	}
	replay := s.conf().Limits.Replay
	if h.Replay != nil {
		replay = min(*h.Replay, s.conf().Limits.History)
	}
	if err := s.mayEnter(m, room, h.Key, t); err != nil {
		m.notify(proto.KindError, "%s; you are in %s", joinRefused(room, err), s.conf().DefaultRoom)
		s.join(m, s.conf().DefaultRoom, nil, replay)
		return
	}
	if err := s.join(m, room, h.Resume(), replay); err != nil {
		m.notify(proto.KindError, "%v; you are in %s", err, s.conf().DefaultRoom)
		s.join(m, s.conf().DefaultRoom, nil, replay)
	}
}

// hello takes one line of a handshake at t, or the error reading it: the
// relay's password (/pass, when it has one), then a hello that claims a
// free, valid name for m (with the password in it, for a JSON hello that
// did not send /pass), or a line to answer with the reason it does not.
// An error ends the handshake. A wrong password is answered as such, its
// hello's name not looked at.
func (s *Server) hello(m *member, line []byte, err error, t time.Time) (h proto.Hello, reply []byte, _ error) {
	if err == proto.ErrLineTooLong {
		err = fmtlite.Errorf("line too long (at most %d bytes)", s.conf().Limits.MaxLineBytes)
	} else if err != nil {
		return h, nil, err
	}
	json := len(line) > 0 && line[0] == '{'
	answer := func(kind proto.Kind, text string) []byte {
		e := proto.Event{Kind: kind, Text: text}
		if json {
			return proto.AppendJSON(nil, &e)
		}
		return proto.AppendText(nil, &e)
	}
	if isStats(line) {
		// Before a name, for `roomrelay stats`: from relay.stats_allow only.
		if s.mayReadStats(m) {
			return h, s.statsLine(), nil
		}
		return h, answer(proto.KindError, "/stats is answered for relay.stats_allow only; send your name"), nil
	}
	if given, ok := proto.ParsePass(line); err == nil && ok {
		switch {
		case s.conf().Password == "":
			return h, answer(proto.KindNotice, "this relay has no password; send your name"), nil
		case m.passed:
			return h, answer(proto.KindNotice, "password taken already; send your name"), nil
		}
		if err := s.password(m, given, t); err != nil {
			return h, answer(proto.KindError, secretError("password", err)), nil
		}
		m.passed = true
		return h, answer(proto.KindNotice, "password accepted; send your name"), nil
	}
	if err == nil {
		h, err = proto.ParseHello(line)
		if err == proto.ErrQuit {
			return h, nil, err // it leaves, told "bye"
		}
	}
	if err == nil && !m.passed && s.conf().Password != "" {
		if h.Password == "" {
			return h, answer(proto.KindError, needPassword), nil
		}
		if err := s.password(m, h.Password, t); err != nil {
			return h, answer(proto.KindError, secretError("password", err)), nil
		}
		m.passed = true
	}
	if err == nil {
		err = s.claim(m, h.Name, h.JSON())
	}
	if err == nil {
		return h, nil, nil
	}
	return h, answer(proto.KindError, err.Error()+"; send another name"), nil
}

// needPassword answers a name sent before the relay's password.
const needPassword = `this relay has a password: send /pass PASSWORD first (or "password" in a JSON hello), then your name`

// input handles one line that m sent at t, or the error reading it. It
// reports whether m leaves, and why.
func (s *Server) input(m *member, line []byte, err error, t time.Time) (reason, bool) {
	if err != nil {
		return s.readFailed(m, err)
	}
	if s.say(m, line) {
		return 0, false
	}
	req, err := proto.Parse(line)
	if err != nil {
		m.notify(proto.KindError, "%v", err)
		return 0, false
	}
	return s.request(m, req, t)
}

// say posts line, a message as it is (no command, nothing to clean,
// not blank, not too long), without making a string of its text: the
// event keeps it in its text line only. It reports false for any other
// line, which Parse and request handle.
func (s *Server) say(m *member, line []byte) bool {
	if len(line) == 0 || line[0] == '/' || handleHook != nil || len(m.name)+2+len(line) > s.conf().Limits.MaxLineBytes ||
		!proto.IsClean(line) || len(bytes.TrimSpace(line)) == 0 {
		return false
	}
	m.room.postText(&proto.Event{Kind: proto.KindMsg, From: m.name, Time: now()}, line, m.id, s.maxLag())
	s.stats.posted.Add(1)
	return true
}

// readFailed is what an error reading m's next line means: a line too
// long is discarded, and m told; any other error ends m.
func (s *Server) readFailed(m *member, err error) (reason, bool) {
	switch {
	case err == proto.ErrLineTooLong:
		m.notify(proto.KindError, "line too long (at most %d bytes); discarded", s.conf().Limits.MaxLineBytes)
		return 0, false
	case err == io.EOF:
		return byEOF, true
	}
	return byRead, true
}

// request carries out req, which m made at t (its driver paced it: see
// paceBy). It reports whether m leaves, and why.
func (s *Server) request(m *member, req proto.Request, t time.Time) (reason, bool) {
	switch req.Op {
	case proto.Quit:
		return byQuit, true
	case proto.Pass, proto.Admin, proto.Kick, proto.Ban, proto.Unban, proto.Bans, proto.Topic, proto.SetKey:
		s.admin(m, req, t)
		return 0, false
	case proto.Join:
		if !s.checkJoin(m, &req, t) {
			return 0, false
		}
	}
	if req.Op == proto.Say && strings.TrimSpace(req.Text) == "" {
		return 0, false // a blank line (Enter pressed) is no message; it still counts as life
	}
	s.handle(m, req)
	return 0, false
}

// handle carries out one request of a member in a room.
func (s *Server) handle(m *member, req proto.Request) {
	if handleHook != nil {
		handleHook(m, req)
	}
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
			s.noMember(m, req)
			return
		}
		e := proto.Event{Kind: proto.KindPrivate, From: m.name, To: to.name, Text: req.Text, Time: now()}
		s.stats.private.Add(1)
		to.deliver(newEvent(&e, m.id))
		switch {
		case m.codec != nil: // its client shows what it sent
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
		s.list(m, "rooms:", s.roomList(s.isAdmin(m)))
	case proto.Ping:
		m.notify(proto.KindNotice, "%s", strings.TrimSpace("pong "+req.Text))
	case proto.Stats:
		s.answerStats(m)
	case proto.Help:
		for _, c := range proto.Commands {
			m.notify(proto.KindNotice, "%s", c)
		}
	}
}

// noMember tells m that no member is called req.Arg, and, when the name
// with the next words of the line is one, how to write it in a command
// ("first client" is first_client).
func (s *Server) noMember(m *member, req proto.Request) {
	name, hint := req.Arg, ""
	for _, w := range strings.Fields(req.Text) {
		if name += "_" + w; len(name) > proto.MaxNameBytes {
			break
		}
		if to := s.lookup(name); to != nil {
			hint = " (write " + name + " for " + to.name + ")"
			break
		}
	}
	m.notify(proto.KindError, "no member called %s%s", req.Arg, hint)
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
