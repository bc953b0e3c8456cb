package main

import (
	"bytes"
	"os"
	"path/filepath"
	"roomrelay/relay/config"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"relay":{"listen":{"line":"nowhere"},"limits":{"queue":0,"colour":"red"}},"client":{"timeout":"fast"}}`), 0o644)
	unreadable := filepath.Join(dir, "dir.json")
	os.Mkdir(unreadable, 0o755)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string // lines
	}{
		{name: "version", args: []string{"version"}, stdout: "roomrelay dev\n"},
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
			`roomrelay: unknown subcommand "serve" (want relay, ` + map[bool]string{true: "client, peer, echo, ", false: ""}[len(subcommands) > 0] + `check or version)`}},
		{name: "extra argument", args: []string{"check", "more"}, code: 2, stderr: []string{
			`roomrelay: unexpected argument "more"`}},
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
	code, _, stderr = runArgs("-bogus")
	if code != 2 || stderr != "flag provided but not defined: -bogus\nroomrelay: see roomrelay -h\n" {
		t.Errorf("-bogus: exit %d, stderr %q", code, stderr)
	}
	// Without ./config.json the relay and check refuse to guess...
	t.Chdir(t.TempDir())
	if code, _, stderr := runArgs("check"); code != 1 || !strings.Contains(stderr, "open config.json: no such file or directory") {
		t.Errorf("check: exit %d, stderr %q", code, stderr)
	}
	// ...while the endpoints take the defaults (here: a client without a name).
	if code, _, stderr := runArgs("client"); code != 1 || stderr != "roomrelay: client: no name: give one with -name or client.name\n" {
		t.Errorf("client: exit %d, stderr %q", code, stderr)
	}
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
