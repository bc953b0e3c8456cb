package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"roomrelay/relay/config"
	"strings"
	"sync"
	"time"

	"roomrelay/proto"
	"roomrelay/relay/peer"
)

// Bounds of the tutorial mode.
const (
	tutorialMaxMessage = 16 << 10 // bytes of one received message, and of one input line
	tutorialMaxConns   = 8        // deliveries read at once
)

// runTutorial is the tutorial mode (client.mode "tutorial"): the chat-room
// protocol of messenger_client.py, against the relay's legacy door or an
// unmodified messenger_server.py.
//
//  1. It listens on client.listen FIRST (the tutorial client registers
//     before its listener exists, so a message sent in between is lost).
//  2. It registers, on a connection of its own, with
//     connect_request|NAME|HOST|PORT: HOST is the host of client.listen, or,
//     when that is empty or unspecified (0.0.0.0, ::), the local address of
//     the connection to the server; PORT is the bound port, so port 0
//     works. A server that cannot be reached is retried with backoff
//     (client.retry doubling up to client.retry_max).
//  3. It prints each message the server delivers (one connection each,
//     read to its end within client.timeout and at most
//     tutorialMaxMessage bytes), stripped and cleaned, one a line, in the
//     order the connections arrived. An empty delivery prints nothing.
//  4. Each input line that is not blank goes to the server as
//     from:NAME|LINE on a connection of its own, shut down after the data,
//     under client.timeout for dialling and writing. A line that cannot be
//     sent is logged as lost and the next one is tried.
//
// At the end of the input it returns after the last send when
// client.exit_on_eof is set, and otherwise goes on printing until ctx ends.
func runTutorial(ctx context.Context, cfg config.ClientConfig, in io.Reader, out io.Writer, logf config.Logf) error {
	if err := proto.CheckName(cfg.Name); err != nil {
		return fmt.Errorf("client name: %w", err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("client: tutorial mode listens on client.listen (%s) to be sent messages: %w", cfg.Listen, err)
	}
	var outMu sync.Mutex
	show := func(_ netip.AddrPort, payload []byte) {
		text := proto.LegacyText(payload)
		if text == "" {
			return
		}
		outMu.Lock()
		defer outMu.Unlock()
		if _, err := io.WriteString(out, text+"\n"); err != nil {
			logf("client: output: %v", err)
		}
	}
	prefixed := func(format string, args ...any) { logf("client: "+format, args...) }
	rcv := peer.NewReceiver(ln, tutorialMaxMessage, tutorialMaxConns, cfg.Timeout.D(), prefixed, show)
	defer rcv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	logf("client: listening on %s; registering as %s with %s", ln.Addr(), cfg.Name, cfg.Server)

	retry := cfg.Retry.D()
	for {
		err := register(ctx, cfg, port)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		logf("client: register: %v; retrying in %v", err, retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		retry = min(2*retry, cfg.RetryMax.D())
	}
	logf("client: registered as %s", cfg.Name)

	lines := make(chan string)
	stop := make(chan struct{})
	defer close(stop)
	go peer.ReadLines("client", in, tutorialMaxMessage, lines, stop, logf)
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				if cfg.ExitOnEOF {
					return nil
				}
				logf("client: end of input; still receiving")
				lines = nil
				continue
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			post := proto.AppendLegacyPost(nil, cfg.Name, strings.ToValidUTF8(line, "\uFFFD"))
			if err := peer.Send(ctx, cfg.Server, post, cfg.Timeout.D()); err != nil && ctx.Err() == nil {
				logf("client: %v; message lost", err)
			}
		}
	}
}

// register sends the registration on a connection of its own.
func register(ctx context.Context, cfg config.ClientConfig, port int) error {
	timeout := cfg.Timeout.D()
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", cfg.Server)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	host := registerHost(cfg.Listen, c.LocalAddr())
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(proto.AppendLegacyRegister(nil, cfg.Name, host, port)); err != nil {
		return err
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return err
		}
	}
	return c.Close()
}

// registerHost is the host a registration gives: the host of the listen
// address, or, when that is empty or unspecified, local's (the address the
// server sees the client connect from).
func registerHost(listen string, local net.Addr) string {
	host, _, _ := net.SplitHostPort(listen)
	if ip, err := netip.ParseAddr(host); host != "" && (err != nil || !ip.IsUnspecified()) {
		return host
	}
	if ta, ok := local.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().String()
	}
	h, _, _ := net.SplitHostPort(local.String())
	return h
}
