//go:build !minimal || !unix

package secret

import "crypto/rand"

// random fills b with random bytes from the system.
func random(b []byte) {
	rand.Read(b) // it never fails: it crashes the program instead
}
