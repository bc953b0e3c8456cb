//go:build !minimal

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
