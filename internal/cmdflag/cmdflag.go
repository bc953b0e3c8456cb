// Package cmdflag reads roomrelay's command-line flags as package flag
// does with ContinueOnError (the same syntax, messages and -h listing),
// for the kinds of flags it has: strings, booleans and values of their
// own. Package flag needs fmt and reflect, which the minimal build leaves
// out.
package cmdflag

import (
	"errors"
	"io"
	"os"
	"roomrelay/internal/sortlite"
	"strconv"
	"strings"
)

// ErrHelp is what Parse returns on -h or -help when no such flag is
// defined.
var ErrHelp = errors.New("flag: help requested")

// Value is a flag's value, as flag.Value.
type Value interface {
	String() string
	Set(string) error
}

// Flag is one flag, as flag.Flag.
type Flag struct {
	Name     string
	Usage    string
	Value    Value
	DefValue string // the value as text when defined
}

// Set is a set of flags, as flag.FlagSet with ContinueOnError.
type Set struct {
	out    io.Writer
	formal map[string]*Flag
	actual map[string]*Flag
	args   []string
}

// New returns an empty set that reports errors on out (os.Stderr when
// nil).
func New(out io.Writer) *Set {
	if out == nil {
		out = os.Stderr
	}
	return &Set{out: out, formal: map[string]*Flag{}, actual: map[string]*Flag{}}
}

// Var defines a flag with value v, whose String is its default.
func (s *Set) Var(v Value, name, usage string) {
	if _, ok := s.formal[name]; ok {
		panic("cmdflag: flag redefined: " + name)
	}
	s.formal[name] = &Flag{Name: name, Usage: usage, Value: v, DefValue: v.String()}
}

// String defines a string flag.
func (s *Set) String(name, value, usage string) *string {
	p := new(string)
	*p = value
	s.Var((*stringValue)(p), name, usage)
	return p
}

// Bool defines a boolean flag: -name alone sets it.
func (s *Set) Bool(name string, value bool, usage string) *bool {
	p := new(bool)
	*p = value
	s.Var((*boolValue)(p), name, usage)
	return p
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("parse error") // as package flag says it
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

// Lookup returns the flag called name, or nil.
func (s *Set) Lookup(name string) *Flag { return s.formal[name] }

// VisitAll calls fn for every flag, in the order of their names.
func (s *Set) VisitAll(fn func(*Flag)) { visit(s.formal, fn) }

// Visit calls fn for every flag that was set, in the order of their
// names.
func (s *Set) Visit(fn func(*Flag)) { visit(s.actual, fn) }

func visit(m map[string]*Flag, fn func(*Flag)) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sortlite.Strings(names)
	for _, name := range names {
		fn(m[name])
	}
}

// Args returns the arguments after the flags.
func (s *Set) Args() []string { return s.args }

// NArg is len(Args()).
func (s *Set) NArg() int { return len(s.args) }

// Arg returns the i'th argument after the flags, or "".
func (s *Set) Arg(i int) string {
	if i < 0 || i >= len(s.args) {
		return ""
	}
	return s.args[i]
}

// Parse reads the flags from args, which hold no command name, up to the
// first argument that is no flag or after "--". An error is written on
// the set's output as well as returned.
func (s *Set) Parse(args []string) error {
	s.args = args
	for {
		ok, err := s.parseOne()
		if err == ErrHelp {
			return err
		}
		if err != nil {
			io.WriteString(s.out, err.Error()+"\n")
			return err
		}
		if !ok {
			return nil
		}
	}
}

func (s *Set) parseOne() (bool, error) {
	if len(s.args) == 0 {
		return false, nil
	}
	a := s.args[0]
	if len(a) < 2 || a[0] != '-' {
		return false, nil
	}
	minuses := 1
	if a[1] == '-' {
		minuses++
		if len(a) == 2 { // "--" ends the flags
			s.args = s.args[1:]
			return false, nil
		}
	}
	name := a[minuses:]
	if len(name) == 0 || name[0] == '-' || name[0] == '=' {
		return false, errors.New("bad flag syntax: " + a)
	}
	s.args = s.args[1:]
	value, hasValue := "", false
	if i := strings.IndexByte(name[1:], '='); i >= 0 { // '=' cannot be first
		name, value, hasValue = name[:i+1], name[i+2:], true
	}
	f, ok := s.formal[name]
	if !ok {
		if name == "help" || name == "h" {
			return false, ErrHelp
		}
		return false, errors.New("flag provided but not defined: -" + name)
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		if !hasValue {
			value = "true"
		}
		if err := f.Value.Set(value); err != nil {
			if hasValue {
				return false, errors.New("invalid boolean value " + strconv.Quote(value) + " for -" + name + ": " + err.Error())
			}
			return false, errors.New("invalid boolean flag " + name + ": " + err.Error())
		}
	} else {
		if !hasValue && len(s.args) > 0 {
			hasValue = true
			value, s.args = s.args[0], s.args[1:]
		}
		if !hasValue {
			return false, errors.New("flag needs an argument: -" + name)
		}
		if err := f.Value.Set(value); err != nil {
			return false, errors.New("invalid value " + strconv.Quote(value) + " for flag -" + name + ": " + err.Error())
		}
	}
	s.actual[name] = f
	return true, nil
}

// PrintDefaults writes every flag with its usage and its default on the
// set's output, as flag.PrintDefaults.
func (s *Set) PrintDefaults() {
	s.VisitAll(func(f *Flag) {
		var b strings.Builder
		b.WriteString("  -" + f.Name)
		name, usage := unquoteUsage(f)
		if name != "" {
			b.WriteString(" " + name)
		}
		if b.Len() <= 4 { // a one-letter boolean flag: usage on the same line
			b.WriteString("\t")
		} else {
			b.WriteString("\n    \t")
		}
		b.WriteString(strings.Join(strings.Split(usage, "\n"), "\n    \t")) // strings.ReplaceAll, without its Replace
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			if _, ok := f.Value.(*stringValue); ok {
				b.WriteString(" (default " + strconv.Quote(f.DefValue) + ")")
			} else {
				b.WriteString(" (default " + f.DefValue + ")")
			}
		}
		b.WriteString("\n")
		io.WriteString(s.out, b.String())
	})
}

// unquoteUsage returns the name of a flag's value, from the first
// back-quoted word of its usage (or its kind), and the usage without the
// back quotes, as flag.UnquoteUsage.
func unquoteUsage(f *Flag) (name, usage string) {
	usage = f.Usage
	if i := strings.IndexByte(usage, '`'); i >= 0 {
		if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
			name = usage[i+1 : i+1+j]
			return name, usage[:i] + name + usage[i+2+j:]
		}
	}
	switch f.Value.(type) {
	case *boolValue:
		return "", usage
	case *stringValue:
		return "string", usage
	}
	return "value", usage
}
