package sortlite

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestStrings: Strings sorts as slices.Sort does, lists of every length
// up to a few thousand, with duplicates.
func TestStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 5, 10, 23, 100, 701, 1000, 5000} {
		a := make([]string, n)
		for i := range a {
			a[i] = strconv.Itoa(r.IntN(n + 1))
		}
		want := slices.Clone(a)
		slices.Sort(want)
		Strings(a)
		if !slices.Equal(a, want) {
			t.Fatalf("%d strings: got %q, want %q", n, a, want)
		}
	}
}

// TestKeys: Keys lists every key of an object once, in order.
func TestKeys(t *testing.T) {
	obj := map[string]any{"to": 1, "Room": nil, "from": "x", "": true, "room": 2}
	want := []string{"", "Room", "from", "room", "to"}
	if got := Keys(obj); !slices.Equal(got, want) {
		t.Fatalf("Keys: got %q, want %q", got, want)
	}
	if got := Keys(nil); len(got) != 0 {
		t.Fatalf("Keys(nil): got %q, want none", got)
	}
}
