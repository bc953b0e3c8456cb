package cmdflag

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// listValue is a flag of its own kind, as roomrelay's -listen.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }
func (l *listValue) Set(v string) error {
	if v == "bad" {
		return errors.New("no good")
	}
	*l = append(*l, v)
	return nil
}

// result is what a parse did: its error, what it wrote, the values, the
// flags set and the arguments left.
type result struct {
	Err, Out           string
	Config, Name, List string
	Quiet              bool
	Set                []string
	Args               []string
	Defaults           string
}

// TestLikeFlag: a Set parses, fails and lists its flags as package flag
// does with ContinueOnError.
func TestLikeFlag(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"-config", "x.json", "rest", "-quiet"},
		{"--config=x.json", "-quiet", "-name", "bob"},
		{"-quiet=false", "-list", "a", "-list=b"},
		{"-quiet=maybe"},
		{"-list", "bad"},
		{"-name"},
		{"-bogus"},
		{"-h"},
		{"-help"},
		{"---x"},
		{"-=x"},
		{"--", "-quiet"},
		{"-", "-quiet"},
	} {
		var want, got result
		{
			var out bytes.Buffer
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(&out)
			fs.Usage = func() {}
			config := fs.String("config", "config.json", "configuration `file`")
			name := fs.String("name", "", "the name\non two lines")
			quiet := fs.Bool("quiet", false, "say less")
			var list listValue
			fs.Var(&list, "list", "repeatable, `ITEM`")
			if err := fs.Parse(args); err != nil {
				want.Err = err.Error()
			}
			want.Out = out.String()
			want.Config, want.Name, want.List, want.Quiet = *config, *name, list.String(), *quiet
			fs.Visit(func(f *flag.Flag) { want.Set = append(want.Set, f.Name) })
			want.Args = fs.Args()
			out.Reset()
			fs.PrintDefaults()
			want.Defaults = out.String()
		}
		{
			var out bytes.Buffer
			fs := New(&out)
			config := fs.String("config", "config.json", "configuration `file`")
			name := fs.String("name", "", "the name\non two lines")
			quiet := fs.Bool("quiet", false, "say less")
			var list listValue
			fs.Var(&list, "list", "repeatable, `ITEM`")
			if err := fs.Parse(args); err != nil {
				got.Err = err.Error()
			}
			got.Out = out.String()
			got.Config, got.Name, got.List, got.Quiet = *config, *name, list.String(), *quiet
			fs.Visit(func(f *Flag) { got.Set = append(got.Set, f.Name) })
			got.Args = fs.Args()
			out.Reset()
			fs.PrintDefaults()
			got.Defaults = out.String()
		}
		if len(want.Args) == 0 {
			want.Args = nil
		}
		if len(got.Args) == 0 {
			got.Args = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q (-flag +cmdflag):\n%s", args, diff)
		}
	}
}
