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
// ring between its cursor and the head: a member whose cursor is about to
// fall out of the ring, or whose socket takes nothing for Timeouts.Write,
// is disconnected as too slow, told why, and never holds the room back;
// a burst waits in the ring until each member's writer has its turn. Its
// private queue (notices, private messages) is bounded by Limits.Queue.
// The same ring serves replay on joining and resume after a reconnect.
//
// # Flow control
//
// A member's driver asks its session (paceBy) before it hands it each
// line: past the member's budget of lines (Limits.Rate, Burst) or of
// replayed bytes (Limits.ReplayBytesPerMinute) it reads nothing more from
// it until the budget refills, so TCP paces the sender and nothing is
// refused; a member that keeps more than Limits.FloodBytes unread for
// Timeouts.Flood is cut as flooding (paced). A room where a member that
// keeps reading is a quarter of the history behind or more stalls its
// publishers a few milliseconds after each few lines, the more often the
// further it falls (stallBy, stallLines), never longer, so TCP paces them
// to the readers.
//
// # Sessions, drivers and doors
//
// A member's policy is written once, in its session (session.go): what a
// line means (its hello, then its requests), which deadline has passed at
// a given time (the handshake, the idle time, a write that made no
// progress for Timeouts.Write, the relay closing), what to write next
// (collect) and how it ends (end: it leaves, is counted, logged, told why
// and hung up). Every rule reads the configuration in force, so a Reload
// reaches members already connected.
//
// A driver moves a member's bytes and calls its session; it knows no
// policy. On Linux the loop (loop.go) serves the line door's sockets from
// the moment they are accepted: a poller (epoll, itself parked in Go's
// own poller) reports which are ready, one worker per CPU reads and
// writes them without blocking, and a sweep once a second asks each
// session whether a deadline has passed; an idle member holds no
// goroutine; a worker about to check a secret (a slow hash: see
// hashers) hands the loop to a new worker first. A connDriver
// (drive_conn.go) serves a member with a reader and a writer goroutine
// whose waits end at the session's deadlines: on other systems, with
// -tags noepoll, and for connections that are not sockets. The legacy
// door's dialler delivers to its members one connection per message. A
// browser member (the HTTP door's,
// door_http.go) has no connection of its own: the request holding its
// event stream writes for it, and while it has none its session gives it
// a grace (readBy) before it lapses. A member wakes its driver through
// one method, so a room's post does not know which driver a member has.
//
// A door is a value that owns its state (the legacy door its order of
// connections and its count of members): it knows its address in the
// configuration and hands what it accepts to a driver with its codec.
// A new door is a codec in proto and a door value, not a new copy of the
// policy. The IRC door (door_irc.go) is such a door: its connections are
// served by the line door's drivers, and its codec (member.codec) reads
// IRC commands into the session's claim, join and requests and writes
// events as IRC messages, each room event's made once for all its IRC
// members.
//
// # Concurrency
//
// Lock order: loop.mu (the loop's table of members, held while it greets
// a new member and while its sweep applies the members' rules of time),
// then member.mu, then Server.mu, then room.mu, then the locks of the
// room's store.Log (a post appends under room.mu, so the log is in
// order), and room.smu (its stalled publishers) under room.mu; the run
// queue's and the other drivers' own locks come last, and
// Server.auth.mu (passwords, keys, bans: auth.go) is a leaf under any of
// them (admission checks a ban with Server.mu held). So
// claim takes the member's mu before Server.mu, and Server.mu may be held
// while a room's size is read or a driver is stopped, never the other way
// round. A
// check of a secret waits for its turn (Server.hashing) holding no lock. A
// room's post holds only room.mu and touches members through atomics and
// their drivers' wake, which never blocks.
package relay
