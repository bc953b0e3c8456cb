//go:build !minimal && !notls

package relay

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"roomrelay/proto"
	"roomrelay/relay/cert"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
)

// tlsConfig is testConfig with the TLS doors on loopback ports, and a
// certificate made in dir.
func tlsConfig(dir string) config.Config {
	cfg := testConfig()
	cfg.Listen.LineTLS = "127.0.0.1:0"
	cfg.TLS = config.TLS{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), Generate: true}
	return cfg
}

// pinned is a TLS client config that takes the certificate with the
// fingerprint fp (as cert.Fingerprint gives it) and no other.
func pinned(fp string) *tls.Config {
	want, err := config.ParseFingerprint(fp)
	if err != nil {
		panic(err)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // the pin below stands in for the authorities
		VerifyConnection: func(cs tls.ConnectionState) error {
			if sha256.Sum256(cs.PeerCertificates[0].Raw) != want {
				return errors.New("not the pinned certificate")
			}
			return nil
		},
	}
}

// fingerprintOf returns the fingerprint of the certificate file of cfg.
func fingerprintOf(t testing.TB, cfg config.Config) string {
	t.Helper()
	der, err := cert.Leaf(cfg.TLS.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return cert.Fingerprint(der)
}

// dialTLS connects to door over TLS, pinning the certificate of cfg, and
// returns the connection once its handshake is over.
func dialTLS(t testing.TB, s *Server, door string, cfg config.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", s.Addr(door).String(), pinned(fingerprintOf(t, cfg)))
	if err != nil {
		t.Fatalf("%s door over TLS: %v", door, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// greeted is a line-door client on c, past the greeting.
func greeted(t testing.TB, c net.Conn) *tconn {
	t.Helper()
	tc := &tconn{t: t, c: c, lr: proto.NewLineReader(c, 1<<16)}
	if g := tc.line(); !strings.HasPrefix(g, "--- welcome") {
		t.Fatalf("greeting %q", g)
	}
	return tc
}

// A member over TLS, its certificate pinned, and a plain member chat in
// one room; the relay logs the certificate's fingerprint.
func TestTLSChat(t *testing.T) {
	var log testkit.Buffer
	cfg := tlsConfig(t.TempDir())
	s := startServerLog(t, cfg, log.Logf)
	fp := fingerprintOf(t, cfg)
	if !log.Has("fingerprint " + fp) {
		t.Errorf("the log does not give the fingerprint %s:\n%s", fp, log.String())
	}
	alice := greeted(t, dialTLS(t, s, "line_tls", cfg)).enter("alice")
	bob := join(t, s, "bob")
	alice.send("over TLS")
	if got := bob.messages(1); got[0] != "alice: over TLS" {
		t.Errorf("bob got %q", got)
	}
	bob.send("in the clear")
	if got := alice.messages(1); got[0] != "bob: in the clear" {
		t.Errorf("alice got %q", got)
	}
	// A burst arrives whole and in order, batched into few records.
	var burst, want []string
	for i := range 40 {
		burst = append(burst, fmt.Sprintf("line %d", i))
		want = append(want, fmt.Sprintf("bob: line %d", i))
	}
	bob.send(burst...)
	if diff := cmp.Diff(want, alice.messages(len(want))); diff != "" {
		t.Errorf("alice got (-want +got):\n%s", diff)
	}
	if st := alice.c.(*tls.Conn).ConnectionState(); st.Version < tls.VersionTLS12 {
		t.Errorf("TLS version %x", st.Version)
	}
}

// The door speaks TLS 1.2 and later only.
func TestTLSVersions(t *testing.T) {
	cfg := tlsConfig(t.TempDir())
	s := startServer(t, cfg)
	tc := pinned(fingerprintOf(t, cfg))
	tc.MinVersion, tc.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr("line_tls").String(), tc)
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 client was served")
	}
	tc.MinVersion, tc.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr("line_tls").String(), tc)
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	c.Close()
}

// The certificate made at the first start is kept, its key readable by
// its owner only, and served again after a restart.
func TestTLSCertificateKept(t *testing.T) {
	dir := t.TempDir()
	cfg := tlsConfig(dir)
	served := func() (string, string) {
		var log testkit.Buffer
		s := New(cfg, log.Logf)
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		defer shutdownNow(t, s)
		c := dialTLS(t, s, "line_tls", cfg)
		defer c.Close()
		return cert.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw), log.String()
	}
	first, log := served()
	if !strings.Contains(log, "made a self-signed certificate") || !strings.Contains(log, first) {
		t.Errorf("first start: the log does not say the certificate was made, with its fingerprint %s:\n%s", first, log)
	}
	fi, err := os.Stat(cfg.TLS.Key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	again, log := served()
	if again != first {
		t.Errorf("after a restart the certificate is %s, was %s", again, first)
	}
	if strings.Contains(log, "made a self-signed") || !strings.Contains(log, "fingerprint "+first) {
		t.Errorf("second start: want the kept certificate's fingerprint logged, none made:\n%s", log)
	}
}

// A certificate that cannot be used stops the relay from starting, with
// an error that names the key at fault; the plain doors do not open.
func TestTLSBadCertificate(t *testing.T) {
	other := tlsConfig(t.TempDir())
	if _, _, err := cert.Open(other.TLS); err != nil { // a pair of its own
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		set  func(dir string, c *config.TLS)
		want []string
	}{
		{"missing, not generated", func(dir string, c *config.TLS) { c.Generate = false },
			[]string{"line_tls door: relay.tls.cert: ", "no such file", "relay.tls.generate"}},
		{"half a pair", func(dir string, c *config.TLS) { os.WriteFile(c.Key, []byte("x"), 0o600) },
			[]string{"relay.tls.cert: ", "no such file", "only when neither file exists"}},
		{"not PEM", func(dir string, c *config.TLS) {
			os.WriteFile(c.Cert, []byte("hello"), 0o644)
			os.WriteFile(c.Key, []byte("hello"), 0o600)
		}, []string{"relay.tls.cert: ", "holds no PEM CERTIFICATE block"}},
		{"bad key", func(dir string, c *config.TLS) {
			c.Cert = other.TLS.Cert
			os.WriteFile(c.Key, []byte("hello"), 0o600)
		}, []string{"relay.tls.key: "}},
		{"mismatched", func(dir string, c *config.TLS) {
			mine := tlsConfig(dir)
			if _, _, err := cert.Open(mine.TLS); err != nil {
				panic(err)
			}
			c.Cert = other.TLS.Cert
		}, []string{"relay.tls.key: ", "is not the key of relay.tls.cert " + other.TLS.Cert}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := tlsConfig(dir)
			cfg.Listen.HTTPS = "127.0.0.1:0"
			tc.set(dir, &cfg.TLS)
			s := New(cfg, t.Logf)
			err := s.Start()
			if err == nil {
				shutdownNow(t, s)
				t.Fatal("started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), " door: relay.tls."); n != 1 {
				t.Errorf("error said %d times, want once (line_tls and https share the certificate): %q", n, err)
			}
			if s.Addr("line") != nil {
				t.Error("the line door listens")
			}
		})
	}
}

// A client that opens a TCP connection to a TLS door and never makes the
// handshake holds up neither the door nor anyone else, and is dropped at
// the handshake deadline.
func TestTLSHandshakeDeadline(t *testing.T) {
	t.Run("others served meanwhile", func(t *testing.T) {
		cfg := tlsConfig(t.TempDir())
		cfg.Listen.IRCTLS = "127.0.0.1:0"
		cfg.Listen.IRC = "127.0.0.1:0"
		s := startServer(t, cfg)
		for _, door := range []string{"line_tls", "irc_tls"} {
			silent, err := net.DialTimeout("tcp", s.Addr(door).String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Close() // open still as the relay shuts down
		}
		alice := greeted(t, dialTLS(t, s, "line_tls", cfg)).enter("alice")
		bob := join(t, s, "bob")
		bob.send("still served")
		if got := alice.messages(1); got[0] != "bob: still served" {
			t.Errorf("alice got %q", got)
		}
	})
	t.Run("dropped", func(t *testing.T) {
		var log testkit.Buffer
		cfg := tlsConfig(t.TempDir())
		cfg.Timeouts.Handshake = config.Duration(300 * time.Millisecond)
		s := startServerLog(t, cfg, log.Logf)
		silent, err := net.DialTimeout("tcp", s.Addr("line_tls").String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		silent.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := silent.Read(make([]byte, 64))
		if !errors.Is(err, io.EOF) {
			t.Fatalf("read %d bytes, %v; want the relay to close the connection", n, err)
		}
		// Named by its door, the TLS one.
		waitFor(t, 5*time.Second, "the log line", func() bool {
			return slices.ContainsFunc(log.Lines(), func(l string) bool {
				return strings.HasPrefix(l, "info: line_tls door: 127.0.0.1:") && strings.Contains(l, ": no TLS handshake within relay.timeouts.handshake")
			})
		})
		waitFor(t, 5*time.Second, "the connection to be released", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.conns) == 0
		})
	})
}

// Admission applies to a TLS door as to a plain one: a client over the
// limit is told why over TLS.
func TestTLSRefused(t *testing.T) {
	cfg := tlsConfig(t.TempDir())
	cfg.Limits.MaxClients = 1
	s := startServer(t, cfg)
	greeted(t, dialTLS(t, s, "line_tls", cfg)).enter("alice")
	c := dialTLS(t, s, "line_tls", cfg)
	tc := &tconn{t: t, c: c, lr: proto.NewLineReader(c, 1<<16)}
	if got := tc.line(); got != "!!! refused: relay full (1 clients)" {
		t.Errorf("got %q", got)
	}
	if st := s.Stats(); st.Refused != 1 {
		t.Errorf("refused %d, want 1", st.Refused)
	}
}

// The IRC door over TLS: an IRC client chats with a line member.
func TestTLSIRC(t *testing.T) {
	cfg := tlsConfig(t.TempDir())
	cfg.Listen.IRCTLS = "127.0.0.1:0"
	s := startServer(t, cfg)
	irc := ircGreeted(t, dialTLS(t, s, "irc_tls", cfg))
	irc.register("ivy", false)
	bob := join(t, s, "bob")
	irc.send("PRIVMSG #lobby :hello over TLS")
	if got := bob.messages(1); got[0] != "ivy: hello over TLS" {
		t.Errorf("bob got %q", got)
	}
	bob.send("hi ivy")
	irc.until("bob's message", func(l string) bool { return l == ":bob!bob@roomrelay PRIVMSG #lobby :hi ivy" })
}

// The HTTPS door serves the page and the API of the HTTP door.
func TestTLSHTTPS(t *testing.T) {
	cfg := tlsConfig(t.TempDir())
	cfg.Listen.HTTPS = "127.0.0.1:0"
	s := startServer(t, cfg)
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: pinned(fingerprintOf(t, cfg))}
	t.Cleanup(tr.CloseIdleConnections)
	b := &browser{t: t, base: "https://" + s.Addr("https").String(), c: &http.Client{Transport: tr, Timeout: 10 * time.Second}}

	resp, err := b.c.Get(b.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `<script src="app.js"`) {
		t.Fatalf("GET /: %s %.200q", resp.Status, page)
	}
	if resp.TLS == nil {
		t.Fatal("GET / was not over TLS")
	}

	b.join("bea")
	st := b.events("")
	bob := join(t, s, "bob")
	bob.send("to the browser")
	for {
		_, e := st.next()
		if e.Kind == proto.KindMsg {
			if e.From != "bob" || e.Text != "to the browser" {
				t.Errorf("bea got %+v", e)
			}
			break
		}
	}
	b.say("from the browser")
	if got := bob.messages(1); got[0] != "bea: from the browser" {
		t.Errorf("bob got %q", got)
	}
}

// openssl s_client, from Debian's openssl package, chats over the line
// door's TLS with the generated certificate, with a plain member: what
// one says the other reads.
func TestTLSOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed, in CI: .ci/run installs it (apt-get install openssl)")
		}
		t.Skip("openssl is not installed (apt-get install openssl): the test with openssl s_client is skipped")
	}
	cfg := tlsConfig(t.TempDir())
	s := startServer(t, cfg)
	cmd := exec.Command(openssl, "s_client", "-quiet", "-connect", s.Addr("line_tls").String())
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errs testkit.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("openssl said on stderr: %q", errs.String())
	})
	waitFor(t, 10*time.Second, "openssl to be greeted", func() bool { return out.Has("--- welcome to roomrelay") })
	fmt.Fprintln(in, "sally")
	waitFor(t, 10*time.Second, "openssl's welcome", func() bool { return out.Has("--- you are sally in lobby") })
	bob := join(t, s, "bob")
	waitFor(t, 10*time.Second, "bob's arrival at openssl", func() bool { return out.Has("--- bob joined lobby") })
	fmt.Fprintln(in, "hello from openssl")
	if got := bob.messages(1); got[0] != "sally: hello from openssl" {
		t.Errorf("bob got %q", got)
	}
	bob.send("hello, openssl")
	waitFor(t, 10*time.Second, "bob's message at openssl", func() bool { return out.Has("bob: hello, openssl") })
	// What openssl was shown is the certificate the relay made.
	if !strings.Contains(errs.String(), "CN = roomrelay") {
		t.Errorf("openssl did not see the relay's certificate: %q", errs.String())
	}
	fmt.Fprintln(in, "/quit")
	waitFor(t, 10*time.Second, "openssl's goodbye", func() bool { return out.Has("--- bye") })
	in.Close()
}

// A reload reads the certificate again: new connections get the new one,
// members already connected stay; a certificate that cannot be read
// keeps the one in use.
func TestTLSReload(t *testing.T) {
	cfg := tlsConfig(t.TempDir())
	s := startServer(t, cfg)
	old := fingerprintOf(t, cfg)
	alice := greeted(t, dialTLS(t, s, "line_tls", cfg)).enter("alice")

	os.Remove(cfg.TLS.Cert)
	os.Remove(cfg.TLS.Key)
	notes := s.Reload(cfg) // generates a new pair
	now := fingerprintOf(t, cfg)
	if now == old {
		t.Fatal("no new certificate made")
	}
	if !strings.Contains(strings.Join(notes, "; "), "TLS certificate replaced ("+now+")") {
		t.Errorf("reload notes %q", notes)
	}
	c := dialTLS(t, s, "line_tls", cfg) // pinned to the new one
	if got := cert.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw); got != now {
		t.Errorf("served %s, want %s", got, now)
	}
	bob := greeted(t, c).enter("bob")
	bob.send("after the reload")
	if got := alice.messages(1); got[0] != "bob: after the reload" {
		t.Errorf("alice got %q", got)
	}

	bad := cfg
	bad.TLS.Generate = false
	bad.TLS.Cert = filepath.Join(t.TempDir(), "none.pem")
	notes = s.Reload(bad)
	if !strings.Contains(strings.Join(notes, "; "), "line_tls door keeps its certificate") {
		t.Errorf("reload notes %q", notes)
	}
	c = dialTLS(t, s, "line_tls", cfg)
	if got := cert.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw); got != now {
		t.Errorf("after a failed reload served %s, want %s", got, now)
	}
}

// The page works over HTTPS, same-origin: in headless Chromium (which
// takes the self-signed certificate) a browser and a line member chat.
func TestBrowserHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: runs Chromium")
	}
	cfg := tlsConfig(t.TempDir())
	cfg.Listen.HTTPS = "127.0.0.1:0"
	s := startServer(t, cfg)
	wd := startChrome(t)
	nc := join(t, s, "nc")
	browserChat(t, wd, nc, "https://"+s.Addr("https").String()+"/", "hello over https")
}

// A TLS member that stops reading never stalls the room: once its socket
// is full it is dropped, as too slow when its queue fills first, or when
// a write makes no progress for timeouts.write (which ends a TLS
// session), while the others go on.
func TestTLSFrozenMember(t *testing.T) {
	for _, tc := range []struct {
		name    string
		history int
		write   time.Duration
		whys    []string
	}{
		{"history", 64, 10 * time.Second, []string{"too slow"}},
		// A history longer than all the test sends: only the write
		// deadline can cut it, either as the TLS write cut short
		// ("write failed") or as the session's deadline ("too slow"),
		// whichever sees it first.
		{"write deadline", 32768, 100 * time.Millisecond, []string{"write failed", "too slow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tlsConfig(t.TempDir())
			cfg.Limits.Queue, cfg.Limits.History = 64, tc.history
			cfg.Limits.HistoryBytes = 0 // the history in events alone
			cfg.Timeouts.Write = config.Duration(tc.write)
			s := startServer(t, cfg)
			greeted(t, dialTLS(t, s, "line_tls", cfg)).enter("frozen") // and never read again
			talker := join(t, s, "talker")
			listener := join(t, s, "listener")
			text := strings.Repeat("x", 900)
			// Bursts well within the queue, each caught up by the others
			// before the next: only the frozen member falls behind.
			// Loopback buffers hold some megabytes; 20 000 lines of 900
			// bytes are more.
			for k := 0; k < 20000 && s.lookup("frozen") != nil; k += 20 {
				for i := range 20 {
					talker.send(fmt.Sprint(k+i, " ", text))
				}
				talker.send("/ping " + fmt.Sprint(k))
				talker.until("the pong", func(l string) bool { return l == "--- pong "+fmt.Sprint(k) })
				if got := listener.messages(20); got[19] != fmt.Sprintf("talker: %d %s", k+19, text) {
					t.Fatalf("listener got %.60q", got[19])
				}
			}
			waitFor(t, 10*time.Second, "frozen to be dropped", func() bool { return s.lookup("frozen") == nil })
			d := s.Stats().Disconnects
			n := 0
			for _, why := range tc.whys {
				n += int(d[why])
			}
			if n != 1 {
				t.Errorf("disconnects %v, want frozen's: one of %q", d, tc.whys)
			}
		})
	}
}

// preread is a connection whose next reads return pre first: bytes the
// test took off the wire to learn that a write had begun.
type preread struct {
	net.Conn
	pre []byte
}

func (c *preread) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// pipeTLS is a line-door client over TLS on a net.Pipe, which buffers
// nothing: a write of the relay waits for the client's read. Its
// writeBegun waits for a write of the relay to begin, and leaves it
// waiting.
func pipeTLS(t *testing.T, s *Server, cfg config.Config) (tc *tconn, writeBegun func()) {
	t.Helper()
	var door *tlsDoor
	for _, d := range s.doors {
		if d, ok := d.(*tlsDoor); ok && d.key == "line_tls" {
			door = d
		}
	}
	srv, cli := net.Pipe()
	t.Cleanup(func() { cli.Close() })
	door.serve(srv, nil)
	raw := &preread{Conn: cli}
	writeBegun = func() {
		t.Helper()
		var one [1]byte
		cli.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(cli, one[:]); err != nil {
			t.Fatal(err)
		}
		raw.pre = one[:] // the client reads it first
	}
	return greeted(t, tls.Client(raw, pinned(fingerprintOf(t, cfg)))), writeBegun
}

// A reload while a TLS member's write is under way leaves that write its
// deadline: a TLS write cut short breaks the connection for good, and a
// reload is no reason for the member to go.
func TestTLSReloadMidWrite(t *testing.T) {
	cfg := tlsConfig(t.TempDir())
	cfg.Timeouts.Write = config.Duration(time.Minute)
	s := startServer(t, cfg)
	c, writeBegun := pipeTLS(t, s, cfg)
	slow := c.enter("slow")
	talker := join(t, s, "talker") // slow is told, and stops reading
	writeBegun()
	s.Reload(cfg)
	talker.send("after the reload")
	slow.until("the message", func(l string) bool { return l == "talker: after the reload" })
	if s.lookup("slow") == nil {
		t.Errorf("slow was dropped; disconnects %v", s.Stats().Disconnects)
	}
}

// A TLS member kicked while a write to it is under way still gets what
// it is owed and why it leaves, within the flush's bound: the kick does
// not cut the write short, which would break the connection.
func TestTLSKickMidWrite(t *testing.T) {
	cfg := tlsConfig(t.TempDir())
	cfg.Timeouts.Write = config.Duration(time.Minute)
	s := startServer(t, cfg)
	c, writeBegun := pipeTLS(t, s, cfg)
	slow := c.enter("slow")
	join(t, s, "talker") // slow is told, and stops reading
	writeBegun()
	s.lookup("slow").kick(byKicked)
	slow.until("the goodbye", func(l string) bool { return l == "!!! disconnected: kicked by an admin" })
}
