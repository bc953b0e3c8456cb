//go:build minimal && unix

package secret

import (
	"io"
	"os"
)

// random fills b with random bytes from the system's /dev/urandom, which
// is what crypto/rand reads where getrandom(2) is missing: the minimal
// build leaves out crypto/rand, whose FIPS 140 generator (with AES and
// math/big) would add about 0.1 MB to a router's binary for a salt.
func random(b []byte) {
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, err = io.ReadFull(f, b)
		f.Close()
	}
	if err != nil {
		panic("secret: no random bytes: " + err.Error()) // as crypto/rand, which crashes the program
	}
}
