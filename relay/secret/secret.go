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

// b64 are the digits of standard base64, written unpadded here (as
// encoding/base64's RawStdEncoding, left out of the minimal build).
const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// encode64 writes b in unpadded standard base64.
func encode64(b []byte) string {
	out := make([]byte, 0, (len(b)*8+5)/6)
	for i := 0; i < len(b); i += 3 {
		var n uint32
		k := min(3, len(b)-i)
		for j := range k {
			n |= uint32(b[i+j]) << (16 - 8*j)
		}
		for j := range k + 1 {
			out = append(out, b64[n>>(18-6*j)&63])
		}
	}
	return string(out)
}

// decode64 reads unpadded standard base64 as RawStdEncoding.DecodeString
// does (skipping line breaks); false if s is not base64.
func decode64(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s)*6/8)
	var n uint32
	bits := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			continue
		}
		v := strings.IndexByte(b64, s[i])
		if v < 0 {
			return nil, false
		}
		n = n<<6 | uint32(v)
		if bits += 6; bits >= 8 {
			bits -= 8
			out = append(out, byte(n>>bits))
		}
	}
	return out, bits != 6 // one digit alone holds no byte
}

// Hash returns the hash string of secret, with a fresh random salt and
// Iterations.
func Hash(secret string) string {
	return hashWith(secret, Iterations)
}

func hashWith(secret string, iter int) string {
	salt := make([]byte, saltBytes)
	random(salt)
	sum := key(secret, salt, iter)
	return scheme + "$" + strconv.Itoa(iter) + "$" + encode64(salt) + "$" + encode64(sum)
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
	var ok bool
	if p.iter, err = strconv.Atoi(f[1]); err != nil || p.iter < minIterations || p.iter > maxIterations {
		return parsed{}, fmtlite.Errorf("%w: iterations %q not from %d to %d", ErrNotHash, f[1], minIterations, maxIterations)
	}
	if p.salt, ok = decode64(f[2]); !ok || len(p.salt) < 8 {
		return parsed{}, fmtlite.Errorf("%w: the salt is not 8 bytes or more of base64", ErrNotHash)
	}
	if p.hash, ok = decode64(f[3]); !ok || len(p.hash) != hashBytes {
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
