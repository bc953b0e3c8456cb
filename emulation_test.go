package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// emuTarget is a router CPU that TestEmulatedTargets builds for and runs
// under qemu user-mode emulation. Names match scripts/crosscompile.sh.
type emuTarget struct {
	name string   // dist/roomrelay-<name>
	env  []string // GOARCH and its variant
	qemu string   // the qemu user-mode emulator that runs it
}

var emuTargets = []emuTarget{
	{"mipsle", []string{"GOARCH=mipsle", "GOMIPS=softfloat"}, "qemu-mipsel-static"},
	{"mips", []string{"GOARCH=mips", "GOMIPS=softfloat"}, "qemu-mips-static"},
	{"armv5", []string{"GOARCH=arm", "GOARM=5"}, "qemu-arm-static"},
	{"arm64", []string{"GOARCH=arm64"}, "qemu-aarch64-static"},
}

// Bounds for the emulated relay. qemu is slow, so they are generous; none
// of them is an expected duration.
const (
	emuBuildTimeout = 10 * time.Minute // one cross-compile, cold cache
	emuStartTimeout = 60 * time.Second // until the line door is bound
	emuIOTimeout    = 20 * time.Second // each dial, read and write
	emuExitTimeout  = 30 * time.Second // from SIGTERM to exit
)

// TestEmulatedTargets cross-compiles the relay for MIPS and ARM routers,
// runs each binary under qemu, chats through it on loopback and stops it
// with SIGTERM, as a service manager would.
func TestEmulatedTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: cross-compiles the relay and runs it under qemu")
	}
	config := emuConfig(t)
	for _, tg := range emuTargets {
		t.Run(tg.name, func(t *testing.T) {
			qemu, err := exec.LookPath(tg.qemu)
			if err != nil {
				t.Skipf("%s is not on PATH; install the Debian package qemu-user-static to run the %s build", tg.qemu, tg.name)
			}
			start := time.Now()
			bin := buildRoomrelay(t, tg.name, tg.env)
			t.Logf("built %s in %v", filepath.Base(bin), time.Since(start).Round(time.Millisecond))

			start = time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), emuStartTimeout)
			defer cancel()
			out, err := exec.CommandContext(ctx, qemu, bin, "version").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "roomrelay ") {
				t.Fatalf("%s %s version: %v, output %q; want \"roomrelay <version>\"", tg.qemu, filepath.Base(bin), err, out)
			}
			t.Logf("version under %s in %v: %s", tg.qemu, time.Since(start).Round(time.Millisecond), bytes.TrimSpace(out))

			emuChat(t, qemu, bin, config, tg.name)
		})
	}
}

// buildRoomrelay builds the relay for GOOS=linux and env (GOARCH and the
// like; none for the host's own architecture) into a temporary directory
// the way scripts/crosscompile.sh does, and returns the binary's path.
func buildRoomrelay(t *testing.T, name string, env []string) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "roomrelay-"+name)
	ctx, cancel := context.WithTimeout(t.Context(), emuBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gocmd, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X main.version=test-"+name, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s (%s): %v\n%s", name, strings.Join(env, " "), err, out)
	}
	return bin
}

// emuConfig writes config.json with every door moved to a free loopback
// port and returns its path. The rest of the file is kept as shipped, so
// the test also checks that the shipped config loads on every target.
func emuConfig(t *testing.T) string { return shippedConfig(t, nil) }

// shippedConfig writes the shipped config.json with only its doors'
// addresses changed: each door the file turns on listens at listen[door],
// or at a free loopback port when listen has no address for it. It
// returns the path of the copy.
func shippedConfig(t *testing.T, listen map[string]string) string {
	t.Helper()
	b, err := os.ReadFile("config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep numbers exactly as written
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	relay, _ := cfg["relay"].(map[string]any)
	doors, _ := relay["listen"].(map[string]any)
	if doors == nil {
		t.Fatal("config.json has no relay.listen object")
	}
	doors["line"] = "127.0.0.1:0"
	// Other doors, on by default, must not take fixed ports either.
	for door, addr := range doors {
		if s, ok := addr.(string); ok && s != "" {
			doors[door] = "127.0.0.1:0"
		}
		if a, ok := listen[door]; ok {
			doors[door] = a
		}
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// emuChat runs the relay under qemu, has alice say something to bob
// through it, then stops it with SIGTERM and checks it exits with status 0.
func emuChat(t *testing.T, qemu, bin, config, target string) {
	stderr := newLogLines("line door listening on ")
	cmd := exec.Command(qemu, bin, "-config", config, "relay")
	cmd.Stderr = stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("relay stderr:\n%s", stderr.String())
		}
	})

	var addr string
	select {
	case line := <-stderr.match:
		_, a, _ := strings.Cut(line, "line door listening on ")
		_, port, err := net.SplitHostPort(strings.TrimSpace(a))
		if err != nil {
			t.Fatalf("no port in %q: %v", line, err)
		}
		addr = net.JoinHostPort("127.0.0.1", port)
	case <-exited:
		t.Fatalf("relay exited before listening: %v", waitErr)
	case <-time.After(emuStartTimeout):
		t.Fatalf("no %q line on stderr within %v", "line door listening on", emuStartTimeout)
	}
	t.Logf("line door on %s after %v", addr, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	alice := dialLine(t, addr, "alice")
	bob := dialLine(t, addr, "bob")
	text := "hello from " + target
	alice.send(text)
	bob.expect("alice: " + text)
	t.Logf("message alice to bob in %v (two handshakes included)", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(emuExitTimeout):
		t.Fatalf("relay still running %v after SIGTERM", emuExitTimeout)
	}
	if waitErr != nil {
		t.Fatalf("relay exit after SIGTERM: %v; want status 0", waitErr)
	}
	t.Logf("exit status 0 %v after SIGTERM, members still connected", time.Since(start).Round(time.Millisecond))
}

// logLines is an io.Writer that keeps what a process writes and sends the
// first line containing a pattern to match.
type logLines struct {
	pattern string
	match   chan string // buffered; gets at most one line

	mu      sync.Mutex
	buf     bytes.Buffer // everything written
	partial []byte       // the line being written
	matched bool
}

func newLogLines(pattern string) *logLines {
	return &logLines{pattern: pattern, match: make(chan string, 1)}
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if !l.matched && strings.Contains(line, l.pattern) {
			l.matched = true
			l.match <- line
		}
	}
	return len(p), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lineClient is a member on the line door.
type lineClient struct {
	t    *testing.T
	name string
	c    net.Conn
	r    *bufio.Reader
}

// dialLine connects to the line door, takes the greeting, sends name and
// waits for the relay's first notice, which says the member is in.
func dialLine(t *testing.T, addr, name string) *lineClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, emuIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	lc := &lineClient{t: t, name: name, c: c, r: bufio.NewReader(c)}
	if g := lc.line(); !strings.HasPrefix(g, "--- ") {
		t.Fatalf("%s: greeting %q; want a \"--- \" notice", name, g)
	}
	lc.send(name)
	if l := lc.line(); !strings.HasPrefix(l, "--- ") {
		t.Fatalf("%s: after the name, got %q; want a \"--- \" notice", name, l)
	}
	return lc
}

// line reads one line, without its end, within emuIOTimeout.
func (lc *lineClient) line() string {
	lc.t.Helper()
	lc.c.SetReadDeadline(time.Now().Add(emuIOTimeout))
	s, err := lc.r.ReadString('\n')
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("nothing within %v", emuIOTimeout)
		}
		lc.t.Fatalf("%s: read: %v (partial line %q)", lc.name, err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

func (lc *lineClient) send(s string) {
	lc.t.Helper()
	lc.c.SetWriteDeadline(time.Now().Add(emuIOTimeout))
	if _, err := lc.c.Write([]byte(s + "\n")); err != nil {
		lc.t.Fatalf("%s: write: %v", lc.name, err)
	}
}

// expect reads lines, skipping the relay's notices, until want. An error
// line or any other message fails the test.
func (lc *lineClient) expect(want string) {
	lc.t.Helper()
	for {
		l := lc.line()
		switch {
		case l == want:
			return
		case strings.HasPrefix(l, "--- "):
			continue
		default:
			lc.t.Fatalf("%s: got %q; want %q", lc.name, l, want)
		}
	}
}
