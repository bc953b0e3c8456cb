package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Write replaces the file whole, with its mode, and leaves no temporary
// file beside it, synced or not.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	for i, sync := range []bool{true, false} {
		want := []string{"first\n", "second, longer\n"}[i]
		if err := Write(path, []byte(want), 0o600, sync); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Errorf("read %q, %v; want %q", b, err, want)
		}
		if fi, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode())
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("%d files in the directory, want 1", len(ents))
		}
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, 0o600, true); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
}
