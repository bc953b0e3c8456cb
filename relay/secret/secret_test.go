package secret

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"", "hunter2", "grüße aus der küche", strings.Repeat("x", 300)} {
		h := Hash(s)
		if err := Check(h); err != nil {
			t.Fatalf("Check(Hash(%q)) = %v", s, err)
		}
		if strings.Contains(h, s) && s != "" {
			t.Errorf("the hash %q holds the secret", h)
		}
		if !Match(h, s) {
			t.Errorf("Match(Hash(%q), %q) = false", s, s)
		}
		if Match(h, s+"x") {
			t.Errorf("Match(Hash(%q), %q) = true", s, s+"x")
		}
	}
	if a, b := Hash("same"), Hash("same"); a == b {
		t.Errorf("two hashes of one secret are the same (%s): no random salt", a)
	}
}

func TestCheck(t *testing.T) {
	good := Hash("x")
	f := strings.Split(good, "$")
	for _, tc := range []struct{ name, h string }{
		{"empty", ""},
		{"clear", "hunter2"},
		{"other scheme", "bcrypt$" + strings.Join(f[1:], "$")},
		{"few iterations", f[0] + "$10$" + f[2] + "$" + f[3]},
		{"iterations not a number", f[0] + "$ten$" + f[2] + "$" + f[3]},
		{"bad salt", f[0] + "$" + f[1] + "$!!$" + f[3]},
		{"short hash", f[0] + "$" + f[1] + "$" + f[2] + "$AAAA"},
		{"more fields", good + "$x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.h)
			if err == nil {
				t.Fatalf("Check(%q) = nil", tc.h)
			}
			if tc.h != "" && strings.Contains(err.Error(), tc.h) {
				t.Errorf("the error %q quotes the string", err)
			}
			if Match(tc.h, "x") {
				t.Errorf("Match(%q) = true", tc.h)
			}
		})
	}
}

// BenchmarkMatch is the cost of one check of a secret, the figure behind
// Iterations (see the README).
func BenchmarkMatch(b *testing.B) {
	h := Hash("correct horse")
	for b.Loop() {
		Match(h, "correct horse")
	}
}
