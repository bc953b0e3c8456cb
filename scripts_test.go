package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestServiceFiles checks the service files in scripts/: the OpenWrt init
// script parses as sh, and the systemd unit has the directives the relay
// relies on and passes systemd-analyze verify where that can run.
func TestServiceFiles(t *testing.T) {
	t.Run("executable", func(t *testing.T) {
		for _, f := range []string{"scripts/crosscompile.sh", "scripts/roomrelay.init"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm()&0o111 == 0 {
				t.Errorf("%s is not executable (mode %v)", f, fi.Mode().Perm())
			}
		}
	})

	t.Run("init", func(t *testing.T) {
		const path = "scripts/roomrelay.init"
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if first, _, _ := strings.Cut(string(b), "\n"); first != "#!/bin/sh /etc/rc.common" {
			t.Errorf("%s: first line %q; want #!/bin/sh /etc/rc.common", path, first)
		}
		for _, want := range []string{
			"USE_PROCD=1",
			"START=95",
			"STOP=10",
			"procd_open_instance",
			`procd_set_param command "$PROG" -config "$CONF" relay`,
			"procd_set_param respawn 3600 5 5",
			`procd_set_param file "$CONF"`,
			"procd_set_param stderr 1",
			"procd_close_instance",
			"reload_service()",
			"procd_send_signal roomrelay",
			"PROG=/usr/bin/roomrelay",
			"CONF=/etc/roomrelay/config.json",
		} {
			if !hasLine(b, want) {
				t.Errorf("%s: no line %q", path, want)
			}
		}
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Skipf("no sh to check the syntax with: %v", err)
		}
		if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", path, err, out)
		}
	})

	const unitPath = "scripts/roomrelay.service"
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("unit", func(t *testing.T) {
		got := unitKeys(unit)
		for _, want := range []struct{ section, key, value string }{
			{"Unit", "After", "network-online.target"},
			{"Unit", "Wants", "network-online.target"},
			{"Service", "Type", "notify"},
			{"Service", "ExecStart", "/usr/local/bin/roomrelay -config /etc/roomrelay/config.json relay"},
			{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
			{"Service", "Restart", "on-failure"},
			{"Service", "RestartSec", "2"},
			{"Service", "DynamicUser", "yes"},
			{"Service", "NoNewPrivileges", "yes"},
			{"Service", "ProtectSystem", "strict"},
			{"Service", "ProtectHome", "yes"},
			{"Service", "PrivateTmp", "yes"},
			{"Service", "ReadOnlyPaths", "/etc/roomrelay"},
			{"Service", "CapabilityBoundingSet", ""},
			{"Service", "RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
			{"Install", "WantedBy", "multi-user.target"},
		} {
			vals := got[want.section+"."+want.key]
			found := false
			for _, v := range vals {
				found = found || v == want.value
			}
			if !found {
				t.Errorf("[%s] %s=%s missing (have %q)", want.section, want.key, want.value, vals)
			}
		}
	})

	t.Run("systemd-analyze", func(t *testing.T) {
		if testing.Short() {
			t.Skip("skipped in -short mode: builds roomrelay")
		}
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not on PATH (Debian package systemd); not verifying the unit")
		}
		// verify wants every command of the unit to exist: point them at
		// a freshly built relay.
		bin := buildRoomrelay(t, "native", nil)
		verifyUnit := bytes.ReplaceAll(unit, []byte("/usr/local/bin/roomrelay"), []byte(bin))
		path := filepath.Join(t.TempDir(), "roomrelay.service")
		if err := os.WriteFile(path, verifyUnit, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, sa, "verify", "--man=no", path).CombinedOutput()
		// Only lines naming the unit are about it; the rest are about
		// this machine (no systemd as PID 1, missing units it depends on).
		var about []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "roomrelay.service") {
				about = append(about, l)
			}
		}
		switch {
		case len(about) > 0:
			t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, strings.Join(about, "\n"))
		case err != nil:
			t.Skipf("systemd-analyze verify cannot run here (%v); not verifying the unit:\n%s", err, out)
		default:
			t.Logf("systemd-analyze verify: ok")
		}
	})
}

// TestMinimalBuild builds this machine's target with
// scripts/crosscompile.sh twice, full and TAGS=minimal, into one
// directory: the two binaries stand side by side with their sums, and the
// minimal one says what it is and offers only what it has.
func TestMinimalBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds roomrelay twice")
	}
	target := map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "386"}[runtime.GOARCH]
	if runtime.GOOS != "linux" || target == "" {
		t.Skipf("crosscompile.sh builds for Linux; %s/%s cannot run its builds", runtime.GOOS, runtime.GOARCH)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("bash is not on PATH: %v", err)
	}
	dist := t.TempDir()
	for _, tags := range []string{"", "minimal"} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, bash, "scripts/crosscompile.sh", target)
		cmd.Env = append(os.Environ(), "VERSION=v-test", "DIST="+dist, "TAGS="+tags)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("TAGS=%q scripts/crosscompile.sh %s: %v\n%s", tags, target, err, out)
		}
	}
	full, minimal := filepath.Join(dist, "roomrelay-"+target), filepath.Join(dist, "roomrelay-minimal-"+target)
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{full, minimal} {
		if !strings.Contains(string(sums), "  "+filepath.Base(bin)+"\n") {
			t.Errorf("SHA256SUMS has no line for %s:\n%s", filepath.Base(bin), sums)
		}
	}

	roomrelay := func(bin string, args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s %s: %v", bin, args, err)
		}
		return code, string(out)
	}
	for _, tc := range []struct {
		bin    string
		args   []string
		code   int
		output string // its start
	}{
		{full, []string{"version"}, 0, "roomrelay v-test\n"},
		{minimal, []string{"version"}, 0, "roomrelay v-test minimal\n"},
		{full, []string{"-h"}, 0, "usage: roomrelay [-config FILE] [relay|client|peer|echo|passwd|fingerprint|check|stats|version] [flags]\n"},
		{minimal, []string{"-h"}, 0, "usage: roomrelay [-config FILE] [relay|check|stats|version] [flags]\n\n" +
			"  relay       run the relay (the default)\n" +
			"  check       validate the config file and print every problem\n" +
			"  stats       print the running relay's counters as JSON (asks relay.listen.line on loopback)\n" +
			"  version     print the version\n\n" +
			"This is a minimal build: the relay with its line door only.\n"},
		{minimal, []string{"client"}, 2, `roomrelay: client is not in this build (built with -tags minimal: relay, check, stats, version)` + "\n"},
		{minimal, []string{"-name", "x"}, 2, "flag provided but not defined: -name\n"},
	} {
		code, out := roomrelay(tc.bin, tc.args...)
		if code != tc.code || !strings.HasPrefix(out, tc.output) {
			t.Errorf("%s %s: exit %d, output:\n%s\nwant exit %d, output starting:\n%s", filepath.Base(tc.bin), tc.args, code, out, tc.code, tc.output)
		}
	}
	if _, out := roomrelay(minimal, "-h"); strings.Contains(out, "client") || strings.Contains(out, "-name") {
		t.Errorf("minimal -h mentions the client:\n%s", out)
	}
}

// unitKeys returns the key=value lines of a systemd unit by "Section.Key",
// each key's values in order. An empty assignment is kept as "".
func unitKeys(b []byte) map[string][]string {
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && l[len(l)-1] == ']':
			section = l[1 : len(l)-1]
		default:
			if k, v, ok := strings.Cut(l, "="); ok {
				k = section + "." + strings.TrimSpace(k)
				keys[k] = append(keys[k], strings.TrimSpace(v))
			}
		}
	}
	return keys
}

// hasLine reports whether b has a line that is want, apart from
// surrounding blanks, or that starts with want followed by a blank.
func hasLine(b []byte, want string) bool {
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == want || strings.HasPrefix(l, want+" ") {
			return true
		}
	}
	return false
}
