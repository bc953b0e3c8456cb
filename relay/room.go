package relay

import (
	"math/rand/v2"
	"roomrelay/internal/fmtlite"
	"sync"
	"sync/atomic"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/store"
)

// event is one event, shared read-only by every member that gets it. It
// is kept compact, as a room keeps up to history of them: its text line,
// encoded when it is made, which holds its text too (see full); what its
// other lines are made from; and, behind one pointer, what few events
// have (the addressee of a private message, the welcome's epoch, a hole's
// end) and the lines made when a member first needs them (the JSON line,
// the IRC lines, a time stamp of another minute than the last).
type event struct {
	seq  uint64 // the room's number for it; 0: one member's; a hole's notice: its first number (see room.hole)
	from uint64 // id of the member that caused it; 0 for the relay
	text []byte // text-mode line
	who  string // proto.Event's From
	room string // proto.Event's Room
	ms   int64  // proto.Event's Time, in Unix milliseconds; 0: none
	at   int32  // where its text is in text (see textEnd); 0: it has none there
	kind proto.Kind
	x    atomic.Pointer[extra] // set when it is made, or by the first member that needs it
}

// extra is what an event needs only for some members, made by the first
// that needs it, and what few events have.
type extra struct {
	once  sync.Once
	json  []byte                   // JSON-mode line; see line
	stamp atomic.Pointer[stamp]    // see stamped
	irc   atomic.Pointer[ircLines] // see ircLines (door_irc.go)
	rare  *rare                    // set when the event is made, before it is shared; nil: none
}

// rare is what few events have: none that a room keeps but a hole's
// notice.
type rare struct {
	to    string // proto.Event's To: a private message's
	epoch string // proto.Event's Epoch: the welcome's
	text  string // proto.Event's Text, where the text line does not hold it
	skip  uint64 // a hole's notice (see room.hole): the cursor goes on at skip; the event's seq is the hole's first number
}

// rare returns what few events have; nil for the others.
func (ev *event) rare() *rare {
	if x := ev.x.Load(); x != nil {
		return x.rare
	}
	return nil
}

// ext returns ev's extra, made if it has none yet.
func (ev *event) ext() *extra {
	if x := ev.x.Load(); x != nil {
		return x
	}
	ev.x.CompareAndSwap(nil, new(extra))
	return ev.x.Load()
}

// skip is where a cursor goes on after ev, a hole's notice; 0 for
// other events.
func (ev *event) skip() uint64 {
	if r := ev.rare(); r != nil {
		return r.skip
	}
	return 0
}

// roomSeq is the sequence number ev's lines carry: seq, but none for a
// hole's notice.
func (ev *event) roomSeq() uint64 {
	if ev.skip() != 0 {
		return 0
	}
	return ev.seq
}

// message is 1 for an event that counts in messages_out (a message, an
// action, a private message), 0 for another.
func (ev *event) message() int {
	switch ev.kind {
	case proto.KindMsg, proto.KindAction, proto.KindPrivate:
		return 1
	}
	return 0
}

// epoch is the room's epoch that ev carries: the welcome's; "" for
// other events.
func (ev *event) epoch() string {
	if r := ev.rare(); r != nil {
		return r.epoch
	}
	return ""
}

// ircLines are a room event's IRC messages, shared by every IRC member
// that gets it.
type ircLines struct {
	lines []byte // one message, or more for long text
	tag   []byte // the server-time tag that goes before each, for members that asked for it
}

// textEnd is where an event of kind k keeps its text in its text line
// line: before the LF, and for a part also before the ")" (see
// proto.AppendText).
func textEnd(k proto.Kind, line []byte) int {
	if k == proto.KindPart {
		return len(line) - 2
	}
	return len(line) - 1
}

// newEvent makes e an event, with its text line. Where the line holds
// e's text (every kind), the event keeps the text in the line only.
func newEvent(e *proto.Event, from uint64) *event {
	var b [512]byte // on the stack: the line is kept in a slice of its own size
	line := proto.AppendText(b[:0], e)
	ev := &event{seq: e.Seq, from: from, text: make([]byte, len(line)), who: e.From, room: e.Room, kind: e.Kind}
	copy(ev.text, line)
	if !e.Time.IsZero() {
		ev.ms = e.Time.UnixMilli()
	}
	var text string // e.Text, where line does not hold it
	if e.Text != "" {
		end := textEnd(e.Kind, line)
		if at := end - len(e.Text); at > 0 && string(line[at:end]) == e.Text {
			ev.at = int32(at)
		} else {
			text = e.Text
		}
	}
	if e.To != "" || e.Epoch != "" || text != "" {
		ev.x.Store(&extra{rare: &rare{to: e.To, epoch: e.Epoch, text: text}})
	}
	return ev
}

// newSaid is newEvent for a message whose text is text, not e.Text
// (see Server.say): the event keeps text in its line only.
func newSaid(e *proto.Event, text []byte, from uint64) *event {
	line := proto.AppendSaid(make([]byte, 0, len(e.From)+2+len(text)+1), e.From, text)
	ev := &event{seq: e.Seq, from: from, text: line, who: e.From, room: e.Room, at: int32(textEnd(proto.KindMsg, line) - len(text)), kind: e.Kind}
	if !e.Time.IsZero() {
		ev.ms = e.Time.UnixMilli()
	}
	return ev
}

// full returns the event that ev was made from, its text included.
func (ev *event) full() proto.Event {
	e := proto.Event{Kind: ev.kind, Room: ev.room, Seq: ev.seq, From: ev.who}
	if ev.ms != 0 {
		e.Time = time.UnixMilli(ev.ms).UTC()
	}
	if ev.at > 0 {
		e.Text = string(ev.text[ev.at:textEnd(ev.kind, ev.text)])
	}
	if r := ev.rare(); r != nil {
		e.To, e.Epoch = r.to, r.epoch
		if r.text != "" {
			e.Text = r.text
		}
		if r.skip != 0 {
			e.Seq = 0
		}
	}
	return e
}

// lineEvent is an event that is the same line in both modes: one of
// kind 0.
func lineEvent(line []byte) *event {
	return &event{text: line}
}

// line returns the event's line in JSON mode or in text mode.
func (ev *event) line(json bool) []byte {
	if !json || ev.kind == 0 {
		return ev.text
	}
	x := ev.ext()
	x.once.Do(func() {
		e := ev.full()
		x.json = proto.AppendJSON(make([]byte, 0, 2*len(ev.text)+96), &e)
	})
	return x.json
}

// stamp is the "[HH:MM] " of one minute of local time, shared by every
// event of that minute.
type stamp struct {
	minute int64 // Unix time / 60: local time zones are whole minutes off UTC
	b      []byte
}

// lastStamp is the stamp found last: events come many a minute, and few
// are stamped in another minute than the one before.
var lastStamp atomic.Pointer[stamp]

// stamped returns the event's time stamp in the relay's time zone, or nil
// when it has no time. An event of the minute of the stamp found last
// shares it; for another, the first member that needs it finds it (two
// at once find the same), and later ones share it.
func (ev *event) stamped() []byte {
	if ev.ms == 0 {
		return nil
	}
	if x := ev.x.Load(); x != nil {
		if st := x.stamp.Load(); st != nil {
			return st.b
		}
	}
	t := time.UnixMilli(ev.ms)
	st := lastStamp.Load()
	if st == nil || st.minute != t.Unix()/60 {
		st = &stamp{minute: t.Unix() / 60, b: proto.AppendStamp(make([]byte, 0, 8), t.Local())}
		lastStamp.Store(st)
		ev.ext().stamp.Store(st)
	}
	return st.b
}

// epochChars are the characters of an epoch: RFC 4648's base32 alphabet,
// lower case.
const epochChars = "abcdefghijklmnopqrstuvwxyz234567"

// newEpoch draws a room's epoch: 6 characters, 30 random bits. The bits
// come from the runtime's generator, seeded from the system's at start:
// an epoch needs to differ from the room's earlier ones, not to be secret,
// and crypto/rand would add about 140 KB to the binary.
func newEpoch() string {
	var b [6]byte
	r := rand.Uint32()
	for i := range b {
		b[i] = epochChars[r&31]
		r >>= 5
	}
	return string(b[:])
}

// room is one chat room: an ordered log kept in a ring, and its members.
type room struct {
	name  string // set once
	epoch string // set once: a token drawn when the room is made; see proto.Point

	history      int        // the most events kept; set once
	historyBytes int        // the most bytes of text lines kept (0: no bound); set once, before it is shared
	log          *store.Log // where its events are kept on disk; nil: nowhere. Set once

	mu    sync.RWMutex
	seq   uint64   // last sequence number given; 0 before the first event
	ring  []*event // event seq lives at ring[seq%len(ring)]; see grow. An event dropped for historyBytes is nil
	floor uint64   // the oldest event it ever held, when it was read back from a store
	cut   uint64   // the oldest event kept under historyBytes; 0 before it dropped one
	// pressure: how many lines its publishers may send between two
	// stalls (0: no bound), as its members' lag was at the last post (see
	// stallLines and member.stallBy).
	pressure atomic.Int32
	relax    atomic.Uint64 // the lag under which a member exerts no pressure, as at the last post
	bytes    int           // the text lines of the events in the ring
	members  []*member

	// The publishers stalled for its pressure (see member.stallBy), each
	// once (member.listed): unstall has them read again as soon as the
	// members that press catch up. smu comes after mu.
	smu     sync.Mutex
	stalled []*member
	nstall  atomic.Int32 // len(stalled)
}

func newRoom(name string, history int) *room {
	return &room{name: name, epoch: newEpoch(), history: history, ring: make([]*event, min(history, 16))}
}

// grow doubles the ring, up to history, before it would drop an event:
// a room holds room for the events it has, not for all it may keep. So
// until the ring is at history, it is longer than seq and keeps every
// event. Called with mu held.
func (r *room) grow() {
	if r.seq < uint64(len(r.ring)) || len(r.ring) == r.history {
		return
	}
	ring := make([]*event, min(2*len(r.ring), r.history))
	for seq := uint64(1); seq < r.seq; seq++ {
		ring[seq%uint64(len(ring))] = r.ring[seq%uint64(len(r.ring))]
	}
	r.ring = ring
}

// restore puts events read back from a store in the ring, oldest first,
// continues epoch unless it is "", and continues the numbering after
// head. The numbers up to head that no event has (lost in a crash) are
// holes. Called before the room is shared.
func (r *room) restore(epoch string, evs []proto.Event, head uint64) {
	if epoch != "" {
		r.epoch = epoch
	}
	if len(evs) == 0 {
		return
	}
	head = max(head, evs[len(evs)-1].Seq)
	if head >= uint64(len(r.ring)) {
		r.ring = make([]*event, r.history) // see grow: seq fits a shorter ring only while it is short
	}
	n := uint64(len(r.ring))
	low := uint64(1) // the lowest number the ring holds
	if head >= n {
		low = head - n + 1
	}
	r.seq, r.floor = head, max(evs[0].Seq, low)
	prev := evs[0].Seq - 1
	for i := range evs {
		e := &evs[i]
		if e.Seq > prev+1 {
			r.hole(prev+1, e.Seq-1, low)
		}
		prev = e.Seq
		if e.Seq >= low {
			e.Room = r.name
			r.keep(newEvent(e, 0))
		}
	}
	if head > prev {
		r.hole(prev+1, head, low)
	}
}

// hole fills the numbers from to to of the ring, those not below low,
// with one notice that they are lost: a member whose cursor reaches it
// is told, and goes on after to. Called by restore.
func (r *room) hole(from, to, low uint64) {
	ev := newEvent(&proto.Event{Kind: proto.KindNotice, Text: fmtlite.Sprintf(
		"%s's events %d to %d were lost when the relay stopped (some of these numbers were never used); continuing from %d",
		r.name, from, to, to+1)}, 0)
	ev.seq = from
	ev.x.Store(&extra{rare: &rare{skip: to + 1}})
	for seq := max(from, low); seq <= to; seq++ {
		i := seq % uint64(len(r.ring))
		if old := r.ring[i]; old != nil {
			r.bytes -= old.size(seq - uint64(len(r.ring)))
		}
		r.ring[i] = ev
		r.bytes += ev.size(seq)
	}
}

// size is what ev counts in a room's bytes (see keep) at the number seq:
// its text line; a hole's notice, which fills many numbers, counts at its
// last only, so that it counts once while any of it is kept, as it is
// written once.
func (ev *event) size(seq uint64) int {
	if skip := ev.skip(); skip != 0 && seq != skip-1 {
		return 0
	}
	return len(ev.text)
}

// newRoomBytes is newRoom with its history bounded in bytes of text lines
// too (0: no bound).
func newRoomBytes(name string, history, historyBytes int) *room {
	r := newRoom(name, history)
	r.historyBytes = historyBytes
	return r
}

// keep stores ev, the room's newest event, in the ring, and drops the
// oldest events while the ring holds more than historyBytes of text
// lines (always keeping ev). Called with mu held, or before the room is
// shared.
func (r *room) keep(ev *event) {
	i := ev.seq % uint64(len(r.ring))
	if old := r.ring[i]; old != nil {
		r.bytes -= old.size(ev.seq - uint64(len(r.ring)))
	}
	r.ring[i] = ev
	r.bytes += len(ev.text)
	for r.historyBytes > 0 && r.bytes > r.historyBytes {
		oldest := r.oldest()
		if oldest >= ev.seq {
			break
		}
		j := oldest % uint64(len(r.ring))
		if old := r.ring[j]; old != nil {
			r.bytes -= old.size(oldest)
			r.ring[j] = nil
		}
		r.cut = oldest + 1
	}
}

// oldest returns the lowest sequence number still in the ring (seq+1 when
// the room is empty). Called with mu held.
func (r *room) oldest() uint64 {
	if n := uint64(len(r.ring)); r.seq >= n {
		return max(r.seq-n+1, r.floor, r.cut)
	}
	return max(1, r.floor, r.cut)
}

// post gives e the room's next sequence number, stores it, and wakes every
// member. A member whose cursor is now the oldest event the ring holds
// (the next post drops it), or more than maxLag events behind, is kicked
// as too slow: it can resume without a gap. A member whose writer has
// not had its turn yet is never kicked for less: its events wait in the
// ring. A member more than a quarter of that behind that still takes
// its data (member.presses) puts the room under pressure: its publishers
// stall, the more often the further it is behind (stallLines). It never
// blocks on a member.
func (r *room) post(e *proto.Event, from uint64, maxLag uint64) {
	r.postText(e, nil, from, maxLag)
}

// postText is post for a message whose text, when not nil, is text
// rather than e.Text (see Server.say); text is copied.
func (r *room) postText(e *proto.Event, text []byte, from uint64, maxLag uint64) {
	e.Room = r.name
	r.mu.Lock()
	r.seq++
	e.Seq = r.seq
	r.grow()
	if text == nil {
		r.keep(newEvent(e, from))
	} else {
		r.keep(newSaid(e, text, from))
		if r.log != nil {
			e.Text = string(text)
		}
	}
	r.log.Append(e) // with sync "always", on disk before anyone is woken
	// Until the ring is history long, it keeps every event; once
	// historyBytes drops events, as many are kept as fit.
	maxLag = min(maxLag, uint64(r.history)-1)
	if r.cut > 0 {
		maxLag = min(maxLag, r.seq-r.oldest())
	}
	var worst uint64 // the lag of the member furthest behind that presses
	for _, m := range r.members {
		lag := m.lag(r.seq)
		if lag > maxLag {
			m.kick(bySlow)
			continue
		}
		if lag > worst && lag > maxLag/4 && m.presses(e.Time) {
			worst = lag
		}
		m.poke()
	}
	if r.relax.Load() != maxLag/4 {
		r.relax.Store(maxLag / 4)
	}
	n := int32(stallLines(worst, maxLag))
	if r.pressure.Load() != n {
		r.pressure.Store(n)
	}
	if n == 0 && r.nstall.Load() > 0 {
		r.unstall()
	}
	r.mu.Unlock()
}

// relaxed reports whether no member that presses at t (member.presses)
// is more than a quarter of its bound behind: the room's stalled
// publishers may go on.
func (r *room) relaxed(t time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.relaxedLocked(t)
}

// relaxedLocked is relaxed, called with mu held.
func (r *room) relaxedLocked(t time.Time) bool {
	low := r.relax.Load()
	for _, m := range r.members {
		if m.lag(r.seq) > low && m.presses(t) {
			return false
		}
	}
	return true
}

// caughtUp is what a member's writer calls once it took m's next batch
// from r, with r.mu held, when m was more than a quarter of its bound
// behind before it (only such a batch can relax r): when m is within a quarter of its bound and so
// is every member that presses, the publishers stalled for r's pressure
// are read again at once rather than at the end of their stall.
func (r *room) caughtUp(m *member) {
	if r.nstall.Load() == 0 || m.lag(r.seq) > r.relax.Load() || !r.relaxedLocked(time.Now()) {
		return
	}
	r.unstall()
}

// stall puts m, a publisher whose reader stalls it (member.stallBy), on
// the list unstall ends the stalls of, unless it is on it.
func (r *room) stall(m *member) {
	if !m.listed.CompareAndSwap(false, true) {
		return
	}
	r.smu.Lock()
	r.stalled = append(r.stalled, m)
	r.nstall.Store(int32(len(r.stalled)))
	r.smu.Unlock()
}

// unstall ends the stall of every publisher on the list and has its
// driver read it again (a driver that cannot be told reads it when the
// stall would have ended). Called with mu held, for reading at least.
func (r *room) unstall() {
	r.smu.Lock()
	defer r.smu.Unlock()
	for i, m := range r.stalled {
		r.stalled[i] = nil
		m.listed.Store(false)
		m.stallUntil.Store(0)
		if u, ok := m.drv.(unstaller); ok {
			u.unstall(m)
		}
	}
	r.stalled = r.stalled[:0]
	r.nstall.Store(0)
}

// relaxedUnstall ends the stalls of r's publishers if its readers that
// press are within a quarter of their bound at t, and reports whether
// they are.
func (r *room) relaxedUnstall(t time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.relaxedLocked(t) {
		return false
	}
	r.unstall()
	return true
}

// unstaller is a driver that can be told that a member's stall ended
// early (see room.unstall), without blocking.
type unstaller interface{ unstall(m *member) }

// entry is where a member's cursor starts in a room: see add.
type entry struct {
	next   uint64 // the first event of the room to write to it
	head   uint64 // the room's next sequence number
	missed uint64 // events asked for that have fallen out of the ring
	ahead  bool   // since is past the newest event: all that is kept is replayed
	stale  bool   // since is of another epoch: all that is kept is replayed
	bytes  int    // the text lines of the replay, next to head
}

// add makes m a member and returns where its cursor starts: replay events
// back from the head, or after since when since is not nil. A since of
// another epoch (the relay restarted, or the room was made anew) or past
// the newest event (likewise, when it names no epoch) replays all that is
// kept. Called with m.mu held.
func (r *room) add(m *member, since *proto.Point, replay int) entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members = append(r.members, m)
	// The member's own join comes next (Server.join): the replay starts
	// where the ring will still hold it then, so that the join does not
	// push out the first event its header announces.
	e := r.entry(since, replay, r.oldestAfter(1))
	r.start(m, &e)
	return e
}

// oldestAfter returns the lowest number the ring will still hold once n
// more events are posted, by its bound in events. Called with mu held.
func (r *room) oldestAfter(n uint64) uint64 {
	oldest := r.oldest()
	if h := uint64(r.history); r.seq+n >= h {
		oldest = max(oldest, r.seq+n-h+1)
	}
	return oldest
}

// resume moves the cursor of m, a member, to after since, as add does,
// but never past what it is still owed: a resume asks for a replay,
// not to skip events. Nothing is copied: however many resumes come
// before its writer's turn, m holds one cursor. Called with m.mu held.
func (r *room) resume(m *member, since *proto.Point) entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entry(since, 0, r.oldest())
	if cur := m.next.Load(); cur < e.next {
		e.next = max(cur, r.oldest())
	}
	r.start(m, &e)
	return e
}

// entry finds where a cursor starts for since, or replay events back
// from the head, in a ring whose oldest number is oldest. Called with mu
// held.
func (r *room) entry(since *proto.Point, replay int, oldest uint64) entry {
	e := entry{head: r.seq + 1}
	switch {
	case since == nil:
		// The last replay events: a hole (see hole) counts as none.
		e.next = e.head
		for n := uint64(replay); n > 0 && e.next > oldest; {
			if ev := r.ring[(e.next-1)%uint64(len(r.ring))]; ev.skip() != 0 {
				e.next = max(ev.seq, oldest)
				continue
			}
			e.next--
			n--
		}
	case since.Epoch != "" && since.Epoch != r.epoch:
		e.next, e.stale = oldest, true
	case since.Seq >= e.head: // not since+1 > head: since may be the largest uint64
		e.next, e.ahead = oldest, true
	case since.Seq+1 < oldest:
		e.next, e.missed = oldest, oldest-(since.Seq+1)
	default:
		e.next = since.Seq + 1
	}
	return e
}

// start puts m's cursor at e's and counts the bytes of its replay.
// Called with mu held.
func (r *room) start(m *member, e *entry) {
	for seq := e.next; seq < e.head; seq++ {
		if ev := r.ring[seq%uint64(len(r.ring))]; ev != nil {
			e.bytes += ev.size(seq)
		}
	}
	m.next.Store(e.next)
	m.base.Store(e.head)
}

// remove ends m's membership.
func (r *room) remove(m *member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(m)
}

// removeLocked is remove, called with mu held.
func (r *room) removeLocked(m *member) {
	r.members, _ = without(r.members, m)
	if m.listed.Load() {
		r.unlist(m)
	}
}

// without removes m from ms, moving the last in its place, and reports
// whether it was there.
func without(ms []*member, m *member) ([]*member, bool) {
	for i, x := range ms {
		if x == m {
			last := len(ms) - 1
			ms[i] = ms[last]
			ms[last] = nil
			return ms[:last], true
		}
	}
	return ms, false
}

// unlist takes m, a stalled publisher leaving r, off r's list (see
// stall), so that r's list holds none but its members and a later
// unstall of r does not end m's stall in its next room.
func (r *room) unlist(m *member) {
	r.smu.Lock()
	defer r.smu.Unlock()
	var was bool
	if r.stalled, was = without(r.stalled, m); was {
		r.nstall.Store(int32(len(r.stalled)))
		m.listed.Store(false)
	}
}

// names returns the members' names.
func (r *room) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, len(r.members))
	for i, m := range r.members {
		out[i] = m.name
	}
	return out
}

func (r *room) size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.members)
}
