package relay

import (
	"errors"
	"syscall"
)

// isRefused reports whether a dial failed because nothing listens there.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// addrNotAvailable reports whether a bind failed because no interface has
// the address (yet).
func addrNotAvailable(err error) bool { return errors.Is(err, syscall.EADDRNOTAVAIL) }

// addrInUse reports whether a bind failed because something listens there.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
