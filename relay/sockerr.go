package relay

import (
	"errors"
	"syscall"
)

// isRefused reports whether a dial failed because nothing listens there.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// isResource reports whether an operation failed for want of the
// relay's own resources (file descriptors, buffers, memory), which is no
// fault of the peer.
func isResource(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// addrNotAvailable reports whether a bind failed because no interface has
// the address (yet).
func addrNotAvailable(err error) bool { return errors.Is(err, syscall.EADDRNOTAVAIL) }

// addrInUse reports whether a bind failed because something listens there.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
