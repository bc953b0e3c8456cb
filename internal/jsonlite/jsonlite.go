// Package jsonlite decodes the little JSON that roomrelay reads from its
// config file and its clients' hellos into a tree of maps, slices,
// strings, numbers and booleans; its readers take their fields from the
// tree themselves, without reflect. It is encoding/json's parser cut
// down to what those need, so that the minimal build leaves
// encoding/json (about 0.4 MB of a mipsle binary) and reflect out:
// numbers stay text ([Number]), keys given twice are reported, and the
// errors read as encoding/json's.
package jsonlite

import (
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"roomrelay/internal/fmtlite"
)

// Number is a JSON number as written.
type Number string

func (n Number) String() string { return string(n) }

// errRange is a number too large for a float64.
var errRange = errors.New("value out of range")

// Float64 returns n, a valid JSON number, as a float64, without
// strconv.ParseFloat and its tables (about 20 KB of a mipsle binary). It
// is ParseFloat's value exactly for a number whose digits, trailing
// zeros aside, make less than 2^53 (15 digits at least), times a power of
// ten from 10^-22 to 10^22 (every number a config file gives as a rate);
// beyond that it is within a few units in the last place of it. A number
// too large for a float64 is an error, as with ParseFloat.
func (n Number) Float64() (float64, error) {
	s := string(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var m uint64 // the first 19 significant digits
	exp := 0     // the power of ten m is multiplied by
	digits, dot := 0, false
	i := 0
	for ; i < len(s) && (s[i] == '.' || '0' <= s[i] && s[i] <= '9'); i++ {
		switch c := s[i]; {
		case c == '.':
			dot = true
		case digits < 19:
			if m = m*10 + uint64(c-'0'); m > 0 {
				digits++
			}
			if dot {
				exp--
			}
		case !dot:
			exp++ // a digit past the 19th, before the point
		}
	}
	if i < len(s) { // e or E, then the exponent
		e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil { // more digits than an int holds
			e = 1 << 20
			if strings.HasPrefix(s[i+1:], "-") {
				e = -e
			}
		}
		exp = min(max(exp+e, -1<<20), 1<<20)
	}
	for m != 0 && m%10 == 0 {
		m /= 10
		exp++
	}
	for exp > 22 && m < 1<<53/10 { // 1234e25 is 1234000e22, exactly
		m *= 10
		exp--
	}
	f := float64(m)
	switch {
	case m == 0:
	case exp > 0:
		f *= math.Pow10(exp) // one rounding, so exact, if m < 2^53 and exp <= 22 (10^22 is a float64); +Inf past 1e308
	case exp < 0:
		if exp < -308 {
			f /= 1e308
			exp += 308
		}
		f /= math.Pow10(-exp)
	}
	if neg {
		f = -f
	}
	if math.IsInf(f, 0) {
		return f, errRange
	}
	return f, nil
}

// SyntaxError is invalid JSON. Offset counts the bytes up to and
// including the bad one.
type SyntaxError struct {
	msg    string
	Offset int64
}

func (e *SyntaxError) Error() string { return e.msg }

// maxDepth bounds the nesting of arrays and objects, as in encoding/json.
const maxDepth = 10000

// Parse decodes the JSON value at the start of b (after white space)
// into a tree of map[string]any, []any, string, Number, bool and nil. It
// returns the offset just after the value and the path of every key an
// object holds twice ("relay.limits.queue", "rooms[2].name"), in the
// order met, the first maxDups of them. b holding only white space gives io.EOF; b ending inside
// the value io.ErrUnexpectedEOF; anything else invalid a *SyntaxError.
func Parse(b []byte) (v any, end int, dups []string, err error) {
	p := parser{b: b}
	p.space()
	if p.i == len(b) {
		return nil, p.i, nil, io.EOF
	}
	v, err = p.value(0)
	if err != nil {
		return nil, p.i, p.dups, err
	}
	return v, p.i, p.dups, nil
}

type parser struct {
	b    []byte
	i    int
	dups []string
	path []step // down to the value being read: its path is made only for a duplicate key (see at)
}

// step is one step of a path: an object's key, or an array's index.
type step struct {
	key   string
	index int // -1 for a key
}

// maxDups bounds the duplicate keys Parse reports: each path is as long
// as its nesting is deep.
const maxDups = 64

// at returns the path of key k in the object being read.
func (p *parser) at(k string) string {
	var b strings.Builder
	for _, s := range p.path {
		if s.index >= 0 {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(k)
	return b.String()
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// bad is the error for the byte at p.i, which is no part of what was
// expected there.
func (p *parser) bad(context string) error {
	if p.i >= len(p.b) {
		return io.ErrUnexpectedEOF
	}
	return &SyntaxError{msg: "invalid character " + quoteChar(p.b[p.i]) + " " + context, Offset: int64(p.i + 1)}
}

// quoteChar formats c as encoding/json's errors do.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

func (p *parser) value(depth int) (any, error) {
	if p.i >= len(p.b) {
		return nil, io.ErrUnexpectedEOF
	}
	switch c := p.b[p.i]; {
	case c == '{':
		if depth >= maxDepth {
			return nil, p.bad("exceeded max depth")
		}
		return p.object(depth + 1)
	case c == '[':
		if depth >= maxDepth {
			return nil, p.bad("exceeded max depth")
		}
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	}
	return nil, p.bad("looking for beginning of value")
}

func (p *parser) literal(word string) error {
	for j := 0; j < len(word); j++ {
		if p.i >= len(p.b) {
			return io.ErrUnexpectedEOF
		}
		if p.b[p.i] != word[j] {
			return p.bad("in literal " + word + " (expecting " + quoteChar(word[j]) + ")")
		}
		p.i++
	}
	return nil
}

func (p *parser) object(depth int) (any, error) {
	p.i++ // {
	obj := map[string]any{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return obj, nil
	}
	for {
		p.space()
		if p.i >= len(p.b) {
			return nil, io.ErrUnexpectedEOF
		}
		if p.b[p.i] != '"' {
			return nil, p.bad("looking for beginning of object key string")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		key := k.(string)
		p.space()
		if p.i >= len(p.b) {
			return nil, io.ErrUnexpectedEOF
		}
		if p.b[p.i] != ':' {
			return nil, p.bad("after object key")
		}
		p.i++
		p.space()
		if _, ok := obj[key]; ok && len(p.dups) < maxDups {
			p.dups = append(p.dups, p.at(key))
		}
		p.path = append(p.path, step{key: key, index: -1})
		v, err := p.value(depth)
		p.path = p.path[:len(p.path)-1]
		if err != nil {
			return nil, err
		}
		obj[key] = v
		if more, err := p.more('}', "after object key:value pair"); !more {
			return obj, err
		}
	}
}

// more reads what follows an element of an object or array: a comma
// (true: another element comes) or the closing byte end (false).
func (p *parser) more(end byte, context string) (bool, error) {
	p.space()
	switch {
	case p.i >= len(p.b):
		return false, io.ErrUnexpectedEOF
	case p.b[p.i] == ',':
		p.i++
		return true, nil
	case p.b[p.i] == end:
		p.i++
		return false, nil
	}
	return false, p.bad(context)
}

func (p *parser) array(depth int) (any, error) {
	p.i++ // [
	arr := []any{}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return arr, nil
	}
	for {
		p.space()
		p.path = append(p.path, step{index: len(arr)})
		v, err := p.value(depth)
		p.path = p.path[:len(p.path)-1]
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		if more, err := p.more(']', "after array element"); !more {
			return arr, err
		}
	}
}

// str decodes the string at p.i (its opening quote), as encoding/json
// does: invalid UTF-8 and lone surrogates become U+FFFD.
func (p *parser) str() (any, error) {
	p.i++ // "
	var out []byte
	start := p.i
	for {
		if p.i >= len(p.b) {
			return nil, io.ErrUnexpectedEOF
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			if out == nil && utf8.Valid(p.b[start:p.i]) {
				s := string(p.b[start:p.i])
				p.i++
				return s, nil
			}
			p.i++
			return string(out), nil
		case c < 0x20:
			return nil, p.bad("in string literal")
		case c == '\\':
			if out == nil {
				out = append([]byte{}, p.b[start:p.i]...)
			}
			p.i++
			if p.i >= len(p.b) {
				return nil, io.ErrUnexpectedEOF
			}
			switch e := p.b[p.i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return nil, err
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if p.i+2 < len(p.b) && p.b[p.i+1] == '\\' && p.b[p.i+2] == 'u' {
						save := p.i
						p.i += 2
						if r2, err = p.hex4(); err != nil {
							return nil, err
						}
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							out = utf8.AppendRune(out, d)
							break
						}
						p.i = save
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, p.bad("in string escape code")
			}
			p.i++
		case c < utf8.RuneSelf:
			if out != nil {
				out = append(out, c)
			}
			p.i++
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size == 1 && out == nil {
				out = append([]byte{}, p.b[start:p.i]...)
			}
			if out != nil {
				out = utf8.AppendRune(out, r)
			}
			p.i += size
		}
	}
}

// hex4 reads the 4 hex digits after \u, leaving p.i on the last.
func (p *parser) hex4() (rune, error) {
	var r rune
	for range 4 {
		p.i++
		if p.i >= len(p.b) {
			return 0, io.ErrUnexpectedEOF
		}
		d, ok := fmtlite.HexDigit(p.b[p.i])
		if !ok {
			return 0, p.bad("in \\u hexadecimal character escape")
		}
		r = r<<4 | rune(d)
	}
	return r, nil
}

func (p *parser) number() (any, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	// A number may end the input: it is whole if its last part has digits.
	need := func(context string) error {
		if p.i >= len(p.b) {
			return io.ErrUnexpectedEOF
		}
		return p.bad(context)
	}
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, need("in numeric literal")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, need("after decimal point in numeric literal")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, need("in exponent of numeric literal")
		}
	}
	return Number(p.b[start:p.i]), nil
}
