// Command roomrelay is a small LAN chat relay for a Raspberry Pi or a home
// router: people chat through it from nc, telnet or `roomrelay client`.
//
//	roomrelay [-config FILE] [relay|client|check|version]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"roomrelay/relay"
	"roomrelay/relay/client"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: roomrelay [-config FILE] [relay|client|check|version] [flags]

  relay     run the relay (the default)
  client    chat through a relay: stdin lines to the room, events to stdout
  check     validate the config file and print every problem
  version   print the version

flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("roomrelay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	path := fs.String("config", "config.json", "configuration `file`")
	name := fs.String("name", "", "client: the name to chat as (overrides client.name)")
	server := fs.String("server", "", "client: the relay's line door, host:port (overrides client.server)")
	room := fs.String("room", "", "client: the room to enter (overrides client.room)")
	if fs.Parse(args) != nil {
		return 2
	}
	cmd := "relay"
	if fs.NArg() > 0 {
		cmd = fs.Arg(0)
		if fs.Parse(fs.Args()[1:]) != nil { // flags may follow the subcommand
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "roomrelay: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
	}
	if cmd == "version" {
		fmt.Fprintf(stdout, "roomrelay %s\n", version)
		return 0
	}
	if cmd != "relay" && cmd != "client" && cmd != "check" {
		fmt.Fprintf(stderr, "roomrelay: unknown subcommand %q (want relay, client, check or version)\n", cmd)
		return 2
	}
	cfg, err := relay.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "roomrelay: %v\n", err)
		return 1
	}
	logger := log.New(stderr, "", log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "check":
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return 0
	case "client":
		c := cfg.Client
		if *name != "" {
			c.Name = *name
		}
		if *server != "" {
			c.Server = *server
		}
		if *room != "" {
			c.Room = *room
		}
		if err := client.Run(ctx, c, stdin, stdout, logger.Printf); err != nil {
			fmt.Fprintf(stderr, "roomrelay: %v\n", err)
			return 1
		}
		return 0
	}
	return serve(ctx, cfg.Relay, logger.Printf)
}

// serve runs the relay until ctx ends, then shuts it down.
func serve(ctx context.Context, cfg relay.Config, logf relay.Logf) int {
	srv := relay.New(cfg, logf)
	if err := srv.Start(); err != nil {
		logf("roomrelay: %v", err)
		return 1
	}
	logf("roomrelay %s running", version)
	<-ctx.Done()
	logf("roomrelay: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown.D()+cfg.Timeouts.Write.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logf("roomrelay: shutdown: %v", err)
	}
	return 0
}
