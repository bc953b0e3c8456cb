package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"roomrelay/proto"
)

// TestSignals runs the built relay as a service manager would: SIGHUP
// reloads the config without dropping a member (and keeps the running
// config when the new file is bad), SIGTERM ends it with exit 0 after
// telling the member.
func TestSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	bin := tutBuild(t)
	linePort := tutFreePort(t)
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":"127.0.0.1:%d","legacy":"","udp":"","irc":"","http":""}}}`, linePort))
	relay := tutStart(t, "roomrelay relay", "", bin, "-config", config, "relay")
	relay.waitErr(t, `info: line door listening on`)

	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(linePort)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lr := proto.NewLineReader(c, 4096)
	until := func(prefix string) string {
		t.Helper()
		for {
			c.SetReadDeadline(time.Now().Add(tutWait))
			l, err := lr.ReadLine()
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(string(l), prefix) {
				return string(l)
			}
		}
	}
	fmt.Fprintf(c, "alice\n")
	until("--- you are alice")

	// A new door and new limits, taken on SIGHUP.
	legacyPort := tutFreePort(t)
	os.WriteFile(config, []byte(fmt.Sprintf(`{"relay":{"listen":{"line":"127.0.0.1:%d","legacy":"127.0.0.1:%d","udp":"","irc":"","http":""},
		"limits":{"max_line_bytes":128}}}`, linePort, legacyPort)), 0o644)
	relay.cmd.Process.Signal(syscall.SIGHUP)
	relay.waitErr(t, `info: config reloaded: limits and timeouts in force; legacy door re-bound at 127\.0\.0\.1:`+strconv.Itoa(legacyPort))
	fmt.Fprintf(c, "%s\n", strings.Repeat("x", 200))
	if l := until("!!!"); !strings.Contains(l, "(at most 128); not sent") {
		t.Errorf("after the reload alice was told %q, want the new line limit", l)
	}

	os.WriteFile(config, []byte(`{"relay":`), 0o644)
	relay.cmd.Process.Signal(syscall.SIGHUP)
	relay.waitErr(t, `error: reload: keeping the running config: config .*: not valid JSON`)
	fmt.Fprintf(c, "/ping still\n")
	until("--- pong still")

	relay.cmd.Process.Signal(syscall.SIGTERM)
	if l := until("!!!"); l != "!!! disconnected: relay shutting down" {
		t.Errorf("alice told %q", l)
	}
	select {
	case <-relay.done:
		if relay.err != nil {
			t.Errorf("relay exited with %v, want status 0", relay.err)
		}
	case <-time.After(tutWait):
		t.Fatal("relay did not exit after SIGTERM")
	}
}

// TestBrokenLogPipe runs the built relay with its log on a pipe whose
// reader goes away, as under `roomrelay relay 2>&1 | logger` when logger
// ends: the relay's next log line (a member leaving) is lost, and the
// relay goes on serving rather than dying of SIGPIPE.
func TestBrokenLogPipe(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	bin := tutBuild(t)
	port := tutFreePort(t)
	config := tutConfig(t, fmt.Sprintf(`{"relay":{"listen":{"line":"127.0.0.1:%d","legacy":"","udp":"","irc":"","http":""}}}`, port))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(bin, "-config", config, "relay")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatal(err)
	}
	w.Close() // the relay holds the only write end, r the only read end
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if err := <-done; t.Failed() {
			t.Logf("the relay ended: %v", err) // "signal: broken pipe" when it died of it
		}
	})

	// Read the log until the relay runs, then close the pipe's read end.
	r.SetReadDeadline(time.Now().Add(tutWait))
	log := bufio.NewScanner(r)
	for !strings.HasSuffix(log.Text(), " running") {
		if !log.Scan() {
			t.Fatalf("the relay's log ended before it ran: %v", log.Err())
		}
	}
	r.Close()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	alice := dialLine(t, addr, "alice")
	bob := dialLine(t, addr, "bob")
	// The relay logs alice's leaving before it tells her bye.
	alice.send("/quit")
	for l := alice.line(); l != "--- bye"; l = alice.line() {
	}
	carol := dialLine(t, addr, "carol")
	carol.send("still here?")
	bob.expect("carol: still here?")
	select {
	case err := <-done:
		t.Fatalf("the relay exited: %v", err)
	default:
	}
}
