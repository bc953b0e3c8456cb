package main

import (
	"os"
	"syscall"
	"testing"
)

// TestStoreTmpfs is TestStoreFull on a full disk: a tmpfs of 64 KiB,
// where a write fails with "no space left on device". It needs root (or
// a user namespace's) to mount it, and skips otherwise.
func TestStoreTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs roomrelay")
	}
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	storeFull(t, dir, "no space left on device")
}
