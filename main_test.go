package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"roomrelay/internal/cmdflag"
	"roomrelay/relay"
	"roomrelay/relay/config"
	"roomrelay/relay/secret"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	return runInput("", args...)
}

func runInput(stdin string, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"relay":{"listen":{"line":"nowhere"},"limits":{"queue":0,"colour":"red"}},"client":{"timeout":"fast"}}`), 0o644)
	elsewhere := filepath.Join(dir, "elsewhere.json") // 192.0.2.1: a documentation address
	os.WriteFile(elsewhere, []byte(`{"relay":{"listen":{"line":"192.0.2.1:7777"}}}`), 0o644)
	unreadable := filepath.Join(dir, "dir.json")
	os.Mkdir(unreadable, 0o755)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string // lines
	}{
		{name: "version", args: []string{"version"}, stdout: "roomrelay dev" + map[string]string{"minimal": " minimal", "notls": " notls"}[buildTag()] + "\n"},
		{name: "check ok", args: []string{"-config", "config.json", "check"}, stdout: "config.json: ok\n"},
		{name: "check bad", args: []string{"-config", bad, "check"}, code: 1, stderr: []string{
			"roomrelay: config " + bad + ":",
			`client.timeout: want a duration such as "10s", not "fast"`,
			"relay.limits.colour: unknown key",
			`relay.listen.line: want host:port, not "nowhere"`,
			"relay.limits.queue: must be from 1 to 512, not 0",
		}},
		{name: "check invalid", args: []string{"check", "-config", bad + ".x"}, code: 1, stderr: []string{
			"roomrelay: read config: open " + bad + ".x: no such file or directory"}},
		{name: "unreadable", args: []string{"-config", unreadable, "check"}, code: 1, stderr: []string{
			"roomrelay: read config: read " + unreadable + ": is a directory"}},
		{name: "unknown subcommand", args: []string{"serve"}, code: 2, stderr: []string{
			`roomrelay: unknown subcommand "serve" (want relay, ` + map[string]string{"": "client, peer, echo, passwd, fingerprint, ", "notls": "client, peer, echo, passwd, "}[buildTag()] + `check, stats or version)`}},
		{name: "extra argument", args: []string{"check", "more"}, code: 2, stderr: []string{
			`roomrelay: unexpected argument "more"`}},
		{name: "not this machine", args: []string{"-config", elsewhere, "check"}, code: 1, stderr: []string{
			"roomrelay: config " + elsewhere + ":",
			"relay.listen.line: 192.0.2.1 is not an address of this machine (its interface may not be up yet; the relay would wait for it)"}},
		{name: "relay flag to check", args: []string{"check", "-listen", "line=127.0.0.1:0"}, code: 2, stderr: []string{
			"roomrelay: -listen is a flag of relay, not of check"}},
		{name: "no such door", args: []string{"-listen", "xmpp=127.0.0.1:5222"}, code: 2, stderr: []string{
			`invalid value "xmpp=127.0.0.1:5222" for flag -listen: no door "xmpp" (the doors: line, legacy, udp, irc, http, line_tls, irc_tls, https)`,
			"roomrelay: see roomrelay -h"}},
		{name: "listen without a door", args: []string{"relay", "-listen", "127.0.0.1:9000"}, code: 2, stderr: []string{
			`invalid value "127.0.0.1:9000" for flag -listen: want DOOR=HOST:PORT, not "127.0.0.1:9000"`,
			"roomrelay: see roomrelay -h"}},
		{name: "listen without a port", args: []string{"-listen", "line=127.0.0.1"}, code: 2, stderr: []string{
			`invalid value "line=127.0.0.1" for flag -listen: line door: want host:port, not "127.0.0.1"`,
			"roomrelay: see roomrelay -h"}},
		{name: "every door off", args: []string{"-config", "config.json", "-listen", "line=", "-listen", "legacy=", "-listen=udp=", "-listen=irc=", "-listen=http="}, code: 2, stderr: []string{
			"roomrelay: with the flags given:",
			"relay.listen: every door is off; set at least one of line, legacy, udp, irc, http, line_tls, irc_tls, https"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", stdout, tc.stdout)
			}
			var lines []string
			if stderr != "" {
				lines = strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			}
			if diff := cmp.Diff(tc.stderr, lines); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
	code, _, stderr := runArgs("-bogus")
	if code != 2 || !strings.HasPrefix(stderr, "flag provided but not defined: -bogus\n") {
		t.Errorf("bad flag: exit %d, stderr %q", code, stderr)
	}
}

func TestHelpAndDefaults(t *testing.T) {
	code, _, stderr := runArgs("-h")
	if code != 0 || !strings.HasPrefix(stderr, "usage: roomrelay") || !strings.Contains(stderr, "-config file") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr)
	}
	// Each subcommand's description starts in one column, after the
	// longest name (fingerprint) too.
	cols := map[int][]string{}
	for _, l := range strings.Split(stderr, "\n") {
		for _, name := range commandNames() {
			if rest, ok := strings.CutPrefix(l, "  "+name+" "); ok {
				col := len(l) - len(strings.TrimLeft(rest, " "))
				cols[col] = append(cols[col], name)
			}
		}
	}
	if len(cols) != 1 {
		t.Errorf("-h: the subcommands' descriptions start in more than one column (by column: %v):\n%s", cols, stderr)
	}
	code, _, stderr = runArgs("-bogus")
	if code != 2 || stderr != "flag provided but not defined: -bogus\nroomrelay: see roomrelay -h\n" {
		t.Errorf("-bogus: exit %d, stderr %q", code, stderr)
	}
	// Without ./config.json the relay and check refuse to guess...
	t.Chdir(t.TempDir())
	if code, _, stderr := runArgs("check"); code != 1 || !strings.Contains(stderr, "open config.json: no such file or directory") {
		t.Errorf("check: exit %d, stderr %q", code, stderr)
	}
	// ...while stats asks the default line door, 127.0.0.1:7777, and
	// names it unless it answers (something else may listen there)...
	code, stdout, stderr := runArgs("stats")
	if code == 0 && !strings.HasPrefix(stdout, "{") || code != 0 && !strings.HasPrefix(stderr, "roomrelay: stats: ") ||
		code != 0 && !strings.Contains(stderr, " 127.0.0.1:7777") {
		t.Errorf("stats: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// ...and so do the endpoints (here: a client without a name).
	if minimal() {
		return // no endpoints
	}
	if code, _, stderr := runArgs("client"); code != 1 || stderr != "roomrelay: client: no name: give one with -name or client.name\n" {
		t.Errorf("client: exit %d, stderr %q", code, stderr)
	}
}

// TestClientFlags: the client's own flags are refused by the other
// subcommands, before or after the subcommand, and reach the client.
func TestClientFlags(t *testing.T) {
	if minimal() {
		t.Skip("a minimal build has no client")
	}
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"-name", "carol"}, "roomrelay: -name is a flag of client, not of relay\n"},
		{[]string{"-server", "127.0.0.1:1", "check"}, "roomrelay: -server is a flag of client, not of check\n"},
		{[]string{"peer", "-room", "kitchen"}, "roomrelay: -room is a flag of client, not of peer\n"},
		{[]string{"echo", "-mode=tutorial"}, "roomrelay: -mode is a flag of client, not of echo\n"},
		{[]string{"version", "-name", "x"}, "roomrelay: -name is a flag of client, not of version\n"},
		{[]string{"client", "-listen", "127.0.0.1:18883"}, "roomrelay: -listen is a flag of relay, not of client\n"}, // not a bad DOOR=ADDR
		// A flag's value is not taken for the subcommand.
		{[]string{"-name", "check", "client", "-mode", "pigeon"}, "roomrelay: with the flags given:\n" +
			`client.mode: want "line" or "tutorial", not "pigeon"` + "\n"},
		{[]string{"client", "-tls", "-mode", "tutorial"}, "roomrelay: with the flags given:\n" +
			`client.tls: the tutorial protocol has no TLS: set client.mode to "line" for a TLS door` + "\n"},
		{[]string{"client", "-fingerprint", "sha256:AB"}, "roomrelay: with the flags given:\n" +
			`client.fingerprint: want a SHA-256 fingerprint such as "sha256:AB:CD:..." (32 bytes in hex), not "sha256:AB"` + "\n"},
		{[]string{"-name", "no!name", "client"}, "roomrelay: with the flags given:\n" +
			"client.name: invalid name: name may hold only letters, digits, spaces, _ - and . (not '!')\n"},
	} {
		code, stdout, stderr := runArgs(tc.args...)
		if code != 2 || stdout != "" || stderr != tc.stderr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, stderr %q", tc.args, code, stdout, stderr, tc.stderr)
		}
	}
}

// TestClientPiped: a script's alert prints nothing and exits 0; a taken
// name is an error on stderr and exit 1, never a retry loop.
func TestClientPiped(t *testing.T) {
	if minimal() {
		t.Skip("a minimal build has no client")
	}
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0"}
	srv := relay.New(cfg, t.Logf)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	addr := srv.Addr("line").String()
	dave, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer dave.Close()
	dave.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(dave, "dave")
	lines := bufio.NewScanner(dave)
	until := func(prefix string) {
		t.Helper()
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), prefix) {
				return
			}
		}
		t.Fatalf("dave: no line %q: %v", prefix, lines.Err())
	}
	until("--- you are dave")

	code, stdout, stderr := runInput("backup finished\n", "client", "-name", "nas", "-server", addr, "-room", "lobby")
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("alert: exit %d, stdout %q, stderr %q; want 0 and nothing", code, stdout, stderr)
	}
	until("nas: backup finished")

	code, stdout, stderr = runInput("backup finished\n", "client", "-name", "dave", "-server", addr)
	if want := "roomrelay: client: the name dave is taken on " + addr + ": choose another with -name\n"; code != 1 || stdout != "" || stderr != want {
		t.Errorf("taken name: exit %d, stdout %q, stderr %q; want 1, %q", code, stdout, stderr, want)
	}
}

func TestSubcommand(t *testing.T) {
	fs := cmdflag.New(io.Discard)
	fs.String("config", "", "")
	fs.Bool("quiet", false, "")
	for _, tc := range []struct {
		args []string
		cmd  string
		rest []string
	}{
		{nil, "relay", nil},
		{[]string{"-config", "check"}, "relay", []string{"-config", "check"}},
		{[]string{"-config", "x", "check", "-quiet"}, "check", []string{"-config", "x", "-quiet"}},
		{[]string{"--config=x", "-quiet", "client", "-config", "y"}, "client", []string{"--config=x", "-quiet", "-config", "y"}},
		{[]string{"-unknown", "peer"}, "peer", []string{"-unknown"}},
		{[]string{"--", "echo"}, "relay", []string{"--", "echo"}},
	} {
		cmd, rest := subcommand(fs, tc.args)
		if cmd != tc.cmd || !slices.Equal(rest, tc.rest) {
			t.Errorf("subcommand(%q) = %q, %q; want %q, %q", tc.args, cmd, rest, tc.cmd, tc.rest)
		}
	}
}

// TestListenFlag: -listen moves a door over the config file, and a door
// that cannot listen is named with its key and how to move it.
func TestListenFlag(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := filepath.Join(t.TempDir(), "config.json")
	// The config asks for a free port; the flag moves the line door onto
	// the busy one.
	os.WriteFile(path, []byte(`{"relay":{"listen":{"line":"127.0.0.1:0","legacy":"","udp":"","irc":"","http":""}}}`), 0o644)
	code, _, stderr := runArgs("-config", path, "relay", "-listen", "line="+busy.Addr().String(), "-listen", "http=")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		// Why a door is off or elsewhere, before the relay says it is.
		"info: -listen http= line=" + busy.Addr().String() + ", over relay.listen in " + path + "\n",
		"error: line door: cannot listen on " + busy.Addr().String() + " (relay.listen.line): bind: address already in use",
		"error: to try it elsewhere, give the line door another address with -listen line=HOST:PORT (or relay.listen.line in " + path + "), or leave it out with -listen line=\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	l := listenFlag{}
	for _, v := range []string{"line=127.0.0.1:9000", "udp=", "line=[::1]:9001"} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	f := config.Default()
	l.set(&f)
	if want := (config.Listen{Line: "[::1]:9001", Legacy: "127.0.0.1:7778", IRC: "127.0.0.1:6667", HTTP: "127.0.0.1:8080"}); f.Relay.Listen != want {
		t.Errorf("listen %+v, want %+v", f.Relay.Listen, want)
	}
	if s := l.String(); s != "line=[::1]:9001 udp=" {
		t.Errorf("String() = %q", s)
	}
}

// TestListenAcrossReload: the -listen flags still win over the config
// file after SIGHUP re-reads it.
func TestListenAcrossReload(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	bin := tutBuild(t)
	filePort, flagPort := tutFreePort(t), tutFreePort(t)
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":"127.0.0.1:%d"}}}`, filePort))
	rr := tutStart(t, "roomrelay relay", "", bin, "-config", config, "-listen", fmt.Sprintf("line=127.0.0.1:%d", flagPort),
		"-listen", "legacy=", "-listen", "udp=", "-listen", "http=", "-listen", "irc=")
	rr.waitErr(t, fmt.Sprintf(`info: line door listening on 127\.0\.0\.1:%d$`, flagPort))

	os.WriteFile(config, []byte(fmt.Sprintf(`{"relay":{"listen":{"line":"127.0.0.1:%d"},"limits":{"rate":1}}}`, tutFreePort(t))), 0o644)
	rr.cmd.Process.Signal(syscall.SIGHUP)
	if l := rr.waitErr(t, `config reloaded`); strings.Contains(l, "door") {
		t.Errorf("a door moved on reload: %s", l)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", flagPort))
	if err != nil {
		t.Fatalf("the line door left -listen's address: %v", err)
	}
	c.Close()
}

// TestTuneMemory: relay.memory_limit_mb and relay.gc_percent reach the
// Go runtime.
func TestTuneMemory(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cfg := config.Default().Relay
	cfg.MemoryLimitMB, cfg.GCPercent = 24, 70
	tuneMemory(cfg)
	if got := debug.SetGCPercent(100); got != 70 {
		t.Errorf("GC percent %d, want 70", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 24<<20 {
		t.Errorf("memory limit %d, want %d", got, 24<<20)
	}
}

// TestPasswd: `roomrelay passwd` reads a secret from a pipe without a
// prompt and prints a hash that the config loader takes in every secret's
// place, even where ./config.json is invalid; it never prints the secret.
func TestPasswd(t *testing.T) {
	if minimal() {
		t.Skip("a minimal build has no passwd")
	}
	t.Chdir(t.TempDir())
	os.WriteFile("config.json", []byte(`{"relay":{"password":"in clear"}}`), 0o600)
	code, stdout, stderr := runInput("correct horse battery staple\n", "passwd")
	if code != 0 || stderr != "note: this secret holds a space: fine for a password, but a room key is one word (/join ROOM KEY)\n" {
		t.Fatalf("passwd: exit %d, stderr %q", code, stderr)
	}
	h := strings.TrimSuffix(stdout, "\n")
	if strings.Contains(h, "horse") || !strings.HasPrefix(h, "pbkdf2-sha256$") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("passwd printed %q", stdout)
	}
	conf := fmt.Sprintf(`{"relay":{"password":%q,"admin_password":%q,"rooms":{"kitchen":{"key":%q}}}}`, h, h, h)
	f, err := config.Parse([]byte(conf))
	if err != nil {
		t.Fatalf("the config loader refuses passwd's hash: %v", err)
	}
	if !secret.Match(f.Relay.Password, "correct horse battery staple") || secret.Match(f.Relay.Password, "correct horse") {
		t.Error("the hash does not match its secret alone")
	}
	if code, _, stderr := runArgs("check"); code != 1 || !strings.Contains(stderr, "relay.password: not a hash; make one with `roomrelay passwd`") || strings.Contains(stderr, "in clear") {
		t.Errorf("check of a password in clear: exit %d, stderr %q", code, stderr)
	}
	for in, want := range map[string]string{
		"":       "roomrelay: passwd: no secret on the input\n",
		"\n":     "roomrelay: passwd: the secret is empty\n",
		" pad\n": "roomrelay: passwd: the secret starts or ends with a space, which no client could send\n",
	} {
		if code, stdout, stderr := runInput(in, "passwd"); code != 1 || stdout != "" || stderr != want {
			t.Errorf("passwd <<%q: exit %d, stdout %q, stderr %q; want exit 1, stderr %q", in, code, stdout, stderr, want)
		}
	}
}

// TestLogLines: each log line is one line, the local time first; under
// systemd (JOURNAL_STREAM) its level becomes the syslog priority and no
// time is written (the journal adds it).
func TestLogLines(t *testing.T) {
	var b bytes.Buffer
	newLogf(&b)("warn: %s is %d", "kitchen", 3)
	newLogf(&b)("info: ends in a newline\n")
	lines := strings.Split(b.String(), "\n")
	if len(lines) != 3 || lines[2] != "" || !strings.HasSuffix(lines[0], " warn: kitchen is 3") || !strings.HasSuffix(lines[1], " info: ends in a newline") {
		t.Fatalf("log: %q", b.String())
	}
	if _, err := time.ParseInLocation("2006/01/02 15:04:05", lines[0][:19], time.Local); err != nil {
		t.Errorf("no time first: %q (%v)", lines[0], err)
	}
	t.Setenv("JOURNAL_STREAM", "8:1234")
	b.Reset()
	logf := newLogf(&b)
	for _, l := range []string{"debug: d", "info: i", "warn: a warning that is long enough", "error: e", "plain"} {
		logf("%s", l)
	}
	if got, want := b.String(), "<7>d\n<6>i\n<4>a warning that is long enough\n<3>e\nplain\n"; got != want {
		t.Errorf("journal log %q, want %q", got, want)
	}
}
