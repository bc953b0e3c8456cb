// Package fmtlite formats the relay's messages, errors and log lines as
// package fmt would, for the kinds of values they hold, without fmt: fmt
// and the reflect it needs are about 0.2 MB of a mipsle binary, and the
// minimal build leaves them out.
//
// The verbs are %v %s %q %d %x %X %g %f and %w, with the flags '-', '#'
// and '0', a width and a precision ('+' is read and has no effect). The values are strings,
// byte slices, string slices, booleans, the integer types, float64,
// time.Duration, nil, errors and Stringers (an error's Error and a
// Stringer's String are what %v, %s and %q show, as with fmt). A value of
// any other type (float32, a named integer type that is no Stringer, a
// struct), or a verb that does not suit it, is written as fmt writes a
// bad verb, such as %!d(?), so that a test sees it.
package fmtlite

import (
	"errors"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// Errorf is fmt.Errorf: the error's message is the formatted text, and
// it wraps the operands of %w (Unwrap returns the one, or all of them).
func Errorf(format string, args ...any) error {
	var wrapped []error
	msg := string(appendf(nil, format, args, &wrapped))
	switch len(wrapped) {
	case 0:
		return errors.New(msg)
	case 1:
		return &wrapError{msg, wrapped[0]}
	}
	return &wrapErrors{msg, wrapped}
}

type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

type wrapErrors struct {
	msg  string
	errs []error
}

func (e *wrapErrors) Error() string   { return e.msg }
func (e *wrapErrors) Unwrap() []error { return e.errs }

// Sprintf is fmt.Sprintf.
// (Not inlined: a call is smaller than its body.)
//
//go:noinline
func Sprintf(format string, args ...any) string {
	var buf [128]byte // most of what the relay formats: its log lines, notices and errors
	return string(Append(buf[:0], format, args...))
}

// Fprintf is fmt.Fprintf.
// (Not inlined: a call is smaller than its body.)
//
//go:noinline
func Fprintf(w io.Writer, format string, args ...any) (int, error) {
	return w.Write(Append(nil, format, args...))
}

// spec is one verb with its flags, width and precision.
type spec struct {
	verb        byte
	minus, zero bool
	sharp       bool
	width, prec int // -1: none
}

// Append is fmt.Appendf.
func Append(b []byte, format string, args ...any) []byte { return appendf(b, format, args, nil) }

// appendf is Append, which adds the operands of %w that are errors to
// *wrapped, unless it is nil.
func appendf(b []byte, format string, args []any, wrapped *[]error) []byte {
	n := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		i++
		s := spec{width: -1, prec: -1}
	flags:
		for ; i < len(format); i++ {
			switch format[i] {
			case '-':
				s.minus = true
			case '+': // fmt's +: no such values here
			case '#':
				s.sharp = true
			case '0':
				s.zero = true
			default:
				break flags
			}
		}
		for ; i < len(format) && '0' <= format[i] && format[i] <= '9'; i++ {
			s.width = max(s.width, 0)*10 + int(format[i]-'0')
		}
		if i < len(format) && format[i] == '.' {
			i++
			s.prec = 0
			for ; i < len(format) && '0' <= format[i] && format[i] <= '9'; i++ {
				s.prec = s.prec*10 + int(format[i]-'0')
			}
		}
		if i >= len(format) {
			b = append(b, "%!(NOVERB)"...)
			break
		}
		s.verb = format[i]
		if s.verb == '%' {
			b = append(b, '%')
			continue
		}
		if n >= len(args) {
			b = append(b, "%!"...)
			b = append(b, s.verb)
			b = append(b, "(MISSING)"...)
			continue
		}
		if s.width < 0 {
			b = s.format(b, args[n])
		} else {
			b = s.pad(b, s.format(nil, args[n]))
		}
		if err, ok := args[n].(error); ok && s.verb == 'w' && wrapped != nil {
			*wrapped = append(*wrapped, err)
		}
		n++
	}
	if n < len(args) {
		b = append(b, "%!(EXTRA "...)
		for i, a := range args[n:] {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, "?="...)
			b = Append(b, "%v", a)
		}
		b = append(b, ')')
	}
	return b
}

// pad writes t into b, padded to the width with spaces (zeros before a
// number with the flag '0').
func (s *spec) pad(b, t []byte) []byte {
	n := s.width - utf8.RuneCount(t)
	if n <= 0 {
		return append(b, t...)
	}
	if s.minus {
		b = append(b, t...)
		for ; n > 0; n-- {
			b = append(b, ' ')
		}
		return b
	}
	if s.zero && s.numeric() {
		if len(t) > 0 && (t[0] == '-' || t[0] == '+') {
			b = append(b, t[0])
			t = t[1:]
		}
		for ; n > 0; n-- {
			b = append(b, '0')
		}
		return append(b, t...)
	}
	for ; n > 0; n-- {
		b = append(b, ' ')
	}
	return append(b, t...)
}

func (s *spec) numeric() bool {
	switch s.verb {
	case 'd', 'x', 'X', 'g', 'f', 'v':
		return true
	}
	return false
}

// format appends one value as s says.
func (s *spec) format(b []byte, v any) []byte {
	var i int64
	var u uint64
	signed := true
	switch v := v.(type) {
	case nil:
		if s.verb == 'v' {
			return append(b, "<nil>"...)
		}
		return s.bad(b, "<nil>")
	case string:
		return s.str(b, v)
	case []byte:
		if s.verb == 'x' || s.verb == 'X' {
			return s.hex(b, string(v))
		}
		return s.str(b, string(v))
	case bool:
		if s.verb == 'v' {
			return strconv.AppendBool(b, v)
		}
		return s.bad(b, "bool")
	case int:
		i = int64(v)
	case int8:
		i = int64(v)
	case int16:
		i = int64(v)
	case int32:
		i = int64(v)
	case int64:
		i = v
	case uint:
		u, signed = uint64(v), false
	case uint8:
		u, signed = uint64(v), false
	case uint16:
		u, signed = uint64(v), false
	case uint32:
		u, signed = uint64(v), false
	case uint64:
		u, signed = v, false
	case uintptr:
		u, signed = uint64(v), false
	case float64:
		return s.float(b, v)
	case time.Duration:
		if s.verb != 'd' && s.verb != 'x' && s.verb != 'X' {
			return s.str(b, v.String())
		}
		i = int64(v)
	case []string:
		if s.verb != 'v' && s.verb != 's' && s.verb != 'q' {
			return s.bad(b, "[]string")
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ' ')
			}
			b = s.str(b, e)
		}
		return append(b, ']')
	case error:
		return s.str(b, v.Error())
	case interface{ String() string }:
		return s.str(b, v.String())
	default:
		return s.bad(b, "?")
	}
	if signed {
		return s.int(b, i)
	}
	return s.uint(b, u)
}

// bad writes the value of a verb that does not suit it as fmt does:
// %!VERB(what).
func (s *spec) bad(b []byte, what string) []byte {
	b = append(b, "%!"...)
	b = append(b, s.verb)
	b = append(b, '(')
	b = append(b, what...)
	return append(b, ')')
}

func (s *spec) str(b []byte, v string) []byte {
	if s.prec >= 0 {
		n := 0
		for i := range v {
			if n == s.prec {
				v = v[:i]
				break
			}
			n++
		}
	}
	switch s.verb {
	case 'v', 's', 'w':
		return append(b, v...)
	case 'q':
		return strconv.AppendQuote(b, v)
	case 'x', 'X':
		return s.hex(b, v)
	}
	return s.bad(b, "string="+v)
}

func (s *spec) hex(b []byte, v string) []byte {
	digits := "0123456789abcdef"
	if s.verb == 'X' {
		digits = "0123456789ABCDEF"
	}
	for i := 0; i < len(v); i++ {
		b = append(b, digits[v[i]>>4], digits[v[i]&15])
	}
	return b
}

func (s *spec) int(b []byte, v int64) []byte {
	if v < 0 {
		switch s.verb {
		case 'd', 'v', 'x', 'X':
			b = append(b, '-')
			return s.uint(b, uint64(-v))
		}
	}
	return s.uint(b, uint64(v))
}

func (s *spec) uint(b []byte, v uint64) []byte {
	switch s.verb {
	case 'd', 'v':
		return strconv.AppendUint(b, v, 10)
	case 'x':
		if s.sharp {
			b = append(b, "0x"...)
		}
		return strconv.AppendUint(b, v, 16)
	case 'X':
		if s.sharp {
			b = append(b, "0X"...)
		}
		return upper(strconv.AppendUint(b, v, 16), len(b))
	case 'q':
		return strconv.AppendQuoteRune(b, rune(v))
	}
	return s.bad(b, "int="+strconv.FormatUint(v, 10))
}

// upper turns the letters of b[from:] to upper case.
func upper(b []byte, from int) []byte {
	for i := from; i < len(b); i++ {
		if 'a' <= b[i] && b[i] <= 'f' {
			b[i] -= 'a' - 'A'
		}
	}
	return b
}

func (s *spec) float(b []byte, v float64) []byte {
	switch s.verb {
	case 'v', 'g':
		return strconv.AppendFloat(b, v, 'g', s.prec, 64)
	case 'f':
		prec := s.prec
		if prec < 0 {
			prec = 6
		}
		return strconv.AppendFloat(b, v, 'f', prec, 64)
	}
	return s.bad(b, "float")
}

// Unhex decodes s, hexadecimal digits in pairs of either case, as %x
// writes it. On a bad digit or an odd length it returns the bytes before
// it and false, as encoding/hex's DecodeString.
func Unhex(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s)/2)
	for i := 0; i+1 < len(s); i += 2 {
		hi, ok1 := HexDigit(s[i])
		lo, ok2 := HexDigit(s[i+1])
		if !ok1 || !ok2 {
			return b, false
		}
		b = append(b, hi<<4|lo)
	}
	return b, len(s)%2 == 0
}

// HexDigit returns the value of c, a hexadecimal digit of either case,
// and false if c is none: the one reader of a hex digit for [Unhex],
// netaddr's IPv6 fields and jsonlite's \u escapes (once: not inlined
// where it is called).
//
//go:noinline
func HexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
