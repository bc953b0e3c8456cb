// Package errlite finds an error of a type in an error's chain, as
// errors.As does, without reflection: errors.As checks assignability
// with internal/reflectlite (with what it brings, some 30 KB of a mipsle
// binary).
package errlite

// As finds the first error in err's tree that is a T, or that gives one
// to its As method, as errors.As(err, &t) does: err itself, then what it
// wraps (Unwrap() error), depth first through every error it joins
// (Unwrap() []error).
func As[T error](err error) (T, bool) {
	var zero T
	for err != nil {
		if t, ok := err.(T); ok {
			return t, true
		}
		if x, ok := err.(interface{ As(any) bool }); ok {
			var t T
			if x.As(&t) {
				return t, true
			}
		}
		switch x := err.(type) {
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if t, ok := As[T](e); ok {
					return t, true
				}
			}
			return zero, false
		default:
			return zero, false
		}
	}
	return zero, false
}
