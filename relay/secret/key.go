//go:build !minimal

package secret

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
)

// key is PBKDF2-HMAC-SHA256 of secret with salt and iter iterations, of
// hashBytes.
func key(secret string, salt []byte, iter int) []byte {
	sum, err := pbkdf2.Key(sha256.New, secret, salt, iter, hashBytes)
	if err != nil {
		panic(err) // only in FIPS 140 mode, for parameters this package never uses
	}
	return sum
}

// equal reports whether a and b are equal, in time that depends only on
// their lengths.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
