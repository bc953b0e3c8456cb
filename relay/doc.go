// Package relay is roomrelay's server: rooms, names, the ordered history of
// each room, the fan-out to members, and the doors (listeners) that turn
// each wire format into relay calls. It never parses bytes itself; package
// proto does that.
//
// # Fan-out
//
// A room is an ordered log: posting an event takes the room's lock, gives
// the event the next sequence number, encodes it once per wire format,
// stores it in the room's history ring and wakes every member without
// blocking. Each member has one writer goroutine that owns a cursor into
// that log: it copies what it has not written yet (and any private events
// queued for it) into one batch and writes it with one writev under a write
// deadline. A member's queue is therefore the part of the ring between its
// cursor and the head, bounded by Limits.Queue: a member further behind is
// disconnected as too slow, told why, and never holds the room back. The
// same ring serves replay on joining and resume after a reconnect.
//
// # Concurrency
//
// Lock order: member.mu, then room.mu. Server.mu is never held while
// taking either. A room's post holds only room.mu and touches members
// through atomics and non-blocking channel sends.
package relay
