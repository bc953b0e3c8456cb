//go:build !minimal && !notls

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"roomrelay/relay/cert"
	"roomrelay/relay/config"
)

// The relay's TLS certificate from the command line: `roomrelay
// fingerprint`, and `check` reading the pair. A minimal build has no TLS.
func init() {
	endpoints = append(endpoints, endpoint{
		name:  "fingerprint",
		about: "print the SHA-256 fingerprint of the relay's TLS certificate (relay.tls.cert), to pin it",
		run: func(ctx context.Context, cfg *config.File, std stdio) error {
			der, err := cert.Leaf(cfg.Relay.TLS.Cert)
			if errors.Is(err, fs.ErrNotExist) && cfg.Relay.TLS.Generate {
				err = fmt.Errorf("%w (the relay makes it when it starts with a TLS door on)", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(std.out, cert.Fingerprint(der))
			return nil
		},
	})
	checkTLS = func(f *config.File) error {
		on := false
		for _, name := range config.TLSDoors {
			on = on || *f.Relay.Listen.Door(name) != ""
		}
		if !on {
			return nil
		}
		c := f.Relay.TLS
		_, cerr := os.Stat(c.Cert)
		_, kerr := os.Stat(c.Key)
		if c.Generate && errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
			return nil // the relay makes the pair as it starts
		}
		c.Generate = false // check writes nothing
		_, _, err := cert.Open(c)
		return err
	}
}
