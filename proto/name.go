package proto

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Name and room limits.
const (
	MaxName = 24 // bytes of a member name
	MaxRoom = 32 // bytes of a room name
)

// ErrBadName is wrapped by every name and room validation error.
var ErrBadName = errors.New("invalid name")

// CheckName reports whether s is a valid member name: 1 to MaxName bytes of
// ASCII letters, digits, '_', '-' and '.', starting with a letter or digit.
// Names are compared case-insensitively (see [Fold]).
func CheckName(s string) error { return check("name", s, MaxName) }

// CheckRoom is [CheckName] for room names, which may be up to MaxRoom bytes.
func CheckRoom(s string) error { return check("room name", s, MaxRoom) }

func check(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrBadName, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s longer than %d characters", ErrBadName, what, max)
	case !alnum(s[0]):
		return fmt.Errorf("%w: %s must start with a letter or digit", ErrBadName, what)
	}
	for i, r := range s {
		if r >= utf8.RuneSelf || !alnum(s[i]) && r != '_' && r != '-' && r != '.' {
			return fmt.Errorf("%w: %s may hold only letters, digits, _ - and . (not %q)", ErrBadName, what, r)
		}
	}
	return nil
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Fold returns the key under which a valid name or room is unique: its
// ASCII lower case.
func Fold(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
