//go:build !minimal

package main

import (
	"context"
	"io"
	"roomrelay/relay/config"

	"roomrelay/relay/client"
	"roomrelay/relay/echo"
	"roomrelay/relay/peer"
)

// The endpoints beside the relay, left out of a minimal build.
func init() {
	subcommands["client"] = func(ctx context.Context, cfg *config.File, stdin io.Reader, stdout io.Writer, logf config.Logf) error {
		return client.Run(ctx, cfg.Client, stdin, stdout, logf)
	}
	subcommands["peer"] = func(ctx context.Context, cfg *config.File, stdin io.Reader, stdout io.Writer, logf config.Logf) error {
		return peer.Run(ctx, cfg.Peer, stdin, stdout, logf)
	}
	subcommands["echo"] = func(ctx context.Context, cfg *config.File, _ io.Reader, _ io.Writer, logf config.Logf) error {
		return echo.Run(ctx, cfg.Echo, logf)
	}
}
