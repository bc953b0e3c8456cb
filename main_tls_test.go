//go:build !minimal && !notls

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"roomrelay/relay/cert"
	"roomrelay/relay/config"
)

// roomrelay fingerprint prints the fingerprint of relay.tls.cert, found
// beside the config file, or says why it cannot.
func TestFingerprintCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"relay":{"tls":{"cert":"c.pem","key":"k.pem"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runArgs("-config", path, "fingerprint")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "relay.tls.cert: open "+filepath.Join(dir, "c.pem")) ||
		!strings.Contains(stderr, "the relay makes it when it starts") {
		t.Errorf("before the relay made it: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	crt, made, err := cert.Open(config.TLS{Cert: filepath.Join(dir, "c.pem"), Key: filepath.Join(dir, "k.pem"), Generate: true})
	if err != nil || !made {
		t.Fatalf("made %v, %v", made, err)
	}
	want := cert.Fingerprint(crt.Certificate[0])
	code, stdout, stderr = runArgs("-config", path, "fingerprint")
	if code != 0 || stdout != want+"\n" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want %s", code, stdout, stderr, want)
	}
}

// check reads the certificate of the TLS doors that are on: a pair that
// the relay could not serve is an error naming its key.
func TestCheckTLS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	write := func(conf string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	on := `{"relay":{"listen":{"line_tls":"127.0.0.1:0"},"tls":{"cert":"c.pem","key":"k.pem"`
	for _, tc := range []struct {
		name, conf string
		code       int
		stderr     string
	}{
		{"off", `{"relay":{"tls":{"cert":"c.pem","key":"k.pem","generate":false}}}`, 0, ""},
		{"to be made", on + `}}}`, 0, ""},
		{"missing", on + `,"generate":false}}}`, 1, "relay.tls.cert: open " + filepath.Join(dir, "c.pem")},
	} {
		write(tc.conf)
		code, _, stderr := runArgs("-config", path, "check")
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d, stderr with %q", tc.name, code, stderr, tc.code, tc.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "c.pem")); err == nil {
		t.Error("check made a certificate")
	}
	// A pair whose key is another's.
	if _, _, err := cert.Open(config.TLS{Cert: filepath.Join(dir, "c.pem"), Key: filepath.Join(dir, "k.pem"), Generate: true}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "k.pem")
	if _, _, err := cert.Open(config.TLS{Cert: filepath.Join(filepath.Dir(other), "c.pem"), Key: other, Generate: true}); err != nil {
		t.Fatal(err)
	}
	write(`{"relay":{"listen":{"line_tls":"127.0.0.1:0"},"tls":{"cert":"c.pem","key":"` + other + `"}}}`)
	if code, _, stderr := runArgs("-config", path, "check"); code != 1 || !strings.Contains(stderr, "relay.tls.key: "+other+" is not the key of relay.tls.cert") {
		t.Errorf("mismatched: exit %d, stderr %q", code, stderr)
	}
}
