package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse: the config reader never panics, and a file it takes, written
// out again as JSON, reads back the same.
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile(filepath.Join("..", "..", "config.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped)
	for _, s := range []string{
		`{}`, `{"relay":{"limits":{"history":64}}}`, `{"relay":{"listen":{"line":""}}}`,
		`{"relay":{"timeouts":{"idle":"1h"},"timeouts":{}}}`, "\ufeff{}", `{"client":{"name":"first client"}}`,
		`{"relay":{"limits":{"rate":1e400}}}`, `[]`, `{"relay":`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("Parse(%q) took a config that does not marshal: %v", b, err)
		}
		d, err := Parse(again)
		if err != nil {
			t.Fatalf("Parse(%q) took a config that reads back as an error: %v\n%s", b, err, again)
		}
		if diff := cmp.Diff(c, d); diff != "" {
			t.Fatalf("Parse(%q) round trip (-first +again):\n%s", b, diff)
		}
	})
}
