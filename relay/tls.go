//go:build !minimal && !notls

package relay

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"roomrelay/relay/cert"
	"roomrelay/relay/config"
)

// The TLS doors: the line, IRC and HTTP doors again, each on an address
// of its own, over TLS 1.2 or later with the certificate of relay.tls.
// A TLS door wraps each accepted connection in a *tls.Conn and hands it
// to its plain door, which admits it (or refuses it) as any other. The
// handshake is made by the goroutine that then serves the connection,
// within the handshake deadline (see Server.handshake): a *tls.Conn is
// no socket, so the loop never adopts one, and nothing blocks the
// accepting goroutine or the loop's workers.

func init() {
	for _, d := range []struct{ name, plain string }{{"line_tls", "line"}, {"irc_tls", "irc"}, {"https", "http"}} {
		optionalDoors = append(optionalDoors, func(s *Server) door { return &tlsDoor{s: s, key: d.name, plain: d.plain} })
	}
}

// tlsDoor is a plain stream door served over TLS.
type tlsDoor struct {
	s          *Server
	key, plain string // its name under relay.listen; its plain door's

	once sync.Once
	conf *tls.Config // made once
	own  keeper      // the first TLS door's is the relay's: see tlsKeeper
}

func (d *tlsDoor) name() string                 { return d.key }
func (d *tlsDoor) addr(c *config.Config) string { return *c.Listen.Door(d.key) }

// serve hands c, wrapped in TLS, to the plain door: it admits or refuses
// it, and has it served.
func (d *tlsDoor) serve(c net.Conn, stop <-chan struct{}) {
	d.inner().serve(tls.Server(c, d.tlsConfig()), stop)
}

// inner is the plain door.
func (d *tlsDoor) inner() streamDoor {
	for _, o := range d.s.doors {
		if o.name() == d.plain {
			return o.(streamDoor)
		}
	}
	panic("no " + d.plain + " door in this build")
}

func (d *tlsDoor) tlsConfig() *tls.Config {
	d.once.Do(func() {
		keep := d.s.tlsKeeper()
		d.conf = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The certificate of the moment: a reload may replace it.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return keep.crt.Load(), nil },
		}
	})
	return d.conf
}

// prepare reads the certificate, once for every TLS door of a config;
// see preparer.
func (d *tlsDoor) prepare(cfg *config.Config) (string, error) {
	return d.s.tlsKeeper().load(d.s, cfg)
}

// tlsKeeper returns the keeper of the certificate the relay's TLS doors
// share: the first TLS door's.
func (s *Server) tlsKeeper() *keeper {
	for _, o := range s.doors {
		if d, ok := o.(*tlsDoor); ok {
			return &d.own
		}
	}
	return nil
}

// keeper holds the certificate of the TLS doors.
type keeper struct {
	crt atomic.Pointer[tls.Certificate] // in use; nil until loaded

	mu  sync.Mutex
	of  *config.Config // the config it was last loaded for
	err error          // what that load failed with
	fp  string         // the fingerprint of crt
}

// load reads the certificate of cfg, unless it was read for cfg already;
// on an error it keeps the one in use (if any). It returns a note for the
// reload's log line, once, or the error.
func (k *keeper) load(s *Server, cfg *config.Config) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.of == cfg {
		return "", k.err
	}
	k.of = cfg
	crt, made, err := cert.Open(cfg.TLS)
	if k.err = err; err != nil {
		return "", err
	}
	fp, note := cert.Fingerprint(crt.Certificate[0]), ""
	if made {
		s.infof("tls: made a self-signed certificate (relay.tls.generate): %s and its key %s", cfg.TLS.Cert, cfg.TLS.Key)
	}
	switch {
	case k.fp == "":
		s.infof("tls: certificate %s, fingerprint %s", cfg.TLS.Cert, fp)
	case k.fp != fp:
		s.infof("tls: certificate %s replaced, fingerprint now %s", cfg.TLS.Cert, fp)
		note = fmt.Sprintf("TLS certificate replaced (%s)", fp)
	}
	k.fp = fp
	k.crt.Store(&crt)
	return note, nil
}
