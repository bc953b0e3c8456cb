//go:build minimal

package secret

import (
	"encoding/binary"
	"math/bits"
)

// The minimal build computes PBKDF2-HMAC-SHA256 (RFC 8018, RFC 2104,
// FIPS 180-4) itself: any package of crypto brings Go's FIPS 140 module
// along, whose self-tests and generator (AES, SHA-3, SHA-512, a DRBG)
// are about 0.1 MB of a mipsle binary. TestKey checks it against
// crypto/pbkdf2 and the published test vectors.

// key is PBKDF2-HMAC-SHA256 of secret with salt and iter iterations, of
// hashBytes (one block of the PRF, so one round of iterations).
func key(secret string, salt []byte, iter int) []byte {
	var k [64]byte // HMAC's key, padded
	if len(secret) > len(k) {
		d := newDigest()
		d.write([]byte(secret))
		s := d.sum()
		copy(k[:], s[:])
	} else {
		copy(k[:], secret)
	}
	var ipad, opad [64]byte
	for i := range k {
		ipad[i], opad[i] = k[i]^0x36, k[i]^0x5c
	}
	// The digests after the pads, computed once for every iteration.
	inner, outer := newDigest(), newDigest()
	inner.write(ipad[:])
	outer.write(opad[:])
	mac := func(msg ...[]byte) [32]byte {
		d := inner
		for _, m := range msg {
			d.write(m)
		}
		s := d.sum()
		d = outer
		d.write(s[:])
		return d.sum()
	}
	u := mac(salt, []byte{0, 0, 0, 1}) // block 1, the only one
	t := u
	for range iter - 1 {
		u = mac(u[:])
		for i := range t {
			t[i] ^= u[i]
		}
	}
	return t[:]
}

// equal reports whether a and b are equal, in time that depends only on
// their lengths.
func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// digest is SHA-256 in progress. It is a value: a copy goes on from where
// the original was.
type digest struct {
	h   [8]uint32
	buf [64]byte
	n   int    // bytes in buf
	len uint64 // bytes written
}

func newDigest() digest {
	return digest{h: [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}}
}

func (d *digest) write(p []byte) {
	d.len += uint64(len(p))
	for len(p) > 0 {
		c := copy(d.buf[d.n:], p)
		d.n += c
		p = p[c:]
		if d.n == len(d.buf) {
			d.block()
			d.n = 0
		}
	}
}

func (d digest) sum() [32]byte {
	bitLen := d.len << 3
	pad := [72]byte{0x80}
	n := 56 - d.n
	if d.n >= 56 {
		n += 64
	}
	binary.BigEndian.PutUint64(pad[n:], bitLen)
	d.write(pad[:n+8])
	var s [32]byte
	for i, h := range d.h {
		binary.BigEndian.PutUint32(s[4*i:], h)
	}
	return s
}

var k256 = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

// block hashes the 64 bytes of d.buf into d.h.
func (d *digest) block() {
	var w [64]uint32
	for i := range 16 {
		w[i] = binary.BigEndian.Uint32(d.buf[4*i:])
	}
	for i := 16; i < 64; i++ {
		v1, v2 := w[i-2], w[i-15]
		t1 := bits.RotateLeft32(v1, -17) ^ bits.RotateLeft32(v1, -19) ^ (v1 >> 10)
		t2 := bits.RotateLeft32(v2, -7) ^ bits.RotateLeft32(v2, -18) ^ (v2 >> 3)
		w[i] = t1 + w[i-7] + t2 + w[i-16]
	}
	a, b, c, dd, e, f, g, h := d.h[0], d.h[1], d.h[2], d.h[3], d.h[4], d.h[5], d.h[6], d.h[7]
	for i := range 64 {
		t1 := h + (bits.RotateLeft32(e, -6) ^ bits.RotateLeft32(e, -11) ^ bits.RotateLeft32(e, -25)) + ((e & f) ^ (^e & g)) + k256[i] + w[i]
		t2 := (bits.RotateLeft32(a, -2) ^ bits.RotateLeft32(a, -13) ^ bits.RotateLeft32(a, -22)) + ((a & b) ^ (a & c) ^ (b & c))
		h, g, f, e, dd, c, b, a = g, f, e, dd+t1, c, b, a, t1+t2
	}
	d.h[0] += a
	d.h[1] += b
	d.h[2] += c
	d.h[3] += dd
	d.h[4] += e
	d.h[5] += f
	d.h[6] += g
	d.h[7] += h
}
