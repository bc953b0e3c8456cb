//go:build !notls

package client

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"roomrelay/relay/cert"
	"roomrelay/relay/config"
)

// secure makes the TLS handshake on conn, within cfg.Timeout, and returns
// the connection over TLS. With cfg.Fingerprint the relay's certificate
// must be that one, whoever signed it (the relay's own, self-signed, is
// pinned so); without, it must be signed by an authority the system
// trusts, for the host of cfg.Server. A certificate that is not the one
// expected is an errFatal error, which says its fingerprint.
func secure(ctx context.Context, conn net.Conn, cfg config.ClientConfig) (net.Conn, error) {
	host, _, _ := net.SplitHostPort(cfg.Server)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if cfg.Fingerprint != "" {
		want, err := config.ParseFingerprint(cfg.Fingerprint)
		if err != nil {
			return nil, fmt.Errorf("%w: client.fingerprint: %v", errFatal, err)
		}
		// The pin stands in for the authorities and the names: checked
		// below, on the certificate itself.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the relay sent no certificate")
			}
			if der := cs.PeerCertificates[0].Raw; sha256.Sum256(der) != want {
				return &pinError{got: cert.Fingerprint(der), want: cfg.Fingerprint}
			}
			return nil
		}
	}
	t := tls.Client(conn, tc)
	hctx, cancel := context.WithTimeout(ctx, cfg.Timeout.D())
	defer cancel()
	err := t.HandshakeContext(hctx)
	var pin *pinError
	var unverified *tls.CertificateVerificationError
	var plain tls.RecordHeaderError
	switch {
	case err == nil:
		return t, nil
	case errors.As(err, &pin):
		return nil, fmt.Errorf("%w: %v", errFatal, pin)
	case errors.As(err, &unverified) && len(unverified.UnverifiedCertificates) > 0:
		fp := cert.Fingerprint(unverified.UnverifiedCertificates[0].Raw)
		return nil, fmt.Errorf("%w: client: the relay's certificate is not one this system trusts: %v.\n"+
			"A relay's own certificate (relay.tls.generate) is self-signed: pin it instead. This one's fingerprint is\n"+
			"  %s\nIf `roomrelay fingerprint` on the relay prints the same, pass -fingerprint %s (or set client.fingerprint)",
			errFatal, unverified.Err, fp, fp)
	case errors.As(err, &plain):
		// Not TLS: reconnecting will not make it so.
		return nil, fmt.Errorf("%w: client: TLS handshake with %s: %v: that is no TLS door (the relay's is relay.listen.line_tls)", errFatal, cfg.Server, err)
	}
	return nil, fmt.Errorf("TLS handshake with %s: %w", cfg.Server, err)
}

// pinError is a relay whose certificate is not the one pinned.
type pinError struct{ got, want string }

func (e *pinError) Error() string {
	return fmt.Sprintf("client: the relay's certificate is %s, not the one pinned (client.fingerprint %s): "+
		"refused. Either the relay has a new certificate (`roomrelay fingerprint` on it says), or something else answers at its address",
		e.got, e.want)
}
