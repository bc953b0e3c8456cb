// Package sortlite sorts the relay's few short lists of strings (config
// keys, a store's directories, counters' names) as sort.Strings does,
// without its generic pattern-defeating quicksort, some 8 KB of a mipsle
// binary.
package sortlite

// Strings sorts a in increasing order, by Shell's method (Ciura's gaps):
// quick enough for the lists it is given, in little code (once: not
// inlined where it is called).
//
//go:noinline
func Strings(a []string) {
	gaps := [...]int{701, 301, 132, 57, 23, 10, 4, 1}
	for _, gap := range gaps {
		for i := gap; i < len(a); i++ {
			s := a[i]
			j := i
			for ; j >= gap && a[j-gap] > s; j -= gap {
				a[j] = a[j-gap]
			}
			a[j] = s
		}
	}
}

// Keys returns the keys of a decoded JSON object in increasing order, so
// that whoever reads it key by key meets the same first problem every
// time (once: not inlined where it is called).
//
//go:noinline
func Keys(obj map[string]any) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	Strings(keys)
	return keys
}
