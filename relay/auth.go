package relay

import (
	"errors"
	"net/netip"
	"roomrelay/internal/errlite"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/netaddr"
	"slices"
	"strings"
	"sync"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/config"
	"roomrelay/relay/secret"
)

// Secrets, bans and admins: the relay's password (relay.password), rooms'
// keys, topics and listing (relay.rooms, changed by an admin for a run),
// the admin commands, and the brake on guessing. A secret is checked
// against its hash (package secret) by whichever door received it; a
// wrong one is counted and makes its address wait before its next try
// (guesses), and no answer says more than which secret was wrong.

// auth is the relay's state of secrets: what admins changed for this
// run, the bans, and the addresses guessing. Its mu is a leaf: nothing
// else is locked while it is held.
type auth struct {
	mu      sync.Mutex
	guesses *guesses
	bans    []ban
	keys    map[string]string // by folded room name: a key's hash set by an admin, or "" for none
	topics  map[string]string // by folded room name: a topic set by an admin, or "" for none
}

// ban is a name or a network refused until a time.
type ban struct {
	name  string       // folded; "" for a network
	net   netip.Prefix // when name is ""
	until time.Time
	why   string
}

// maxBans bounds the bans in force.
const maxBans = 256

// dropBans removes the bans for which drop is true, as slices.DeleteFunc
// (whose copy for bans is about 1 KB of a mipsle binary); a.mu is held.
func (a *auth) dropBans(drop func(ban) bool) {
	kept := a.bans[:0]
	for _, b := range a.bans {
		if !drop(b) {
			kept = append(kept, b)
		}
	}
	clear(a.bans[len(kept):])
	a.bans = kept
}

// Wrong secrets: an address gets guessFree tries a second in a row, then
// the wait before its next try doubles with each wrong one, up to
// guessMaxWait; an address without a wrong secret for guessForgive
// starts afresh. The table holds guessSources addresses (an IPv6 address
// counts by its /64, which one host may hold whole).
const (
	guessFree    = 3
	guessMaxWait = 10 * time.Minute
	guessForgive = 15 * time.Minute
	guessSources = 1024
	guessBusy    = time.Minute // the wait of a new address while the table is full of guessers
)

// guesses is the wait of each address that gave wrong secrets, at most
// max of them. When the table is full, the entry unused the longest makes
// room only once it is forgiven; otherwise a new address waits guessBusy:
// a sweep of new addresses cannot reset anyone's wait. Guarded by
// auth.mu.
type guesses struct {
	tab lruTable[netip.Prefix, guesser]
}

type guesser struct {
	fails int       // wrong secrets in a row
	next  time.Time // the earliest next try
}

func newGuesses(max int) *guesses {
	return &guesses{lruTable[netip.Prefix, guesser]{max: max}}
}

// guessKey is the entry of ip: the address itself, or an IPv6 address's
// /64.
func guessKey(ip netip.Addr) netip.Prefix {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	p, _ := ip.Prefix(ip.BitLen())
	return p
}

// forgiven reports whether g holds nothing worth remembering at t.
func (g *guesser) forgiven(t time.Time) bool { return t.Sub(g.next) > guessForgive }

// wait returns how long ip must wait at t before it may try a secret; 0
// when it may try now. An address that gave a wrong secret before may
// try once: its next try is a second off at least, so that tries at
// once from one address count one after the other.
func (gs *guesses) wait(ip netip.Addr, t time.Time) time.Duration {
	g := gs.tab.find(guessKey(ip))
	if g == nil {
		if gs.tab.full(func(old *guesser) bool { return old.forgiven(t) }) {
			return guessBusy
		}
		return 0
	}
	if t.Before(g.next) {
		return g.next.Sub(t)
	}
	if !g.forgiven(t) {
		g.next = t.Add(time.Second)
	}
	return 0
}

// passed records a right secret from ip at t: the second its try held
// (see wait) is free again, for the next secret it gives with it (a key
// after the password). Its wrong ones still count.
func (gs *guesses) passed(ip netip.Addr, t time.Time) {
	if g := gs.tab.find(guessKey(ip)); g != nil && g.next.After(t) {
		g.next = t
	}
}

// fail records a wrong secret from ip at t, and returns the wait before
// its next try.
func (gs *guesses) fail(ip netip.Addr, t time.Time) time.Duration {
	g := gs.tab.get(guessKey(ip), func(old *guesser) bool { return old.forgiven(t) })
	if g == nil {
		return guessBusy
	}
	if g.forgiven(t) {
		g.fails = 0
	}
	g.fails++
	w := guessMaxWait
	if n := g.fails - guessFree; n < 20 {
		w = min(time.Second<<max(n, 0), guessMaxWait)
	}
	g.next = t.Add(w)
	return w
}

// errBadSecret is a wrong password or key; errNeedsKey a join without
// the key of a room that has one; errNoPassword a hello without the
// relay's password. Only the first counts as a guess.
var (
	errBadSecret  = errors.New("wrong secret")
	errNeedsKey   = errors.New("needs a key")
	errNoPassword = errors.New(needPassword)
)

// waitError is a secret not tried: its address is to wait.
type waitError struct {
	ip   netip.Addr
	wait time.Duration
}

func (e *waitError) Error() string {
	return fmtlite.Sprintf("too many wrong passwords or keys from %s: try again in %v", e.ip, e.seconds()*time.Second)
}

// seconds is the wait in whole seconds, rounded up.
func (e *waitError) seconds() time.Duration {
	return (e.wait + time.Second - 1) / time.Second
}

// Checking a secret takes a few milliseconds on a slow router (PBKDF2):
// at most hashers secrets are checked at once, relay-wide, and never on
// a worker of the loop. A worker about to check one for a member hands
// the loop to a new worker (loop.handoff), checks it, finishes the
// member's turn and stops: the other members are served meanwhile, and
// the member's next lines wait, in order, until its check is done.
const hashers = 2

// match is secret.Match; tests make it slow.
var match = secret.Match

// checkSecret checks the secret given by m at t against hash, what being
// what it is for the log ("password", "admin password", "key of
// kitchen"), unless m's address is to wait. It counts and logs a wrong
// one, never the secret itself. Its address's wait is looked at once it
// has its turn to check (see hashers): tries at once count one after the
// other.
func (s *Server) checkSecret(m *member, what, hash, given string, t time.Time) error {
	if !s.hashTurn(m) {
		return errLeft
	}
	ip := m.from
	s.auth.mu.Lock()
	wait := s.auth.table().wait(ip, t)
	s.auth.mu.Unlock()
	if wait > 0 {
		s.hashDone()
		s.stats.slowed.Add(1)
		s.debugf("%s: %s not tried: its address waits %v", m.who(), what, wait)
		return &waitError{ip, wait}
	}
	ok := match(hash, given) // secret.Match has no panic: the turn is ended by hand, a defer costs the minimal build a 64 KiB step
	s.hashDone()
	s.auth.mu.Lock()
	if ok {
		s.auth.table().passed(ip, t)
		s.auth.mu.Unlock()
		return nil
	}
	wait = s.auth.table().fail(ip, t)
	s.auth.mu.Unlock()
	s.stats.badSecret.Add(1)
	s.warnf("%s: wrong %s; its address waits %v before its next try", m.who(), what, wait)
	return errBadSecret
}

// errLeft is a secret not checked: its member left (was kicked, or the
// relay is stopping) while it waited for its turn.
var errLeft = errors.New("not checked: you are leaving")

// hashTurn waits for m's turn to hash a secret, off the loop (see
// hashers), and reports whether it has it: not once m is leaving. Its
// hashDone ends the turn.
func (s *Server) hashTurn(m *member) bool {
	if lc, ok := m.drv.(*lconn); ok {
		s.loop.handoff(lc)
	}
	select {
	case s.hashing <- struct{}{}:
		return true
	case <-m.doneC():
		return false
	}
}

// hashDone ends a turn hashTurn gave.
func (s *Server) hashDone() { <-s.hashing }

// table returns the guesses, made on first need. Called with mu held.
func (a *auth) table() *guesses {
	if a.guesses == nil {
		a.guesses = newGuesses(guessSources)
	}
	return a.guesses
}

// who names m for the log: its door, address, and name once it has one.
func (m *member) who() string {
	addr := m.addr()
	if m.name == "" {
		return m.door + " " + addr
	}
	return m.door + " " + addr + ": " + m.name
}

// secretError says what went wrong with a secret, in the words members
// see: which secret, never more.
func secretError(what string, err error) string {
	we, isWait := errlite.As[*waitError](err)
	switch {
	case isWait:
		return we.Error()
	case err == errBadSecret:
		return "wrong " + what
	}
	return err.Error()
}

// password checks the relay's password given by m at t, when the relay
// has one; it is nil when it has none.
func (s *Server) password(m *member, given string, t time.Time) error {
	hash := s.conf().Password
	switch {
	case hash == "":
		return nil
	case given == "":
		return errNoPassword
	}
	return s.checkSecret(m, "password", hash, given, t)
}

// roomSettings returns the key's hash, the topic and whether the room
// called name is hidden, as configured and as an admin changed them for
// this run.
func (s *Server) roomSettings(name string) (key, topic string, hidden bool) {
	fold := proto.Fold(name)
	r := s.conf().Rooms[fold]
	key, topic, hidden = r.Key, r.Topic, r.Hidden
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	if k, ok := s.auth.keys[fold]; ok {
		key = k
	}
	if tp, ok := s.auth.topics[fold]; ok {
		topic = tp
	}
	return key, topic, hidden
}

// mayEnter reports why m may not enter the room called name with key at
// t: it has a key, and m is no admin, is not in it, and gives no key or
// a wrong one.
func (s *Server) mayEnter(m *member, name, key string, t time.Time) error {
	hash, _, _ := s.roomSettings(name)
	if hash == "" || s.isAdmin(m) {
		return nil
	}
	m.mu.Lock()
	in := m.room != nil && proto.Fold(m.room.name) == proto.Fold(name)
	m.mu.Unlock()
	switch {
	case in:
		return nil
	case key == "":
		return errNeedsKey
	}
	return s.checkSecret(m, "key of "+name, hash, key, t)
}

// joinRefused says why m may not enter room, in words for the member.
func joinRefused(room string, err error) string {
	if err == errNeedsKey {
		return fmtlite.Sprintf("cannot join %s: it has a key (/join %s KEY)", room, room)
	}
	return fmtlite.Sprintf("cannot join %s: %s", room, secretError("key", err))
}

// joinRefuser is a codec that says in its own words that a join was
// refused (IRC's 475).
type joinRefuser interface{ refuseJoin(room string, err error) }

// checkJoin takes the key out of a /join of m at t (see proto.parseJoin:
// a lone word after the room is its key when it has one, a resume point
// when it has none), and reports whether m may enter; when it may not, m
// is told why.
func (s *Server) checkJoin(m *member, req *proto.Request, t time.Time) bool {
	hash, _, _ := s.roomSettings(req.Arg)
	switch {
	case hash == "" && req.Either && req.Since == nil:
		m.notify(proto.KindError, "cannot join %s: it has no key, and room names have no spaces (/join ROOM [KEY] [SINCE])", req.Arg)
		return false
	case hash != "" && req.Either:
		req.Since = nil
	}
	err := s.mayEnter(m, req.Arg, req.Key, t)
	req.Key = ""
	if err == nil {
		return true
	}
	if r, ok := m.codec.(joinRefuser); ok {
		r.refuseJoin(req.Arg, err)
	} else {
		m.notify(proto.KindError, "%s", joinRefused(req.Arg, err))
	}
	return false
}

// mayLook reports whether m may see who is in r from outside it (IRC's
// NAMES and WHO): r is open and listed, or m is in it, or an admin.
func (s *Server) mayLook(m *member, r *room) bool {
	if key, _, hidden := s.roomSettings(r.name); key == "" && !hidden || s.isAdmin(m) {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.room == r
}

// isAdmin reports whether m may use the admin commands: it gave the admin
// password, or comes from loopback with relay.admin_loopback.
func (s *Server) isAdmin(m *member) bool {
	return m.admin.Load() || s.conf().AdminLoopback && m.from.IsLoopback()
}

// banned returns the ban in force at t on the address ip or, when name
// is not "", on the name; it drops the bans that have expired.
func (s *Server) banned(ip netip.Addr, name string, t time.Time) (ban, bool) {
	fold := ""
	if name != "" {
		fold = proto.Fold(name)
	}
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.dropBans(func(b ban) bool { return !t.Before(b.until) })
	for _, b := range s.auth.bans {
		if b.name == "" && ip.IsValid() && b.net.Contains(ip) || b.name != "" && b.name == fold {
			return b, true
		}
	}
	return ban{}, false
}

// bannedWhy is the refusal of a banned member.
func bannedWhy(b ban) string {
	why := "banned until " + b.until.UTC().Format("2006-01-02 15:04 UTC")
	if b.why != "" {
		why += " (" + b.why + ")"
	}
	return why
}

// refusedBan reports whether a connection from ip at t is banned, and
// counts it; why says so.
func (s *Server) refusedBan(ip netip.Addr, t time.Time) (why string, ok bool) {
	b, ok := s.banned(ip, "", t)
	if !ok {
		return "", false
	}
	s.stats.banned.Add(1)
	return bannedWhy(b), true
}

// admin carries out one of the admin commands (and /topic, /pass, /admin
// itself) for m at t.
func (s *Server) admin(m *member, req proto.Request, t time.Time) {
	switch req.Op {
	case proto.Pass:
		m.notify(proto.KindNotice, "/pass goes before your name; you are past it")
		return
	case proto.Admin:
		switch {
		case req.Key == "" || strings.EqualFold(req.Key, "help"):
			if s.isAdmin(m) {
				for _, c := range proto.AdminCommands {
					m.notify(proto.KindNotice, "%s", c)
				}
			} else {
				m.notify(proto.KindError, "usage: /admin PASSWORD")
			}
		case s.isAdmin(m):
			m.notify(proto.KindNotice, "you are an admin already; /admin help lists the admin commands")
		default:
			if err := s.becomeAdmin(m, req.Key, t); err != nil {
				m.notify(proto.KindError, "%s", secretError("admin password", err))
				return
			}
			m.notify(proto.KindNotice, "you are an admin; /admin help lists the admin commands")
		}
		return
	case proto.Topic:
		if req.Text == "" {
			s.showTopic(m)
			return
		}
	}
	if !s.isAdmin(m) {
		m.notify(proto.KindError, "admin only: give the admin password first (/admin PASSWORD)")
		return
	}
	switch req.Op {
	case proto.Kick:
		to := s.lookup(req.Arg)
		if to == nil {
			s.noMember(m, req)
			return
		}
		s.infof("admin %s: kicked %s (%s door)%s", m.who(), to.name, to.door, because(req.Text))
		if req.Text != "" {
			to.notify(proto.KindError, "kicked by an admin: %s", req.Text)
		}
		m.notify(proto.KindNotice, "kicked %s", to.name) // before the room sees it leave
		to.kick(byKicked)
	case proto.Ban:
		s.ban(m, req, t)
	case proto.Unban:
		s.unban(m, req.Arg)
	case proto.Bans:
		s.listBans(m, t)
	case proto.Topic:
		s.setTopic(m, req.Text)
	case proto.SetKey:
		s.setKey(m, req.Arg, req.Key)
	}
}

func because(why string) string {
	if why == "" {
		return ""
	}
	return ": " + why
}

// errNoAdmin is an admin password given to a relay that has none.
var errNoAdmin = errors.New("admin commands are off: the relay has no admin password (relay.admin_password)")

// becomeAdmin makes m an admin when given is the admin password, for
// every door's way of asking (/admin, IRC's OPER). It is nil when m is an
// admin, already or now; errNoAdmin when the relay has no admin password;
// else the error of the check (a wrong password, a wait).
func (s *Server) becomeAdmin(m *member, given string, t time.Time) error {
	switch {
	case s.isAdmin(m):
		return nil
	case s.conf().AdminPassword == "":
		return errNoAdmin
	}
	if err := s.checkSecret(m, "admin password", s.conf().AdminPassword, given, t); err != nil {
		return err
	}
	m.admin.Store(true)
	s.infof("admin %s: became an admin", m.who())
	return nil
}

// ban bans a name or a network for req.For, and disconnects the members
// it covers.
func (s *Server) ban(m *member, req proto.Request, t time.Time) {
	b, ok := banTarget(req.Arg)
	if !ok {
		m.notify(proto.KindError, "usage: /ban NAME|ADDRESS TIME [REASON]: %q is neither a name nor an address", req.Arg)
		return
	}
	b.until, b.why = t.Add(req.For), req.Text
	s.auth.mu.Lock()
	s.auth.dropBans(func(o ban) bool {
		return !t.Before(o.until) || o.name == b.name && o.net == b.net
	})
	full := len(s.auth.bans) >= maxBans
	if !full {
		s.auth.bans = append(s.auth.bans, b)
	}
	s.auth.mu.Unlock()
	if full {
		m.notify(proto.KindError, "%d bans in force already; /unban one first", maxBans)
		return
	}
	s.infof("admin %s: banned %s for %v%s", m.who(), req.Arg, req.For, because(req.Text))
	m.notify(proto.KindNotice, "banned %s until %s", req.Arg, b.until.UTC().Format("2006-01-02 15:04 UTC"))
	s.mu.Lock()
	members := s.members()
	s.mu.Unlock()
	for _, o := range members {
		if o != m && (b.name != "" && o.key == b.name || b.name == "" && o.from.IsValid() && b.net.Contains(o.from)) {
			o.notify(proto.KindError, "%s", bannedWhy(b))
			o.kick(byBanned)
		}
	}
}

// banTarget is the ban's name or network that arg names (a name, an
// address or a network), as ban stores it and unban finds it.
func banTarget(arg string) (b ban, ok bool) {
	if p, ok := netaddr.ParsePrefix(arg); ok {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96) // members' addresses are unmapped
		}
		b.net = p.Masked()
	} else if ip, _, ok := netaddr.ParseAddr(arg); ok { // a zone is no part of a member's address
		b.net, _ = ip.Unmap().Prefix(ip.Unmap().BitLen())
	} else if proto.CheckName(arg) == nil {
		b.name = proto.Fold(arg)
	} else {
		return ban{}, false
	}
	return b, true
}

// unban lifts the ban on who, a name or an address as it was banned
// (written as /ban took it, or as /bans lists it).
func (s *Server) unban(m *member, who string) {
	target, ok := banTarget(who)
	s.auth.mu.Lock()
	n := len(s.auth.bans)
	s.auth.dropBans(func(b ban) bool {
		return ok && b.name == target.name && b.net == target.net
	})
	lifted := n != len(s.auth.bans)
	s.auth.mu.Unlock()
	if !lifted {
		m.notify(proto.KindError, "no ban on %s (/bans lists them)", who)
		return
	}
	s.infof("admin %s: lifted the ban on %s", m.who(), who)
	m.notify(proto.KindNotice, "lifted the ban on %s", who)
}

// listBans tells m the bans in force at t.
func (s *Server) listBans(m *member, t time.Time) {
	s.banned(netip.Addr{}, "", t) // drops the expired ones
	s.auth.mu.Lock()
	var items []string
	for _, b := range s.auth.bans {
		who := b.name
		if who == "" {
			who = b.net.String()
		}
		items = append(items, who+" "+bannedWhy(b))
	}
	s.auth.mu.Unlock()
	if len(items) == 0 {
		m.notify(proto.KindNotice, "no bans")
		return
	}
	s.list(m, "bans:", items)
}

// showTopic tells m its room's topic.
func (s *Server) showTopic(m *member) {
	m.mu.Lock()
	room := m.room.name
	m.mu.Unlock()
	if _, topic, _ := s.roomSettings(room); topic != "" {
		m.notify(proto.KindNotice, "topic of %s: %s", room, topic)
		return
	}
	m.notify(proto.KindNotice, "%s has no topic", room)
}

// setTopic sets the topic of m's room until the relay restarts ("-"
// clears it), and tells the room's members.
func (s *Server) setTopic(m *member, topic string) {
	if topic == "-" {
		topic = ""
	}
	if len(topic) > config.MaxTopic {
		m.notify(proto.KindError, "a topic is at most %d bytes", config.MaxTopic)
		return
	}
	m.mu.Lock()
	r := m.room
	m.mu.Unlock()
	s.setRoom(&s.auth.topics, r.name, topic) // m is in r: it exists
	s.infof("admin %s: set the topic of %s", m.who(), r.name)
	r.mu.RLock()
	members := slices.Clone(r.members)
	r.mu.RUnlock()
	text := m.name + " set the topic of " + r.name + ": " + topic
	if topic == "" {
		text = m.name + " cleared the topic of " + r.name
	}
	ev := newEvent(&proto.Event{Kind: proto.KindNotice, Text: text}, 0) // one notice, shared as a room's events are
	for _, o := range members {
		o.deliver(ev)
	}
}

// setKey sets the key of room until the relay restarts ("" removes it).
// The members in it stay.
func (s *Server) setKey(m *member, room, key string) {
	if proto.Fold(room) == proto.Fold(s.conf().DefaultRoom) {
		m.notify(proto.KindError, "the default room cannot have a key: every member enters it first (use relay.password)")
		return
	}
	hash := ""
	if key != "" {
		if !s.hashTurn(m) {
			return
		}
		hash = secret.Hash(key)
		s.hashDone()
	}
	if err := s.setRoom(&s.auth.keys, room, hash); err != nil {
		m.notify(proto.KindError, "cannot set the key of %s: %v", room, err)
		return
	}
	if key == "" {
		s.infof("admin %s: removed the key of %s", m.who(), room)
		m.notify(proto.KindNotice, "%s has no key now, until the relay restarts", room)
		return
	}
	s.infof("admin %s: set a new key on %s", m.who(), room)
	m.notify(proto.KindNotice, "%s has a new key, until the relay restarts; who is in it stays", room)
}

// setRoom records v as an admin's key or topic (tab: auth.keys or
// auth.topics) of the room called name, until the relay restarts. A room
// of relay.rooms keeps it; any other room keeps it while it exists (it
// is made if need be: there are Limits.MaxRooms at most), and loses it
// when it is dropped (see roomLocked).
func (s *Server) setRoom(tab *map[string]string, name, v string) error {
	fold := proto.Fold(name)
	s.mu.Lock()
	var err error
	if _, ok := s.confRoom(fold); !ok {
		_, err = s.roomLocked(name)
	}
	if err == nil {
		s.auth.mu.Lock()
		if *tab == nil {
			*tab = map[string]string{}
		}
		(*tab)[fold] = v
		s.auth.mu.Unlock()
	}
	s.mu.Unlock()
	return err
}

// confRoom returns the room of relay.rooms whose folded name is fold.
func (s *Server) confRoom(fold string) (config.Room, bool) {
	r, ok := s.conf().Rooms[fold]
	return r, ok
}
