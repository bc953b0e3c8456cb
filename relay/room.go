package relay

import (
	"sync"

	"roomrelay/proto"
)

// event is one event, shared read-only by every member that gets it: its
// text line, encoded when it is made, and its JSON line, encoded when a
// member in JSON mode first needs it (most rooms have none).
type event struct {
	seq  uint64
	from uint64      // id of the member that caused it; 0 for the relay
	text []byte      // text-mode line
	src  proto.Event // what the JSON line is encoded from
	once sync.Once
	json []byte // JSON-mode line; see line
}

// newEvent makes e an event, with its text line.
func newEvent(e *proto.Event, from uint64) *event {
	b := make([]byte, 0, len(e.From)+len(e.To)+len(e.Text)+len(e.Room)+40)
	return &event{seq: e.Seq, from: from, text: proto.AppendText(b, e), src: *e}
}

// lineEvent is an event that is the same line in both modes.
func lineEvent(line []byte) *event {
	ev := &event{text: line}
	ev.once.Do(func() { ev.json = line })
	return ev
}

// line returns the event's line in JSON mode or in text mode.
func (ev *event) line(json bool) []byte {
	if !json {
		return ev.text
	}
	ev.once.Do(func() { ev.json = proto.AppendJSON(make([]byte, 0, 2*len(ev.text)+96), &ev.src) })
	return ev.json
}

// room is one chat room: an ordered log kept in a ring, and its members.
type room struct {
	name string // set once

	history int // the most events kept; set once

	mu      sync.RWMutex
	seq     uint64   // last sequence number given; 0 before the first event
	ring    []*event // event seq lives at ring[seq%len(ring)]; see grow
	members []*member
}

func newRoom(name string, history int) *room {
	return &room{name: name, history: history, ring: make([]*event, min(history, 16))}
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

// oldest returns the lowest sequence number still in the ring (seq+1 when
// the room is empty). Called with mu held.
func (r *room) oldest() uint64 {
	if n := uint64(len(r.ring)); r.seq >= n {
		return r.seq - n + 1
	}
	return 1
}

// post gives e the room's next sequence number, stores it, and wakes every
// member; a member more than maxLag events behind is kicked as too slow.
// It never blocks on a member.
func (r *room) post(e *proto.Event, from uint64, maxLag uint64) {
	e.Room = r.name
	r.mu.Lock()
	r.seq++
	e.Seq = r.seq
	r.grow()
	r.ring[r.seq%uint64(len(r.ring))] = newEvent(e, from)
	for _, m := range r.members {
		if m.lag(r.seq) > maxLag {
			m.kick(bySlow)
			continue
		}
		m.poke()
	}
	r.mu.Unlock()
}

// add makes m a member and returns where its cursor starts: replay events
// back from the head, or after since when since is not nil. missed is how
// many events asked for have fallen out of the ring; ahead reports a since
// past the newest event (the relay restarted, or the room was made anew),
// which replays all that is kept. head is the room's next sequence number.
// Called with m.mu held.
func (r *room) add(m *member, since *uint64, replay int) (next, missed, head uint64, ahead bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members = append(r.members, m)
	oldest := r.oldest()
	head = r.seq + 1
	switch {
	case since != nil && *since+1 > head:
		next, ahead = oldest, true
	case since != nil && *since+1 == head:
		next = head
	case since != nil && *since+1 < oldest:
		next, missed = oldest, oldest-(*since+1)
	case since != nil:
		next = *since + 1
	default:
		next = head - min(uint64(replay), head-oldest)
	}
	m.next.Store(next)
	m.base.Store(head)
	return next, missed, head, ahead
}

// remove ends m's membership.
func (r *room) remove(m *member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(m)
}

// removeLocked is remove, called with mu held.
func (r *room) removeLocked(m *member) {
	for i, x := range r.members {
		if x == m {
			last := len(r.members) - 1
			r.members[i] = r.members[last]
			r.members[last] = nil
			r.members = r.members[:last]
			return
		}
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
