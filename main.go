// Command roomrelay is a small LAN chat relay for a Raspberry Pi or a home
// router: people chat through it from nc, telnet or `roomrelay client`.
//
//	roomrelay [-config FILE] [relay|client|peer|echo|check|version]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log"
	"math"
	"os"
	"os/signal"
	"roomrelay/relay/config"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"roomrelay/relay"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: roomrelay [-config FILE] [relay|client|peer|echo|check|version] [flags]

  relay     run the relay (the default)
  client    chat through a relay: stdin lines to the room, events to stdout
  peer      the P2P messenger: stdin lines to peer.friend, what arrives to stdout
  echo      the TCP echo server on echo.listen
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
	fs.Usage = func() {} // a bad flag gets one line; -h the whole usage
	path := fs.String("config", "config.json", "configuration `file`")
	name := fs.String("name", "", "client: the name to chat as (overrides client.name)")
	server := fs.String("server", "", "client: the relay's line door, host:port (overrides client.server)")
	room := fs.String("room", "", "client: the room to enter (overrides client.room)")
	parse := func(args []string) (code int, ok bool) {
		switch err := fs.Parse(args); {
		case errors.Is(err, flag.ErrHelp):
			fmt.Fprint(stderr, usage)
			fs.PrintDefaults()
			return 0, false
		case err != nil:
			fmt.Fprintln(stderr, "roomrelay: see roomrelay -h")
			return 2, false
		}
		return 0, true
	}
	if code, ok := parse(args); !ok {
		return code
	}
	cmd := "relay"
	if fs.NArg() > 0 {
		cmd = fs.Arg(0)
		if code, ok := parse(fs.Args()[1:]); !ok { // flags may follow the subcommand
			return code
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
	if _, ok := subcommands[cmd]; !ok && cmd != "relay" && cmd != "check" {
		want := "relay, check or version"
		if len(subcommands) > 0 {
			want = "relay, client, peer, echo, check or version"
		}
		fmt.Fprintf(stderr, "roomrelay: unknown subcommand %q (want %s)\n", cmd, want)
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := config.Load(*path)
	if !explicit && errors.Is(err, iofs.ErrNotExist) && cmd != "relay" && cmd != "check" {
		// The endpoints run anywhere: without ./config.json, the defaults.
		d := config.Default()
		cfg, err = &d, nil
	}
	if err != nil {
		fmt.Fprintf(stderr, "roomrelay: %v\n", err)
		return 1
	}
	logf := newLogf(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "check":
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return 0
	case "relay":
		return serve(ctx, *path, cfg.Relay, logf)
	}
	if *name != "" {
		cfg.Client.Name = *name
	}
	if *server != "" {
		cfg.Client.Server = *server
	}
	if *room != "" {
		cfg.Client.Room = *room
	}
	if err := subcommands[cmd](ctx, cfg, stdin, stdout, logf); err != nil {
		fmt.Fprintf(stderr, "roomrelay: %v\n", err)
		return 1
	}
	return 0
}

// subcommands are the endpoints beside the relay, by name; extras.go adds
// them, and a minimal build (-tags minimal) leaves them out.
var subcommands = map[string]func(ctx context.Context, cfg *config.File, stdin io.Reader, stdout io.Writer, logf config.Logf) error{}

// serve runs the relay until ctx ends, reloading path on SIGHUP, then
// shuts it down.
func serve(ctx context.Context, path string, cfg config.Config, logf config.Logf) int {
	tuneMemory(cfg)
	srv := relay.New(cfg, logf)
	if err := srv.Start(); err != nil {
		logf("error: %v", err)
		return 1
	}
	logf("info: roomrelay %s running", version)
	notify(logf, "READY=1")
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			notify(logf, "RELOADING=1")
			if f, err := config.Load(path); err != nil {
				oneLine := strings.NewReplacer(":\n", ": ", "\n", "; ").Replace(err.Error())
				logf("error: reload: keeping the running config: %s", oneLine)
			} else {
				tuneMemory(f.Relay)
				srv.Reload(f.Relay)
				cfg = f.Relay
			}
			notify(logf, "READY=1")
			continue
		case <-ctx.Done():
		}
		break
	}
	logf("info: roomrelay shutting down")
	notify(logf, "STOPPING=1")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown.D()+cfg.Timeouts.Write.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logf("warn: shutdown: %v", err)
	}
	return 0
}

// tuneMemory applies relay.memory_limit_mb (0: no limit) and
// relay.gc_percent.
func tuneMemory(cfg config.Config) {
	if cfg.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	} else {
		debug.SetMemoryLimit(math.MaxInt64)
	}
	debug.SetGCPercent(cfg.GCPercent)
}

func notify(logf config.Logf, state string) {
	if err := relay.Notify(state); err != nil {
		logf("warn: notify service manager: %v", err)
	}
}

// priorities maps the relay's log levels to syslog priorities.
var priorities = []struct{ level, prio string }{
	{"debug: ", "<7>"}, {"info: ", "<6>"}, {"warn: ", "<4>"}, {"error: ", "<3>"},
}

// newLogf returns the log function: one line per entry on w. Under
// systemd (JOURNAL_STREAM set) the level becomes a syslog priority prefix
// such as <4> and the journal adds the time; elsewhere each line starts
// with the time.
func newLogf(w io.Writer) config.Logf {
	if os.Getenv("JOURNAL_STREAM") != "" {
		var mu sync.Mutex
		return func(format string, args ...any) {
			line := fmt.Sprintf(format, args...)
			for _, p := range priorities {
				if rest, ok := strings.CutPrefix(line, p.level); ok {
					line = p.prio + rest
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(w, line)
		}
	}
	return log.New(w, "", log.LstdFlags).Printf
}
