// Package jsonlite decodes the little JSON that roomrelay reads from its
// config file and its clients' hellos: a value into a tree, then a tree
// into a struct by its fields' json tags. It is encoding/json's decoding
// side cut down to what those need, so that the minimal build leaves
// encoding/json (about 0.4 MB of a mipsle binary) out: numbers stay
// text ([Number]), keys given twice are reported, unknown keys are
// errors, and the errors read as encoding/json's.
package jsonlite

import (
	"errors"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Number is a JSON number as written.
type Number string

func (n Number) String() string { return string(n) }

// SyntaxError is invalid JSON. Offset counts the bytes up to and
// including the bad one.
type SyntaxError struct {
	msg    string
	Offset int64
}

func (e *SyntaxError) Error() string { return e.msg }

// TypeError is a value of the wrong kind for its field. Field is the key
// path ("relay.limits.queue"), Value the kind found ("string",
// "number -1").
type TypeError struct {
	Field string
	Value string
}

func (e *TypeError) Error() string {
	return "json: cannot unmarshal " + e.Value + " into field " + e.Field
}

// Filler is a type that fills itself from a decoded value (a string, a
// Number, a bool, nil, []any or map[string]any).
type Filler interface {
	FillJSON(v any) error
}

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
		c := p.b[p.i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, p.bad("in \\u hexadecimal character escape")
		}
		r = r<<4 | rune(c)
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

// Fill stores the tree v (as [Parse] gives it) in the value dst points
// to, as encoding/json's Unmarshal would with unknown fields disallowed:
// an object fills a struct by its fields' json tags, null leaves a value
// as it is. It fills what it can and returns the first problem: a
// *TypeError, or an unknown field.
func Fill(v any, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("jsonlite: Fill wants a non-nil pointer")
	}
	f := filler{}
	f.fill(v, rv.Elem(), "")
	return f.err
}

type filler struct{ err error }

func (f *filler) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

// kind names the kind of v as encoding/json's type errors do.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case Number:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	}
	return "object"
}

func (f *filler) fill(v any, dst reflect.Value, path string) {
	if dst.CanAddr() {
		if u, ok := dst.Addr().Interface().(Filler); ok {
			if err := u.FillJSON(v); err != nil {
				f.fail(err)
			}
			return
		}
	}
	if v == nil {
		switch dst.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			dst.SetZero()
		}
		return
	}
	mismatch := func() { f.fail(&TypeError{Field: path, Value: kind(v)}) }
	switch dst.Kind() {
	case reflect.Pointer:
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		f.fill(v, dst.Elem(), path)
	case reflect.Interface:
		if dst.NumMethod() != 0 {
			mismatch()
			return
		}
		dst.Set(reflect.ValueOf(v))
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			mismatch()
			return
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			mismatch()
			return
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(Number)
		if !ok {
			mismatch()
			return
		}
		i, err := strconv.ParseInt(string(n), 10, dst.Type().Bits())
		if err != nil {
			f.fail(&TypeError{Field: path, Value: "number " + string(n)})
			return
		}
		dst.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := v.(Number)
		if !ok {
			mismatch()
			return
		}
		u, err := strconv.ParseUint(string(n), 10, dst.Type().Bits())
		if err != nil {
			f.fail(&TypeError{Field: path, Value: "number " + string(n)})
			return
		}
		dst.SetUint(u)
	case reflect.Float32, reflect.Float64:
		n, ok := v.(Number)
		if !ok {
			mismatch()
			return
		}
		x, err := strconv.ParseFloat(string(n), dst.Type().Bits())
		if err != nil {
			f.fail(&TypeError{Field: path, Value: "number " + string(n)})
			return
		}
		dst.SetFloat(x)
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			mismatch()
			return
		}
		s := reflect.MakeSlice(dst.Type(), len(arr), len(arr))
		for i, e := range arr {
			f.fill(e, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		dst.Set(s)
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok || dst.Type().Key().Kind() != reflect.String {
			mismatch()
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(dst.Type(), len(obj)))
		}
		for _, k := range sortedKeys(obj) {
			e := reflect.New(dst.Type().Elem()).Elem() // each element from its zero value, as encoding/json
			f.fill(obj[k], e, join(path, k))
			dst.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
		}
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			mismatch()
			return
		}
		t := dst.Type()
		for _, k := range sortedKeys(obj) {
			i := field(t, k)
			if i < 0 {
				f.fail(errors.New("json: unknown field " + strconv.Quote(k)))
				continue
			}
			f.fill(obj[k], dst.Field(i), join(path, k))
		}
	default:
		mismatch()
	}
}

// sortedKeys returns obj's keys in order, so that the first problem is
// the same every time.
func sortedKeys(obj map[string]any) []string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// join is the path of key k in the object at path.
func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// field returns the index of the exported field of t that the key k
// names by its json tag (or its name, without one), matched exactly or
// else without regard to case, as encoding/json does; -1 if none.
func field(t reflect.Type, k string) int {
	fold := -1
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if name == k {
			return i
		}
		if fold < 0 && strings.EqualFold(name, k) {
			fold = i
		}
	}
	return fold
}
