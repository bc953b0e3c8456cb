package jsonlite

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// std decodes b as encoding/json does, numbers kept as text, for
// comparison: the value (with json.Number turned into Number), the end
// of the first value and the error's text and offset.
func std(b []byte) (any, int, string, int64) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, 0, se.Error(), se.Offset
		}
		if err == io.EOF {
			return nil, 0, "EOF", 0
		}
		return nil, 0, err.Error(), 0
	}
	return numbers(v), int(dec.InputOffset()), "", 0
}

func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		return Number(v)
	case []any:
		for i := range v {
			v[i] = numbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = numbers(v[k])
		}
	}
	return v
}

func lite(b []byte) (any, int, string, int64) {
	v, end, _, err := Parse(b)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			return nil, 0, se.Error(), se.Offset
		}
		return nil, 0, err.Error(), 0
	}
	return v, end, "", 0
}

var samples = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, ` {"a": [1, 2.5, -3e+2, 0, true, false, null, "x"]} `, `{} {}`, `1 2`,
	`{"a":{"b":{"c":"d"}}}`, `"\u00e9\ud83d\ude00\n\t\\\/\""`, `"\ud83d"`, `"\ud83dx"`, `"\udc00\ud83d"`,
	"\"caf\xc3\xa9 \xff\"", `"a` + "\n" + `"`, `{"a" 1}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`, `[1,]`, `[1 2]`,
	`tru`, `trux`, `nul`, `nulll`, `-`, `-a`, `01`, `1.`, `1.e5`, `1e`, `1e+`, `.5`, `+1`, `"\x"`, `"\u12g4"`,
	`{"a":`, `{"a"`, `{"a":1`, `[`, `"abc`, `{'a':1}`, `{"a":1}}`, `[1]]`, "\x00", `{"a":-0.0e-0}`,
}

func TestParseAsEncodingJSON(t *testing.T) {
	for _, s := range samples {
		wv, wend, werr, woff := std([]byte(s))
		gv, gend, gerr, goff := lite([]byte(s))
		if werr == "unexpected EOF" || werr == "EOF" {
			// json.Decoder reads a stream: where a value is cut short, so is
			// the stream; both say so.
			if gerr != werr {
				t.Errorf("%q: error %q, want %q", s, gerr, werr)
			}
			continue
		}
		if diff := cmp.Diff(wv, gv); diff != "" {
			t.Errorf("%q (-encoding/json +jsonlite):\n%s", s, diff)
		}
		if gerr != werr || goff != woff || gend != wend {
			t.Errorf("%q: error %q at %d, end %d; encoding/json: %q at %d, end %d", s, gerr, goff, gend, werr, woff, wend)
		}
	}
}

func TestParseDuplicates(t *testing.T) {
	_, _, dups, err := Parse([]byte(`{"a":{"b":1,"b":2},"r":[{"n":1,"n":2}],"a":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.b", "r[0].n", "a"}, dups); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseDepth(t *testing.T) {
	for _, n := range []int{maxDepth, maxDepth + 1} {
		deep := append(bytes.Repeat([]byte("["), n), bytes.Repeat([]byte("]"), n)...)
		wv, wend, werr, woff := std(deep)
		gv, gend, gerr, goff := lite(deep)
		if gerr != werr || goff != woff || gend != wend || (werr == "") != (gv != nil) || (wv == nil) != (gv == nil) {
			t.Errorf("%d nested arrays: error %q at %d, end %d; encoding/json: %q at %d, end %d", n, gerr, goff, gend, werr, woff, wend)
		}
	}
}

type inner struct {
	N int `json:"n"`
}

type target struct {
	S     string           `json:"s"`
	I     int              `json:"i"`
	I8    int8             `json:"i8"`
	U     *uint64          `json:"u,omitempty"`
	F     float64          `json:"f"`
	B     bool             `json:"b"`
	L     []string         `json:"l"`
	In    inner            `json:"in"`
	P     *inner           `json:"p"`
	M     map[string]inner `json:"m"`
	Plain string
	skip  int
}

// FuzzParse: Parse takes what encoding/json takes, gives the same value
// and end, and refuses what it refuses with the same error at the same
// place.
func FuzzParse(f *testing.F) {
	for _, s := range samples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		wv, wend, werr, woff := std(b)
		gv, gend, gerr, goff := lite(b)
		if werr == "unexpected EOF" || werr == "EOF" {
			if gerr != werr {
				t.Fatalf("%q: error %q, want %q", b, gerr, werr)
			}
			return
		}
		if werr == "" && gerr == "" {
			if diff := cmp.Diff(wv, gv); diff != "" {
				t.Fatalf("%q (-encoding/json +jsonlite):\n%s", b, diff)
			}
		}
		if gerr != werr || goff != woff || gend != wend {
			t.Fatalf("%q: error %q at %d, end %d; encoding/json: %q at %d, end %d", b, gerr, goff, gend, werr, woff, wend)
		}
	})
}

// Nesting costs memory in proportion to the input, not to its square:
// a hello line of 64 KB of brackets (relay.limits.max_line_bytes at its
// most), read before any password, took some 150 MB while every level
// carried its own copy of the key path down to it.
func TestDeepNestingLinear(t *testing.T) {
	for _, tc := range []struct{ name, open, close string }{
		{"arrays", "[", "]"},
		{"objects", `{"k":`, "}"},
		{"duplicates", `{"k":1,"k":`, "}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := maxDepth - 1
			in := []byte(strings.Repeat(tc.open, n) + "1" + strings.Repeat(tc.close, n))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, dups, err := Parse(in)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "duplicates" && len(dups) == 0 {
				t.Error("no duplicate keys reported")
			}
			if got, most := after.TotalAlloc-before.TotalAlloc, uint64(64*len(in)+(8<<20)); got > most {
				t.Errorf("%d bytes of input took %d bytes, want at most %d", len(in), got, most)
			}
		})
	}
}

func TestDuplicatePaths(t *testing.T) {
	_, _, dups, err := Parse([]byte(`[{"a":[{"b":1},{"c":{"d":1,"d":2},"c":3}],"a":0}]`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"[0].a[1].c.d", "[0].a[1].c", "[0].a"}, dups); diff != "" {
		t.Errorf("duplicate keys (-want +got):\n%s", diff)
	}
}
