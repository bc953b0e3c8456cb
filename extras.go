//go:build !minimal

package main

import (
	"context"
	"fmt"
	"io"
	"roomrelay/internal/cmdflag"
	"roomrelay/relay/config"
	"strings"
	"sync"

	"roomrelay/relay/client"
	"roomrelay/relay/echo"
	"roomrelay/relay/peer"
	"roomrelay/relay/secret"
)

// The endpoints beside the relay, left out of a minimal build.
func init() {
	endpoints = append(endpoints,
		endpoint{
			name:  "client",
			about: "chat through a relay: stdin lines to the room, chat to stdout, status to stderr",
			flags: clientFlags,
			run: func(ctx context.Context, cfg *config.File, std stdio) error {
				return client.Run(ctx, cfg.Client, std.in, std.out, lineLogf(std.err))
			},
		},
		endpoint{
			name:  "peer",
			about: "the P2P messenger: stdin lines to peer.friend, what arrives to stdout",
			run: func(ctx context.Context, cfg *config.File, std stdio) error {
				return peer.Run(ctx, cfg.Peer, std.in, std.out, std.logf)
			},
		},
		endpoint{
			name:  "echo",
			about: "the TCP echo server on echo.listen",
			run: func(ctx context.Context, cfg *config.File, std stdio) error {
				return echo.Run(ctx, cfg.Echo, std.logf)
			},
		},
		endpoint{
			name:     "passwd",
			about:    "read a secret from stdin and print its hash, for relay.password, relay.admin_password, relay.rooms.NAME.key",
			run:      passwd,
			noConfig: true,
		},
	)
}

// clientFlags are the client's own flags, each over a key of the client
// section.
func clientFlags(fs *cmdflag.Set) func(*config.File) {
	name := fs.String("name", "", "the `name` to chat as (over client.name)")
	server := fs.String("server", "", "the relay's line door, `host:port` (over client.server)")
	room := fs.String("room", "", "the `room` to enter (over client.room)")
	mode := fs.String("mode", "", "`mode`: line, or tutorial for the tutorial chat-room protocol (over client.mode)")
	secure := fs.Bool("tls", false, "connect over TLS, to the relay's line_tls door (over client.tls)")
	fingerprint := fs.String("fingerprint", "", "pin the relay's certificate by its SHA-256 `fingerprint`, as `roomrelay fingerprint` prints it\n"+
		"(over client.fingerprint; implies -tls)")
	password := fs.String("password", "", "the relay's `password` (over client.password; other users of this machine may see it in ps)")
	key := fs.String("key", "", "the room's `key` (over client.key; likewise)")
	return func(f *config.File) {
		if *secure {
			f.Client.TLS = true
		}
		if *fingerprint != "" {
			f.Client.Fingerprint = *fingerprint
		}
		for _, o := range []struct{ flag, key *string }{
			{name, &f.Client.Name}, {server, &f.Client.Server}, {room, &f.Client.Room}, {mode, &f.Client.Mode},
			{password, &f.Client.Password}, {key, &f.Client.Key},
		} {
			if *o.flag != "" {
				*o.key = *o.flag
			}
		}
	}
}

// passwd reads a secret (asking for it, without echo, at a terminal) and
// prints the hash string to paste into the config.
func passwd(_ context.Context, _ *config.File, std stdio) error {
	s, err := client.ReadSecret(std.in, std.err)
	if err != nil {
		return err
	}
	if strings.ContainsAny(s, " \t") {
		fmt.Fprintln(std.err, "note: this secret holds a space: fine for a password, but a room key is one word (/join ROOM KEY)")
	}
	_, err = fmt.Fprintln(std.out, secret.Hash(s))
	return err
}

// lineLogf writes each entry as a line of its own on w, without a time:
// the client is a program people watch, not a service.
func lineLogf(w io.Writer) config.Logf {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format+"\n", args...)
	}
}
