//go:build !minimal && !notls

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"roomrelay/relay"
	"roomrelay/relay/cert"
	"roomrelay/relay/config"
	"roomrelay/relay/internal/testkit"
)

// startTLSRelay starts a relay with a plain line door and a TLS one, its
// certificate made in a temporary directory, and returns it with the
// certificate's fingerprint.
func startTLSRelay(t *testing.T) (*relay.Server, string) {
	dir := t.TempDir()
	cfg := config.Default().Relay
	cfg.Listen = config.Listen{Line: "127.0.0.1:0", LineTLS: "127.0.0.1:0"}
	cfg.TLS = config.TLS{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), Generate: true}
	s := startRelayConfig(t, cfg)
	der, err := cert.Leaf(cfg.TLS.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return s, cert.Fingerprint(der)
}

// The client over TLS, the relay's certificate pinned, chats with a
// plain member; a certificate that is not the one pinned, or one no
// authority signed without a pin, or a door that is not TLS, ends it
// with an error that says what to do, without retrying.
func TestTLS(t *testing.T) {
	s, fp := startTLSRelay(t)
	alice := dialMember(t, s.Addr("line").String(), "alice")

	t.Run("pinned", func(t *testing.T) {
		cfg := clientConfig(s.Addr("line_tls").String(), "carol")
		// As the user may type it: lower case, no colons, no "sha256:".
		cfg.Fingerprint = strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(fp, "sha256:"), ":", ""))
		in, inw := io.Pipe()
		var out testkit.Buffer
		done := make(chan error, 1)
		go func() { done <- Run(context.Background(), cfg, in, &out, t.Logf) }()
		alice.until(t, "--- carol joined lobby")
		fmt.Fprintln(inw, "hello over TLS")
		if l := alice.until(t, "carol"); l != "carol: hello over TLS" {
			t.Errorf("alice got %q", l)
		}
		fmt.Fprintln(alice.c, "hi carol")
		testkit.WaitFor(t, 10*time.Second, "carol to see alice", func() bool { return strings.Contains(out.String(), "alice: hi carol\n") })
		inw.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("client: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the client did not end with its input")
		}
	})

	for _, tc := range []struct {
		name   string
		server string
		set    func(*config.ClientConfig)
		want   []string
	}{
		{"wrong fingerprint", "line_tls", func(c *config.ClientConfig) { c.Fingerprint = "sha256:" + strings.Repeat("00", 32) },
			[]string{"the relay's certificate is " + fp + ", not the one pinned", "roomrelay fingerprint"}},
		{"self-signed, no fingerprint", "line_tls", func(c *config.ClientConfig) { c.TLS = true },
			[]string{"not one this system trusts", "pass -fingerprint " + fp}},
		{"plain door", "line", func(c *config.ClientConfig) { c.Fingerprint = fp },
			[]string{"that is no TLS door"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientConfig(s.Addr(tc.server).String(), "dave")
			tc.set(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out testkit.Buffer
			err := Run(ctx, cfg, strings.NewReader("not sent\n"), &out, t.Logf)
			if ctx.Err() != nil {
				t.Fatal("the client retried instead of giving up")
			}
			if !errors.Is(err, errFatal) {
				t.Fatalf("error %v, want a fatal one", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
