package cert

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"roomrelay/relay/config"
)

func TestFingerprint(t *testing.T) {
	der := []byte("not really a certificate")
	sum := sha256.Sum256(der)
	got := Fingerprint(der)
	if want := "sha256:" + strings.ToUpper(fmt.Sprintf("% x", sum[:])); got != strings.ReplaceAll(want, " ", ":") {
		t.Errorf("got %s, want %s", got, want)
	}
	back, err := config.ParseFingerprint(got)
	if err != nil || back != sum {
		t.Errorf("ParseFingerprint(%s) = %x, %v", got, back, err)
	}
}

// A pair is made in a directory that did not exist, or in one file when
// cert and key are the same path, and read back the same.
func TestGenerate(t *testing.T) {
	for _, tc := range []struct{ name, cert, key string }{
		{"two files, new directory", "sub/dir/cert.pem", "sub/dir/key.pem"},
		{"one file", "both.pem", "both.pem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := config.TLS{Cert: filepath.Join(dir, tc.cert), Key: filepath.Join(dir, tc.key), Generate: true}
			made, ok, err := Open(c)
			if err != nil || !ok {
				t.Fatalf("made %v, %v", ok, err)
			}
			leaf, err := x509.ParseCertificate(made.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if leaf.PublicKeyAlgorithm != x509.ECDSA || leaf.Subject.CommonName != "roomrelay" {
				t.Errorf("certificate: %v key, subject %v", leaf.PublicKeyAlgorithm, leaf.Subject)
			}
			fi, err := os.Stat(c.Key)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file: %v, %v", fi.Mode(), err)
			}
			again, ok, err := Open(c)
			if err != nil || ok {
				t.Fatalf("second open: made %v, %v", ok, err)
			}
			if Fingerprint(again.Certificate[0]) != Fingerprint(made.Certificate[0]) {
				t.Error("read back another certificate")
			}
			der, err := Leaf(c.Cert)
			if err != nil || Fingerprint(der) != Fingerprint(made.Certificate[0]) {
				t.Errorf("Leaf: %v", err)
			}
		})
	}
}
