package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"roomrelay/internal/fmtlite"
	"time"

	"roomrelay/internal/listen"
)

// askStats asks the relay listening on line (relay.listen.line) for its
// counters, with /stats before a name (answered for relay.stats_allow
// only), and writes the JSON line it answers to w. A wildcard host is
// asked on loopback. Every step is within timeout.
func askStats(ctx context.Context, line string, timeout time.Duration, w io.Writer) error {
	if line == "" {
		return errors.New("relay.listen.line is empty: no line door to ask")
	}
	host, port, err := net.SplitHostPort(line)
	if err != nil {
		return fmtlite.Errorf("relay.listen.line %q: %w", line, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	addr := net.JoinHostPort(host, port)
	c, err := listen.Dial(ctx, addr, timeout)
	if err != nil {
		return fmtlite.Errorf("ask %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(io.LimitReader(c, 4<<20))
	if _, err := r.ReadSlice('\n'); err != nil { // the greeting
		return fmtlite.Errorf("read greeting from %s: %w", addr, err)
	}
	if _, err := io.WriteString(c, "/stats\n"); err != nil {
		return fmtlite.Errorf("ask %s: %w", addr, err)
	}
	answer, err := r.ReadBytes('\n')
	if err != nil {
		return fmtlite.Errorf("read answer from %s: %w", addr, err)
	}
	if !bytes.HasPrefix(answer, []byte("{")) {
		return fmtlite.Errorf("%s answers: %s", addr, bytes.TrimSpace(answer))
	}
	_, err = w.Write(answer)
	return err
}
