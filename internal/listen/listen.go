//go:build !minimal || !linux

// Package listen opens the relay's TCP listening sockets. In the minimal
// build on Linux it opens them with system calls and serves them as
// *os.File, accepting [Conn]s, so that the binary leaves out net's name
// resolver (about 0.25 MB of a mipsle binary) and its connection code
// (about 80 KB); elsewhere it is net.ListenConfig. Dial is the same for
// the one connection the relay's own subcommands make (roomrelay stats).
package listen

import (
	"context"
	"net"
	"time"
)

// TCP listens on addr (host:port). Connections it accepts send TCP
// keepalive probes every keepalive, none if it is negative, and 15 s if
// it is 0, as net.ListenConfig's KeepAlive.
func TCP(addr string, keepalive time.Duration) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: keepalive}
	return lc.Listen(context.Background(), "tcp", addr)
}

// UDP listens for datagrams on addr (host:port).
func UDP(addr string) (net.PacketConn, error) {
	var lc net.ListenConfig
	return lc.ListenPacket(context.Background(), "udp", addr)
}

// Dial connects to addr (host:port) over TCP within timeout, or until ctx
// is done.
func Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", addr)
}
