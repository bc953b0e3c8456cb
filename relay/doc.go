// Package relay is roomrelay's server: rooms, names, the ordered history of
// each room, the fan-out to members, and the doors (listeners) that turn
// each wire format into relay calls. It never parses bytes itself; package
// proto does that.
//
// # Fan-out
//
// A room is an ordered log: posting an event takes the room's lock, gives
// the event the next sequence number, encodes its text line (its JSON line
// waits until a member in JSON mode needs it), stores it in the room's
// history ring and wakes every member without blocking. Each member owns a
// cursor into that log: whoever writes for it copies what it has not
// written yet (and any private events queued for it) into one batch and
// writes it with one writev. A member's queue is therefore the part of the
// ring between its cursor and the head, bounded by Limits.Queue: a member
// further behind is disconnected as too slow, told why, and never holds
// the room back. The same ring serves replay on joining and resume after a
// reconnect.
//
// # Serving members
//
// On Linux the line door's connections are served by the loop (loop.go)
// from the moment they are accepted: a poller (epoll, itself parked in
// Go's own poller) reports which sockets are ready, and one worker per CPU
// reads and writes them without blocking. A member is in the run queue at
// most once and served by one worker at a time; an idle member holds no
// goroutine, only its connection, its cursor and a small read buffer.
// Timeouts are kept by a sweep once a second: the handshake, idle members,
// writes that made no progress for Timeouts.Write, and the flush of a
// leaving member.
//
// Elsewhere, and for members that are not sockets (the legacy door's,
// dialled for each delivery), a member has a writer goroutine (writeLoop)
// that writes under a write deadline, and a line member a session
// goroutine that reads with deadlines (serveLine). Both ways share the
// handshake, the handling of each line and the collection of batches.
//
// # Concurrency
//
// Lock order: member.mu, then room.mu. Server.mu is never held while
// taking either. A room's post holds only room.mu and touches members
// through atomics and non-blocking channel sends or the run queue's lock.
package relay
