package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// tutWait bounds every wait of the tests against the tutorial programs:
// for a process to listen, for a line to appear, for a process to exit.
// It is a bound, not an expected duration.
const tutWait = 20 * time.Second

// TestTutorialPrograms runs the original Python programs of the tutorials
// against the roomrelay binary: messenger.py with `roomrelay peer` both
// ways, `roomrelay client` in tutorial mode with messenger_server.py (and
// an unmodified messenger_client.py beside it), and echo-client.py with
// `roomrelay echo`. The programs are looked for in $ROOMRELAY_SEEDS, or
// else in ../shared/seeds/code beside the repository; without them (or
// python3) the test is skipped, unless ROOMRELAY_SEEDS is set: then it
// fails.
func TestTutorialPrograms(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds roomrelay and runs the tutorial programs")
	}
	const how = "to run this test, put the tutorial programs (messenger.py, messenger/server/messenger_server.py, " +
		"messenger/client/messenger_client.py, echo-client.py) in a directory and run " +
		"ROOMRELAY_SEEDS=/that/directory go test -run TestTutorialPrograms -v ."
	missing := t.Skipf
	seeds := os.Getenv("ROOMRELAY_SEEDS")
	if seeds != "" {
		missing = t.Fatalf // asked for by name
	} else {
		seeds = filepath.Join("..", "shared", "seeds", "code")
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		missing("python3 is not on PATH: the original tutorial programs cannot run")
	}
	seeds, err = filepath.Abs(seeds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(seeds, "messenger.py")); err != nil {
		missing("the tutorial programs are not in %s (%v); %s", seeds, err, how)
	}
	bin := tutBuild(t)
	t.Run("messenger.py with peer", func(t *testing.T) { tutMessenger(t, python, seeds, bin) })
	t.Run("client with messenger_server.py", func(t *testing.T) { tutChatRoom(t, python, seeds, bin) })
	t.Run("echo-client.py with echo", func(t *testing.T) { tutEcho(t, python, seeds, bin) })
	t.Run("messenger_client.py with the relay", func(t *testing.T) { tutRelay(t, python, seeds, bin) })
	t.Run("the tutorial's chat through the relay", func(t *testing.T) { tutTranscript(t, python, seeds, bin) })
	t.Run("three messenger_client.py bursting", func(t *testing.T) { tutBurst(t, python, seeds, bin) })
}

// tutMessenger has messenger.py and `roomrelay peer` talk both ways.
func tutMessenger(t *testing.T, python, seeds, bin string) {
	pyPort, goPort := tutFreePort(t), tutFreePort(t)
	config := tutConfig(t, fmt.Sprintf(`{"peer": {"listen": "127.0.0.1:%d", "friend": "127.0.0.1:%d", "timeout": "5s"}}`,
		goPort, pyPort))
	rr := tutStart(t, "roomrelay peer", "", bin, "-config", config, "peer")
	rr.waitErr(t, "peer: listening on")

	py := tutStart(t, "messenger.py", seeds, python, "-u", "messenger.py")
	py.send(t, fmt.Sprintf("127.0.0.1\n%d\n127.0.0.1\n%d\n", pyPort, goPort))
	tutWaitPort(t, py, pyPort)

	// Python to Go. The é straddles bytes 15 and 16: messenger.py's own
	// receiver, which decodes 16-byte chunks one by one, would die on it;
	// the peer decodes the message whole.
	py.send(t, "0123456789abcdeé | grüße from python\n")
	rr.waitOut(t, `^\('127\.0\.0\.1', \d+\): 0123456789abcdeé \| grüße from python$`)

	// Go to Python, leading and trailing spaces stripped by messenger.py.
	tutWhole16(t, "  grüße from go | ok  ")
	rr.send(t, "  grüße from go | ok  \n")
	py.waitOut(t, `\('127\.0\.0\.1', \d+\): grüße from go \| ok$`)
}

// tutChatRoom has two `roomrelay client`s in tutorial mode and one
// unmodified messenger_client.py chat through the original
// messenger_server.py.
func tutChatRoom(t *testing.T, python, seeds, bin string) {
	serverPort := tutFreePort(t)
	server := tutStart(t, "messenger_server.py", filepath.Join(seeds, "messenger", "server"), python, "-u", "messenger_server.py")
	server.send(t, fmt.Sprintf("127.0.0.1\n%d\n", serverPort))
	tutWaitPort(t, server, serverPort)

	// Our clients listen before they register, so each is reachable as
	// soon as the server has added it. One message at a time is in flight
	// (the server delivers the newest first).
	clients := map[string]*tutProc{}
	for _, name := range []string{"alice", "bob"} {
		port := tutFreePort(t)
		config := tutConfig(t, fmt.Sprintf(`{"client": {"mode": "tutorial", "name": %q, "server": "127.0.0.1:%d",
			"listen": "127.0.0.1:%d", "exit_on_eof": false, "timeout": "5s"}}`, name, serverPort, port))
		clients[name] = tutStart(t, "roomrelay client "+name, "", bin, "-config", config, "client")
		server.waitOut(t, fmt.Sprintf(`adding user: %s, 127\.0\.0\.1, %d$`, name, port))
	}
	alice, bob := clients["alice"], clients["bob"]

	// messenger_client.py registers before it listens: wait for both.
	carolPort := tutFreePort(t)
	carol := tutStart(t, "messenger_client.py carol", filepath.Join(seeds, "messenger", "client"), python, "-u", "messenger_client.py")
	carol.send(t, fmt.Sprintf("127.0.0.1\n%d\n127.0.0.1\n%d\ncarol\n", carolPort, serverPort))
	server.waitOut(t, fmt.Sprintf(`adding user: carol, 127\.0\.0\.1, %d$`, carolPort))
	tutWaitPort(t, carol, carolPort)

	tutWhole16(t, "from:alice|hi grüße", "alice: hi grüße")
	alice.send(t, "hi grüße\n")
	bob.waitOut(t, `^alice: hi grüße$`)
	carol.waitOut(t, `alice: hi grüße$`)

	carol.send(t, "hi from carol\n")
	alice.waitOut(t, `^carol: hi from carol$`)
	bob.waitOut(t, `^carol: hi from carol$`)

	bob.send(t, "  bob here\n")
	alice.waitOut(t, `^bob:   bob here$`)
	carol.waitOut(t, `bob:   bob here$`)

	// Nobody gets their own messages back.
	want := []string{"carol: hi from carol", "bob:   bob here"}
	if got := alice.stdout.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alice printed %q, want %q", got, want)
	}
}

// tutRelay has two unmodified messenger_client.py and one nc-style user of
// the line door chat through the relay's legacy door, with a connection
// that never sends anything held open all the while.
func tutRelay(t *testing.T, python, seeds, bin string) {
	linePort, legacyPort := tutFreePort(t), tutFreePort(t)
	config := tutConfig(t, fmt.Sprintf(`{"relay": {"listen": {"line": "127.0.0.1:%d", "legacy": "127.0.0.1:%d", "udp": "", "irc": "", "http": ""}}}`,
		linePort, legacyPort))
	relay := tutStart(t, "roomrelay relay", "", bin, "-config", config, "relay")
	relay.waitErr(t, `legacy door listening on`)
	legacyAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(legacyPort))

	silent, err := net.Dial("tcp", legacyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	nc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(linePort)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ncOut := newTutOutput()
	go io.Copy(ncOut, nc)
	fmt.Fprintf(nc, "nc\n")
	ncProc := &tutProc{name: "nc", stdout: ncOut, done: make(chan struct{})}

	// The tutorial's own names, with their spaces.
	py := map[string]*tutProc{}
	for _, name := range []string{"first client", "second client"} {
		port := tutFreePort(t)
		p := tutStart(t, "messenger_client.py "+name, filepath.Join(seeds, "messenger", "client"), python, "-u", "messenger_client.py")
		p.send(t, fmt.Sprintf("localhost\n%d\nlocalhost\n%d\n%s\n", port, legacyPort, name))
		relay.waitErr(t, fmt.Sprintf(`%s registered at 127\.0\.0\.1:%d`, name, port))
		tutWaitPort(t, p, port)
		py[name] = p
	}
	first, second := py["first client"], py["second client"]
	ncProc.waitOut(t, `^--- second client joined lobby$`)

	tutWhole16(t, "first client: hi | there, ünï", "nc: nc says grüße", "second client: bye 😀")
	first.send(t, "hi | there, ünï\n")
	second.waitOut(t, `first client: hi \| there, ünï$`)
	ncProc.waitOut(t, `^first client: hi \| there, ünï$`)
	fmt.Fprintf(nc, "nc says grüße\n")
	first.waitOut(t, `nc: nc says grüße$`)
	second.waitOut(t, `nc: nc says grüße$`)
	second.send(t, "bye 😀\n")
	first.waitOut(t, `second client: bye 😀$`)
	ncProc.waitOut(t, `^second client: bye 😀$`)

	// Each saw the others' messages exactly once, in order.
	messages := func(p *tutProc) []string {
		var out []string
		for _, l := range p.stdout.lines() {
			l = strings.TrimPrefix(l, "host: port: server host: server port: user name: ")
			if strings.Contains(l, ": ") && !strings.HasPrefix(l, "---") {
				out = append(out, l)
			}
		}
		return out
	}
	for p, want := range map[*tutProc][]string{
		first:  {"nc: nc says grüße", "second client: bye 😀"},
		second: {"first client: hi | there, ünï", "nc: nc says grüße"},
		ncProc: {"first client: hi | there, ünï", "second client: bye 😀"},
	} {
		if got := messages(p); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s saw %q, want %q", p.name, got, want)
		}
	}

	// A registration naming another host is refused and logged.
	c, err := net.Dial("tcp", legacyAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("connect_request|mallory|192.0.2.7|8881"))
	c.Close()
	relay.waitErr(t, `connect_request for mallory refused: host 192\.0\.2\.7 is not the address 127\.0\.0\.1`)
}

// tutTranscript replays the chat of the tutorial's own transcript
// between two unmodified messenger_client.py, named as there, through the
// legacy door of the relay run with the shipped config.json (only its
// addresses changed): each prints what it printed with the tutorial's
// messenger_server.py.
func tutTranscript(t *testing.T, python, seeds, bin string) {
	relay, legacyPort := tutShippedRelay(t, bin)
	first := tutLegacyClient(t, python, seeds, relay, legacyPort, "first client")
	second := tutLegacyClient(t, python, seeds, relay, legacyPort, "second client")

	second.send(t, "HI!\n")
	first.waitOut(t, `^second client: HI!$`)
	first.send(t, "Hi! Love this chat room!\n")
	second.waitOut(t, `^first client: Hi! Love this chat room!$`)
	second.send(t, "Yeah! It's so simple. \n")
	first.waitOut(t, `^second client: Yeah! It's so simple\.$`)
	first.send(t, "Python is the best!\n")
	second.waitOut(t, `^first client: Python is the best!$`)

	for p, want := range map[*tutProc][]string{
		first:  {"second client: HI!", "second client: Yeah! It's so simple."},
		second: {"first client: Hi! Love this chat room!", "first client: Python is the best!"},
	} {
		if diff := cmp.Diff(want, tutPrinted(p)); diff != "" {
			t.Errorf("%s printed (-want +got):\n%s", p.name, diff)
		}
	}
}

// tutBurst has three unmodified messenger_client.py on one host send 50
// messages each, interleaved with no pause, through the legacy door with
// the shipped config.json: each message is a connection of its own, 150
// at once from one address. Every one of the 300 deliveries must arrive,
// each sender's in the order sent, and the relay must drop nothing.
func tutBurst(t *testing.T, python, seeds, bin string) {
	const count = 50
	relay, legacyPort := tutShippedRelay(t, bin)
	names := []string{"first client", "second client", "third client"}
	clients := make([]*tutProc, len(names))
	for i, name := range names {
		clients[i] = tutLegacyClient(t, python, seeds, relay, legacyPort, name)
	}
	for k := range count {
		for i, c := range clients {
			c.send(t, fmt.Sprintf("message %02d from %d\n", k, i))
		}
	}
	for i, c := range clients {
		c.waitLines(t, 2*count, func(l string) bool { return strings.Contains(l, ": message ") })
		// What it printed, by sender, must be every message of the others
		// in order.
		got := map[string][]string{}
		for _, l := range tutPrinted(c) {
			from, text, _ := strings.Cut(l, ": ")
			got[from] = append(got[from], text)
		}
		want := map[string][]string{}
		for j, name := range names {
			for k := range count {
				if j != i {
					want[name] = append(want[name], fmt.Sprintf("message %02d from %d", k, j))
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s printed, by sender (-want +got):\n%s", c.name, diff)
		}
	}
	if l := relay.stderr.String(); strings.Contains(l, "dropped") || strings.Contains(l, "refused") {
		t.Errorf("the relay dropped or refused something:\n%s", l)
	}
}

// tutShippedRelay starts the relay with the shipped config.json, its
// legacy door on a free port, and returns it with that port.
func tutShippedRelay(t *testing.T, bin string) (*tutProc, int) {
	t.Helper()
	port := tutFreePort(t)
	config := shippedConfig(t, map[string]string{"legacy": net.JoinHostPort("127.0.0.1", strconv.Itoa(port))})
	relay := tutStart(t, "roomrelay relay", "", bin, "-config", config, "relay")
	relay.waitErr(t, `legacy door listening on`)
	return relay, port
}

// tutLegacyClient starts an unmodified messenger_client.py named name,
// answering its prompts as the tutorial does (localhost for both hosts),
// and waits until the relay has registered it and it listens.
func tutLegacyClient(t *testing.T, python, seeds string, relay *tutProc, legacyPort int, name string) *tutProc {
	t.Helper()
	port := tutFreePort(t)
	p := tutStart(t, "messenger_client.py "+name, filepath.Join(seeds, "messenger", "client"), python, "-u", "messenger_client.py")
	p.send(t, fmt.Sprintf("localhost\n%d\nlocalhost\n%d\n%s\n", port, legacyPort, name))
	relay.waitErr(t, fmt.Sprintf(`%s registered at 127\.0\.0\.1:%d`, regexp.QuoteMeta(name), port))
	tutWaitPort(t, p, port)
	return p
}

// tutPrinted returns the messages a messenger_client.py printed: its
// lines but for its prompts and the empty message of tutWaitPort's probe.
func tutPrinted(p *tutProc) []string {
	var out []string
	for _, l := range p.stdout.lines() {
		if l = strings.TrimPrefix(l, "host: port: server host: server port: user name: "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// tutEcho has echo-client.py, whose server address is fixed at
// 127.0.0.1:65432, use `roomrelay echo`, twice at once.
func tutEcho(t *testing.T, python, seeds, bin string) {
	const addr = "127.0.0.1:65432"
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("echo-client.py needs %s, which is taken: %v", addr, err)
	}
	ln.Close()
	config := tutConfig(t, `{"echo": {"listen": "`+addr+`", "idle": "10s", "write": "5s"}}`)
	rr := tutStart(t, "roomrelay echo", "", bin, "-config", config, "echo")
	if l := rr.waitErr(t, "echo: listening on|address already in use"); strings.Contains(l, "in use") {
		t.Skipf("%s was taken meanwhile: %s", addr, l)
	}

	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(t.Context(), tutWait)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "-u", "echo-client.py")
			cmd.Dir = seeds
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "Received b'Hello, world'\n" {
				t.Errorf("echo-client.py #%d: %v, output %q; want \"Received b'Hello, world'\\n\"", i, err, out)
			}
		}()
	}
	wg.Wait()
	rr.waitErr(t, `Connected by \('127\.0\.0\.1', \d+\)$`)

	// SIGINT stops it cleanly.
	if err := rr.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rr.done:
		if rr.err != nil {
			t.Errorf("roomrelay echo exited with %v after SIGINT, want status 0", rr.err)
		}
	case <-time.After(tutWait):
		t.Errorf("roomrelay echo did not exit within %v of SIGINT", tutWait)
	}
	if n := strings.Count(rr.stderr.String(), "Connected by ('127.0.0.1', "); n != 2 {
		t.Errorf("roomrelay echo logged %d connections, want 2:\n%s", n, rr.stderr.String())
	}
}

// tutWhole16 checks that no multi-byte character of a payload falls
// across a 16-byte boundary. The tutorial programs decode each recv(16)
// on its own and their receiving thread dies on such a character; the
// payloads that reach them are chosen to avoid it.
func tutWhole16(t *testing.T, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		for i := range p { // i is the start of each character
			if _, n := utf8.DecodeRuneInString(p[i:]); i/16 != (i+n-1)/16 {
				t.Fatalf("test payload %q has a character across bytes %d and %d", p, i, i+n-1)
			}
		}
	}
}

// tutBuild builds roomrelay for this machine and returns the binary's path.
func tutBuild(t *testing.T) string { return buildRoomrelay(t, "native", nil) }

// tutConfig writes a config file and returns its path. Keys it leaves out
// take their defaults.
func tutConfig(t *testing.T, json string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tutFreePort returns a loopback port that was free a moment ago.
//
// It is drawn below the system's ephemeral range (Linux's
// ip_local_port_range, 32768 on), where the kernel picks the local ports
// of outgoing connections and of listeners on port 0: a port from there
// could be taken by another test's connection before the program under
// test binds it. Each port is given out once per test binary, and UDP's
// is checked too (a door may take either).
func tutFreePort(t *testing.T) int {
	t.Helper()
	tutPorts.Lock()
	defer tutPorts.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if tutPorts.given[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		pc.Close()
		tutPorts.given[port] = true
		return port
	}
	t.Fatal("no free loopback port from 20000 to 31999")
	return 0
}

// tutPorts are the ports tutFreePort gave out.
var tutPorts = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// tutWaitPort waits until p accepts connections on a loopback port. The
// probe connection carries nothing and closes cleanly: the tutorial
// programs take it for an empty message.
func tutWaitPort(t *testing.T, p *tutProc, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(tutWait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before listening on %s", p.name, p.err, addr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening on %s after %v: %v", p.name, addr, tutWait, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// tutProc is a program under test, killed when the test ends.
type tutProc struct {
	name           string
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *tutOutput
	done           chan struct{} // closed when the process has exited
	err            error         // Wait's result, once done is closed
}

// tutStart starts a program in dir ("" for the current directory), with
// Python's output unbuffered and in UTF-8.
func tutStart(t *testing.T, name, dir string, args ...string) *tutProc {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONIOENCODING=utf-8")
	p := &tutProc{name: name, cmd: cmd, stdout: newTutOutput(), stderr: newTutOutput(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(tutWait):
			t.Errorf("%s did not exit when killed", name)
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.stdout, name, p.stderr)
		}
	})
	return p
}

// send writes to the program's input.
func (p *tutProc) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, s); err != nil {
		t.Fatalf("write to %s: %v", p.name, err)
	}
}

// waitOut waits for a line of standard output to match the regular
// expression re, and returns it.
func (p *tutProc) waitOut(t *testing.T, re string) string {
	t.Helper()
	return p.wait(t, p.stdout, "output", re)
}

// waitErr is waitOut for standard error, where roomrelay logs.
func (p *tutProc) waitErr(t *testing.T, re string) string {
	t.Helper()
	return p.wait(t, p.stderr, "log", re)
}

func (p *tutProc) wait(t *testing.T, o *tutOutput, what, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.NewTimer(tutWait)
	defer timeout.Stop()
	for {
		lines, changed := o.snapshot()
		for _, l := range lines {
			if rx.MatchString(l) {
				return l
			}
		}
		select {
		case <-changed:
		case <-p.done:
			if lines, _ := o.snapshot(); !tutAny(lines, rx) {
				t.Fatalf("%s exited (%v) with no %s line matching %s", p.name, p.err, what, re)
			}
		case <-timeout.C:
			t.Fatalf("no %s line of %s matches %s after %v", what, p.name, re, tutWait)
		}
	}
}

// waitLines waits until n lines of standard output satisfy ok.
func (p *tutProc) waitLines(t *testing.T, n int, ok func(string) bool) {
	t.Helper()
	timeout := time.NewTimer(tutWait)
	defer timeout.Stop()
	for {
		lines, changed := p.stdout.snapshot()
		got := 0
		for _, l := range lines {
			if ok(l) {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-p.done:
			t.Fatalf("%s exited (%v) after %d of %d lines", p.name, p.err, got, n)
		case <-timeout.C:
			t.Fatalf("%s printed %d of %d lines within %v", p.name, got, n, tutWait)
		}
	}
}

func tutAny(lines []string, rx *regexp.Regexp) bool {
	for _, l := range lines {
		if rx.MatchString(l) {
			return true
		}
	}
	return false
}

// tutOutput collects a program's output and tells waiters when it grows.
type tutOutput struct {
	mu      sync.Mutex
	b       []byte
	changed chan struct{} // closed and replaced on every write
}

func newTutOutput() *tutOutput { return &tutOutput{changed: make(chan struct{})} }

func (o *tutOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b = append(o.b, p...)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

// snapshot returns the complete lines so far, and a channel closed at the
// next write.
func (o *tutOutput) snapshot() ([]string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := string(o.b)
	var lines []string
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		lines = strings.Split(s[:i], "\n")
	}
	return lines, o.changed
}

// lines returns the complete lines so far.
func (o *tutOutput) lines() []string {
	lines, _ := o.snapshot()
	return lines
}

func (o *tutOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.b)
}
