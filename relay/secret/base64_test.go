package secret

import (
	"encoding/base64"
	"testing"
)

// TestBase64: encode64 and decode64 are encoding/base64's RawStdEncoding,
// on every length of a group and on what it refuses.
func TestBase64(t *testing.T) {
	raw := base64.RawStdEncoding
	for n := range 12 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*67 + n*13)
		}
		if got, want := encode64(b), raw.EncodeToString(b); got != want {
			t.Errorf("encode64(% x) = %q, want %q", b, got, want)
		}
	}
	for _, s := range []string{
		"", "QQ", "QUI", "QUJD", "QUJDRA", "A", "QUJDR", "QQ==", "Q Q", "QQ\nQQ", "Q-_Q", "QR", "//+/", "é",
	} {
		want, werr := raw.DecodeString(s)
		got, ok := decode64(s)
		if ok != (werr == nil) || ok && string(got) != string(want) {
			t.Errorf("decode64(%q) = % x, %v; encoding/base64: % x, %v", s, got, ok, want, werr)
		}
	}
}
