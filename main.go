// Command roomrelay is a small LAN chat relay for a Raspberry Pi or a home
// router: people chat through it from nc, telnet or `roomrelay client`.
//
//	roomrelay [-config FILE] [relay|client|peer|echo|check|stats|version] [flags]
package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"math"
	"os"
	"os/signal"
	"roomrelay/internal/cmdflag"
	"roomrelay/internal/errlite"
	"roomrelay/internal/fmtlite"
	"roomrelay/internal/sortlite"
	"roomrelay/relay/config"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"roomrelay/relay"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// endpoint is a subcommand beside the relay: extras.go adds client, peer
// and echo, and a minimal build (-tags minimal) leaves them out.
type endpoint struct {
	name, about string
	// flags, when set, defines the flags only this subcommand takes and
	// returns what puts their values into the config.
	flags func(fs *cmdflag.Set) (apply func(*config.File))
	run   func(ctx context.Context, cfg *config.File, std stdio) error
	// noConfig: it reads no config file (passwd: a file may be invalid
	// for want of what it makes).
	noConfig bool
}

// stdio is what an endpoint reads and writes: logf is the log, on err.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	logf     config.Logf
}

var endpoints []endpoint

// checkTLS, in a build with TLS doors (tls.go), has `check` read the
// certificate the TLS doors of a config would serve.
var checkTLS func(*config.File) error

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cl, code := parseArgs(args, stderr)
	if cl == nil {
		return code
	}
	if cl.cmd == "version" {
		tag := buildTag()
		if tag != "" {
			tag = " " + tag
		}
		fmtlite.Fprintf(stdout, "roomrelay %s%s\n", version, tag)
		return 0
	}
	for _, e := range endpoints {
		if e.name == cl.cmd && e.noConfig {
			if err := e.run(context.Background(), nil, stdio{stdin, stdout, stderr, newLogf(stderr)}); err != nil {
				fmtlite.Fprintf(stderr, "roomrelay: %s: %v\n", cl.cmd, err)
				return 1
			}
			return 0
		}
	}
	load := config.Load
	if cl.cmd == "check" {
		load = config.Check // also: can this machine listen there?
	}
	cfg, err := load(cl.path)
	if !cl.explicit && errors.Is(err, iofs.ErrNotExist) && cl.cmd != "relay" && cl.cmd != "check" && cl.cmd != "fingerprint" {
		// The endpoints run anywhere: without ./config.json, the defaults.
		d := config.Default()
		cfg, err = &d, nil
	}
	if err != nil {
		fmtlite.Fprintf(stderr, "roomrelay: %v\n", err)
		return 1
	}
	if cl.cmd == "check" {
		if checkTLS != nil {
			if err := checkTLS(cfg); err != nil {
				fmtlite.Fprintf(stderr, "roomrelay: config %s:\n%v\n", cl.path, err)
				return 1
			}
		}
		fmtlite.Fprintf(stdout, "%s: ok\n", cl.path)
		return 0
	}
	if cl.apply != nil {
		cl.apply(cfg)
	}
	cl.listen.set(cfg)
	if err := cfg.Validate(); err != nil {
		fmtlite.Fprintf(stderr, "roomrelay: with the flags given:\n%v\n", err)
		return 2
	}
	logf := newLogf(stderr)
	ctx, stop := onSignal(os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cl.cmd {
	case "relay":
		return serve(ctx, cl.path, cl.listen, cfg.Relay, logf)
	case "stats":
		if err := askStats(ctx, cfg.Relay.Listen.Line, cfg.Client.Timeout.D(), stdout); err != nil {
			fmtlite.Fprintf(stderr, "roomrelay: stats: %v\n", err)
			return 1
		}
		return 0
	}
	for _, e := range endpoints {
		if e.name == cl.cmd {
			if err := e.run(ctx, cfg, stdio{stdin, stdout, stderr, logf}); err != nil {
				fmtlite.Fprintf(stderr, "roomrelay: %v\n", err)
				return 1
			}
		}
	}
	return 0
}

// cmdline is what the command line asks for.
type cmdline struct {
	cmd      string // the subcommand
	path     string // -config
	explicit bool   // -config was given
	listen   listenFlag
	apply    func(*config.File) // puts the subcommand's own flags into the config; may be nil
}

// parseArgs reads the command line in one pass over every flag. On -h, or
// on an error, which it reports on stderr, it returns nil and the exit
// code.
func parseArgs(args []string, stderr io.Writer) (*cmdline, int) {
	fs := cmdflag.New(stderr) // a bad flag gets one line; -h the whole usage
	path := fs.String("config", "config.json", "configuration `file`")
	cl := &cmdline{listen: listenFlag{}}
	fs.Var(cl.listen, "listen", "relay: serve a door at another address than relay.listen.DOOR in the config, for a quick try;\n"+
		"repeatable, `DOOR=HOST:PORT`; DOOR= leaves the door out")
	// The flags only one subcommand takes, by flag name, and what puts
	// them into the config.
	owner := map[string]string{"listen": "relay"}
	apply := map[string]func(*config.File){}
	for _, e := range endpoints {
		if e.flags == nil {
			continue
		}
		own := cmdflag.New(nil)
		apply[e.name] = e.flags(own)
		own.VisitAll(func(f *cmdflag.Flag) {
			fs.Var(f.Value, f.Name, e.name+": "+f.Usage)
			owner[f.Name] = e.name
		})
	}

	cmd, rest := subcommand(fs, args)
	names := commandNames()
	known := slices.Contains(names, cmd)
	if !known && buildTag() != "" && slices.Contains(allEndpoints, cmd) {
		fmtlite.Fprintf(stderr, "roomrelay: %s is not in this build (built with -tags %s: %s)\n", cmd, buildTag(), strings.Join(names, ", "))
		return nil, 2
	}
	// A flag of another subcommand is named as such, before its value is
	// read (a value for one subcommand may be no value for another's flag
	// of the same name).
	var misplaced []string
	for _, a := range rest {
		if a == "--" || !known {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if o := owner[name]; strings.HasPrefix(a, "-") && o != "" && o != cmd {
			misplaced = append(misplaced, fmtlite.Sprintf("-%s is a flag of %s, not of %s", name, o, cmd))
		}
	}
	if len(misplaced) > 0 {
		fmtlite.Fprintf(stderr, "roomrelay: %s\n", strings.Join(misplaced, "; "))
		return nil, 2
	}
	switch err := fs.Parse(rest); {
	case errors.Is(err, cmdflag.ErrHelp):
		printUsage(stderr, fs)
		return nil, 0
	case err != nil:
		io.WriteString(stderr, "roomrelay: see roomrelay -h\n")
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmtlite.Fprintf(stderr, "roomrelay: unexpected argument %q\n", fs.Arg(0))
		return nil, 2
	}
	if !known {
		fmtlite.Fprintf(stderr, "roomrelay: unknown subcommand %q (want %s or %s)\n",
			cmd, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
		return nil, 2
	}
	fs.Visit(func(f *cmdflag.Flag) { cl.explicit = cl.explicit || f.Name == "config" })
	cl.cmd, cl.path, cl.apply = cmd, *path, apply[cmd]
	return cl, 0
}

// subcommand takes the subcommand out of args, wherever it stands among
// the flags, so that one Parse reads every flag: it is the first argument
// that is neither a flag nor a flag's value; "relay" when there is none.
func subcommand(fs *cmdflag.Set, args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			return a, slices.Delete(slices.Clone(args), i, i+1)
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := fs.Lookup(name); f != nil && !inline {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				i++ // the flag's value
			}
		}
	}
	return "relay", args
}

// allEndpoints names the endpoints of a full build, so that a minimal
// build can say that it lacks one rather than not know it.
var allEndpoints = []string{"client", "peer", "echo", "passwd", "fingerprint"}

// minimal reports whether this is a minimal build: no endpoints.
func minimal() bool { return len(endpoints) == 0 }

// buildTag names the tag that left something out of this build: "minimal",
// "notls" (no TLS: every endpoint but fingerprint), or "" for a full build.
func buildTag() string {
	switch {
	case minimal():
		return "minimal"
	case !slices.ContainsFunc(endpoints, func(e endpoint) bool { return e.name == "fingerprint" }):
		return "notls"
	}
	return ""
}

// commandNames lists the subcommands of this build, in usage order.
func commandNames() []string {
	names := []string{"relay"}
	for _, e := range endpoints {
		names = append(names, e.name)
	}
	return append(names, "check", "stats", "version")
}

// printUsage prints -h: the subcommands this build has, and the flags.
func printUsage(w io.Writer, fs *cmdflag.Set) {
	fmtlite.Fprintf(w, "usage: roomrelay [-config FILE] [%s] [flags]\n\n", strings.Join(commandNames(), "|"))
	line := func(name, about string) { fmtlite.Fprintf(w, "  %-11s %s\n", name, about) }
	line("relay", "run the relay (the default)")
	for _, e := range endpoints {
		line(e.name, e.about)
	}
	line("check", "validate the config file and print every problem")
	line("stats", "print the running relay's counters as JSON (asks relay.listen.line on loopback)")
	line("version", "print the version")
	if minimal() {
		io.WriteString(w, "\nThis is a minimal build: the relay with its line door only.\n")
	}
	if buildTag() == "notls" {
		io.WriteString(w, "\nThis build has no TLS (-tags notls): no line_tls, irc_tls or https door.\n")
	}
	io.WriteString(w, "\nflags:\n")
	fs.PrintDefaults()
}

// listenFlag is the -listen flags: an address by door name, "" for off.
type listenFlag map[string]string

func (l listenFlag) String() string {
	var s []string
	for door, addr := range l {
		s = append(s, door+"="+addr)
	}
	sortlite.Strings(s)
	return strings.Join(s, " ")
}

func (l listenFlag) Set(v string) error {
	door, addr, ok := strings.Cut(v, "=")
	if !ok {
		return fmtlite.Errorf("want DOOR=HOST:PORT, not %q", v)
	}
	if (&config.Listen{}).Door(door) == nil {
		names := config.DoorNames()
		return fmtlite.Errorf("no door %q (the doors: %s)", door, strings.Join(names, ", "))
	}
	if addr != "" {
		if err := config.CheckAddr(addr); err != nil {
			return fmtlite.Errorf("%s door: %w", door, err)
		}
	}
	l[door] = addr
	return nil
}

// set puts the -listen addresses into f over the config file's.
func (l listenFlag) set(f *config.File) {
	for door, addr := range l {
		*f.Relay.Listen.Door(door) = addr
	}
}

// serve runs the relay until ctx ends, reloading path (with the -listen
// flags over it) on SIGHUP, then shuts it down.
func serve(ctx context.Context, path string, listen listenFlag, cfg config.Config, logf config.Logf) int {
	tuneMemory(cfg)
	// A log on a pipe whose reader went away (`roomrelay relay 2>&1 |
	// logger`, a supervisor's log reader restarting) would otherwise end
	// the relay, silently, at its next line: Go dies of SIGPIPE on a
	// broken standard output or error unless the signal is handled.
	// Handled, a log write fails with EPIPE at once and the line is lost.
	// Caught and never read rather than signal.Ignore'd: Notify is in
	// the binary already, Ignore would add 3 KB to the minimal build and
	// push it over a 64 KiB step (a SIGPIPE that finds the channel full
	// is dropped, not fatal).
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	// Caught from the start: a reload asked for while the doors open waits
	// for them instead of ending the relay.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if len(listen) > 0 { // why a door is off or elsewhere, before the relay says it is
		logf("info: -listen %s, over relay.listen in %s", listen, path)
	}
	srv := relay.New(cfg, logf)
	if err := srv.Start(); err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, err := range errs {
			logf("error: %v", err)
			if be, ok := errlite.As[*relay.BindError](err); ok {
				logf("error: to try it elsewhere, give the %s door another address with -listen %s=HOST:PORT "+
					"(or relay.listen.%s in %s), or leave it out with -listen %s=", be.Door, be.Door, be.Door, path, be.Door)
			}
		}
		return 1
	}
	logf("info: roomrelay %s running", version)
	notify(logf, "READY=1")
	for {
		select {
		case <-hup:
			notify(logf, "RELOADING=1")
			f, err := config.Load(path)
			if err == nil {
				listen.set(f) // the command line still wins
				err = f.Validate()
			}
			if err != nil {
				// strings.ReplaceAll, without its Replace (2.4 KB of a mipsle binary)
				oneLine := strings.Join(strings.Split(strings.Join(strings.Split(err.Error(), ":\n"), ": "), "\n"), "; ")
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
	sctx, cancel := withTimeout(cfg.Timeouts.Shutdown.D() + cfg.Timeouts.Write.D())
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
	journal := os.Getenv("JOURNAL_STREAM") != ""
	// Each line as package log writes it with log.LstdFlags (the local
	// date and time first), without package log: about 16 KB less of the
	// minimal build.
	var mu sync.Mutex
	var buf []byte // guarded by mu
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		buf = buf[:0]
		if !journal {
			buf = time.Now().AppendFormat(buf, "2006/01/02 15:04:05 ")
		}
		buf = fmtlite.Append(buf, format, args...)
		if journal {
			for _, p := range priorities {
				if rest, ok := bytes.CutPrefix(buf, []byte(p.level)); ok {
					buf = append(buf[:copy(buf, p.prio)], rest...) // the priority is the shorter: it overwrites the level
					break
				}
			}
		}
		if len(buf) == 0 || buf[len(buf)-1] != '\n' {
			buf = append(buf, '\n')
		}
		w.Write(buf)
	}
}
