// Package secret keeps the relay's secrets (its password, its admin
// password, its rooms' keys) as salted hashes: PBKDF2-HMAC-SHA256
// (RFC 8018) with a random salt, written as one self-describing string
//
//	pbkdf2-sha256$ITER$SALT$HASH
//
// where SALT and HASH are unpadded standard base64. Only such strings go
// into a configuration file; a secret given by a client is checked
// against one in constant time. The package imports only the standard
// library, so that the config reader, the relay and `roomrelay passwd`
// share it.
package secret

import (
	"encoding/base64"
	"errors"
	"roomrelay/internal/fmtlite"
	"strconv"
	"strings"
)

// Iterations is the PBKDF2 iteration count of a new hash: a check costs
// about 0.2 ms on a 64-bit x86 PC and about 5 ms on a MIPS router (32-bit
// little-endian, measured under qemu-mipsel), which a relay pays once per
// connection that gives a secret. It is no match for a long passphrase's
// worth of guesses, only a brake on guessing a short one from a copied
// config file; the README says so.
const Iterations = 1000

// The bounds taken in a hash string: fewer iterations is too cheap to be
// worth the name, more would let a config file stall the relay.
const (
	minIterations = 1000
	maxIterations = 200_000
	saltBytes     = 16
	hashBytes     = 32
)

// scheme is the hash string's first field.
const scheme = "pbkdf2-sha256"

var b64 = base64.RawStdEncoding

// Hash returns the hash string of secret, with a fresh random salt and
// Iterations.
func Hash(secret string) string {
	return hashWith(secret, Iterations)
}

func hashWith(secret string, iter int) string {
	salt := make([]byte, saltBytes)
	random(salt)
	sum := key(secret, salt, iter)
	return scheme + "$" + strconv.Itoa(iter) + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(sum)
}

// ErrNotHash is wrapped by Check's error.
var ErrNotHash = errors.New("not a hash")

// parsed is a hash string taken apart.
type parsed struct {
	iter       int
	salt, hash []byte
}

func parse(h string) (parsed, error) {
	f := strings.Split(h, "$")
	if len(f) != 4 || f[0] != scheme {
		return parsed{}, fmtlite.Errorf("%w (want %s$ITER$SALT$HASH)", ErrNotHash, scheme)
	}
	var p parsed
	var err error
	if p.iter, err = strconv.Atoi(f[1]); err != nil || p.iter < minIterations || p.iter > maxIterations {
		return parsed{}, fmtlite.Errorf("%w: iterations %q not from %d to %d", ErrNotHash, f[1], minIterations, maxIterations)
	}
	if p.salt, err = b64.DecodeString(f[2]); err != nil || len(p.salt) < 8 {
		return parsed{}, fmtlite.Errorf("%w: the salt is not 8 bytes or more of base64", ErrNotHash)
	}
	if p.hash, err = b64.DecodeString(f[3]); err != nil || len(p.hash) != hashBytes {
		return parsed{}, fmtlite.Errorf("%w: the hash is not %d bytes of base64", ErrNotHash, hashBytes)
	}
	return p, nil
}

// Check reports whether h is a hash string Match can use. Its error
// never quotes h.
func Check(h string) error {
	_, err := parse(h)
	return err
}

// Match reports, in time that does not depend on where they differ,
// whether secret is the one h was made from. An h that is no hash string
// matches nothing.
func Match(h, secret string) bool {
	p, err := parse(h)
	if err != nil {
		return false
	}
	return equal(key(secret, p.salt, p.iter), p.hash)
}
