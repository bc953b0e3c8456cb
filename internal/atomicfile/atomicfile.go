// Package atomicfile writes a file so that a reader finds either its old
// content or its new one, never a part; with sync, so does the system
// after a crash (without, a crash may leave the file empty on some file
// systems).
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes b at path with mode perm: into a temporary file beside it,
// then renamed over it. With sync, the file is synced before the rename
// and the directory after it, so that the new content is on the disk when
// Write returns; without, the system writes both when it decides.
func Write(path string, b []byte, perm os.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, there is nothing there
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	if d, err := os.Open(dir); err == nil { // the rename itself, to the disk
		d.Sync()
		d.Close()
	}
	return nil
}
