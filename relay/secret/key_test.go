package secret

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestKey: key is PBKDF2-HMAC-SHA256 (in the minimal build, this
// package's own): the published vectors, and crypto/pbkdf2 on secrets and
// salts around SHA-256's block and padding sizes.
func TestKey(t *testing.T) {
	for _, v := range []struct {
		secret, salt string
		iter         int
		want         string
	}{
		{"password", "salt", 1, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"},
		{"password", "salt", 2, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"},
		{"password", "salt", 4096, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"},
	} {
		if got := hex.EncodeToString(key(v.secret, []byte(v.salt), v.iter)); got != v.want {
			t.Errorf("key(%q, %q, %d) = %s, want %s", v.secret, v.salt, v.iter, got, v.want)
		}
	}
	for _, n := range []int{0, 1, 31, 55, 56, 63, 64, 65, 119, 120, 200} {
		secret, salt := strings.Repeat("s", n), []byte(strings.Repeat("\xa5", n))
		want, err := pbkdf2.Key(sha256.New, secret, salt, 1000, hashBytes)
		if err != nil {
			t.Fatal(err)
		}
		if got := key(secret, salt, 1000); string(got) != string(want) {
			t.Errorf("%d bytes: key = %x, crypto/pbkdf2 %x", n, got, want)
		}
	}
	if !equal([]byte("ab"), []byte("ab")) || equal([]byte("ab"), []byte("ac")) || equal([]byte("ab"), []byte("a")) {
		t.Error("equal is wrong")
	}
}
