// Package cert is the relay's TLS certificate: it reads the pair named by
// relay.tls, makes and keeps a self-signed one when asked to, and gives a
// certificate's SHA-256 fingerprint in the form users pin. The relay's
// TLS doors and `roomrelay client -tls` share it; a minimal build (-tags
// minimal), which has no TLS, does not import it.
package cert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"roomrelay/internal/atomicfile"
	"roomrelay/relay/config"
)

// Fingerprint returns the SHA-256 fingerprint of a certificate, given in
// DER, as "sha256:" and 32 bytes in upper-case hex separated by colons:
// the bytes of `openssl x509 -noout -fingerprint -sha256`.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	b.Grow(len("sha256:") + 3*len(sum))
	b.WriteString("sha256:")
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Open returns the certificate of c: the pair at c.Cert and c.Key, or,
// with c.Generate and neither file there, a self-signed pair it makes and
// writes there first (made reports so). Its errors name the key at fault
// (relay.tls.cert or relay.tls.key).
func Open(c config.TLS) (crt tls.Certificate, made bool, err error) {
	certPEM, cerr := os.ReadFile(c.Cert)
	keyPEM, kerr := os.ReadFile(c.Key)
	missing := errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist)
	if c.Generate && missing {
		if certPEM, keyPEM, err = generate(c); err != nil {
			return crt, false, fmt.Errorf("%w (relay.tls.generate writes the pair once: its directory must be writable by the relay's user; or make the pair yourself and set relay.tls.generate to false)", err)
		}
		made, cerr, kerr = true, nil, nil
	}
	hint := ""
	switch {
	case !c.Generate && missing:
		hint = " (set relay.tls.generate to true to have the relay make a self-signed pair)"
	case c.Generate && (cerr == nil) != (kerr == nil):
		hint = " (relay.tls.generate makes a pair only when neither file exists)"
	}
	if cerr != nil {
		return crt, false, fmt.Errorf("relay.tls.cert: %w%s", cerr, hint)
	}
	if kerr != nil {
		return crt, false, fmt.Errorf("relay.tls.key: %w%s", kerr, hint)
	}
	crt, err = parse(c, certPEM, keyPEM)
	return crt, made, err
}

// Leaf reads the certificate file at path (relay.tls.cert) and returns
// its first certificate, in DER: the one a TLS door presents, whose
// Fingerprint clients pin.
func Leaf(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("relay.tls.cert: %w", err)
	}
	return leaf(path, b)
}

// leaf returns the first certificate of the PEM certPEM, read from path,
// in DER.
func leaf(path string, certPEM []byte) ([]byte, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("relay.tls.cert: %s holds no PEM CERTIFICATE block", path)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return nil, fmt.Errorf("relay.tls.cert: %s: %w", path, err)
		}
		return b.Bytes, nil
	}
}

// parse reads a PEM pair, saying which of the two is at fault.
func parse(c config.TLS, certPEM, keyPEM []byte) (tls.Certificate, error) {
	if _, err := leaf(c.Cert, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	crt, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return crt, fmt.Errorf("relay.tls.key: %s is not the key of relay.tls.cert %s: %w", c.Key, c.Cert, err)
		}
		return crt, fmt.Errorf("relay.tls.key: %s: %w", c.Key, err)
	}
	return crt, nil
}

// generate makes a self-signed ECDSA P-256 pair and writes it at c.Key,
// then c.Cert (so that a certificate never stands without its key), each
// atomically, the key readable by its owner only. It returns the PEM of
// both.
func generate(c config.TLS) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("relay.tls.generate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("relay.tls.generate: %w", err)
	}
	host, _ := os.Hostname()
	names := []string{"localhost"}
	if host != "" && host != "localhost" {
		names = append(names, host)
	}
	// Clients pin the fingerprint, so the names and the dates matter
	// little: it never expires (RFC 5280's "no well-defined expiration
	// date"), and it holds from a day back, for a router whose clock has
	// not been set yet.
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "roomrelay", Organization: []string{"roomrelay (self-signed)"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("relay.tls.generate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("relay.tls.generate: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	if c.Cert == c.Key { // one file for both
		if err := writeFile(c.Key, append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
			return nil, nil, fmt.Errorf("relay.tls.key: %w", err)
		}
		return certPEM, keyPEM, nil
	}
	if err := writeFile(c.Key, keyPEM, 0o600); err != nil {
		return nil, nil, fmt.Errorf("relay.tls.key: %w", err)
	}
	if err := writeFile(c.Cert, certPEM, 0o644); err != nil {
		return nil, nil, fmt.Errorf("relay.tls.cert: %w", err)
	}
	return certPEM, keyPEM, nil
}

// writeFile writes b at path atomically, with mode perm: into a
// temporary file beside it, synced, then renamed over it. A directory
// missing on the way is made, readable by its owner only.
func writeFile(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, b, perm, true)
}
