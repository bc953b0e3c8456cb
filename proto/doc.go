// Package proto holds roomrelay's wire formats as pure encoders and
// decoders: it knows bytes, never sockets, goroutines or clocks. The relay
// (package relay) calls it to turn what a connection sent into typed values
// and typed events into the bytes each kind of member receives.
//
// # Line protocol
//
// A session on the line door is a persistent TCP connection carrying UTF-8
// lines ended by LF or CRLF, each at most the relay's max_line_bytes:
//
//	relay:  --- welcome to roomrelay. Send your name (1-24 letters of one script, digits, single spaces, _ - .)
//	client: alice
//	relay:  --- you are alice in lobby with 2 others (last event k3f9ab-41); /help lists the commands
//	client: hello
//	relay:  bob: hi alice            (another member's message)
//	client: /quit
//	relay:  --- bye
//
// The first line is the name, or a JSON hello object (see [Hello]) for
// programs. A name is written as its owner likes ("élodie", "山田",
// "first client") within the rules of [CheckName], shown everywhere as
// given, and unique under [Fold], which ignores case and look-alikes and
// takes '_' for a space, so a command names "first client" as
// first_client. Every later line is a message to the current room unless it
// starts with "/", which makes it a command (see [Parse]); "//" sends a
// message that starts with "/".
//
// What the relay sends in text mode, one event per line:
//
//	name: text              a message (the only form with a name then ": ")
//	* name text             an action (/me)
//	[private] name: text    a private message (/msg)
//	--- text                a notice from the relay (joins, parts, replies)
//	!!! text                an error from the relay
//
// In JSON mode every line is one JSON object, an [Event] (see
// [AppendJSON]): {"type":"msg","room":"lobby","seq":7,"from":"alice",
// "text":"hi","time":"2026-11-22T03:10:54.123Z"}.
//
// # IRC
//
// The IRC door speaks the client side of IRC: see [ParseIRC], [AppendIRC]
// and [AppendIRCEvent]. Rooms are channels ("#kitchen"), names are nicks
// (a space written '_', see [IRCName]), and every message sent is at most
// [MaxIRC] bytes, long text split over several.
//
// # Tutorial chat-room protocol
//
// The legacy door and the UDP door speak the protocol of the tutorials'
// messenger_server.py: one message per TCP connection (or datagram),
// connect_request|NAME|HOST|PORT and from:NAME|TEXT to the server, and
// NAME: TEXT to each member on a connection of its own. See [Legacy] and
// [ParseLegacy].
package proto
