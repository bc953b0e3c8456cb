package main

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// leftOut are the packages the minimal build does without (README,
// "Footprint"), each of which would bring back tens of kilobytes of a
// mipsle binary, with the only packages that may import them: fmt is
// imported by runtime/debug, whose SetGCPercent and SetMemoryLimit reach
// none of it, and reflect by encoding/binary, whose byte orders do not
// use it.
var leftOut = map[string][]string{
	"fmt":              {"runtime/debug"},
	"flag":             nil,
	"encoding/json":    nil,
	"net/url":          nil,
	"encoding/hex":     nil,
	"log":              nil,
	"internal/fmtsort": {"fmt"},
	"reflect":          {"fmt", "internal/fmtsort", "encoding/binary"},
	"sort":             nil,
}

// TestMinimalLeavesOut: no package of the minimal build imports a
// package it is meant to leave out.
func TestMinimalLeavesOut(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command("go", "list", "-deps", "-tags", "minimal", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".")
	cmd.Env = append(cmd.Environ(), "GOOS=linux", "GOARCH=mipsle", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if !strings.Contains(string(out), "\nroomrelay/relay ") {
		t.Fatalf("go list -deps lists no roomrelay/relay:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, p := range strings.Fields(imports) {
			if allowed, ok := leftOut[p]; ok && !slices.Contains(allowed, pkg) {
				t.Errorf("in the minimal build %s imports %s", pkg, p)
			}
		}
	}
}

// minimalLimit is what the minimal mipsle binary may weigh (README,
// "Footprint"): a 3 MB router image's budget.
const minimalLimit = 3_000_000

// TestMinimalSize builds the minimal mipsle binary as
// `TAGS=minimal scripts/crosscompile.sh mipsle` does and fails if it is
// over minimalLimit bytes. It prints the size and, for each LOAD segment
// (the file grows in 64 KiB steps of each), how far it is below its next
// step: what the next changes may add before the file grows by one.
func TestMinimalSize(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds the minimal mipsle binary")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skipf("bash is not on PATH: %v", err)
	}
	dist := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "scripts/crosscompile.sh", "mipsle")
	cmd.Env = append(os.Environ(), "DIST="+dist, "TAGS=minimal")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("TAGS=minimal scripts/crosscompile.sh mipsle: %v\n%s", err, out)
	}
	bin := filepath.Join(dist, "roomrelay-minimal-mipsle")
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Logf("roomrelay-minimal-mipsle: %d bytes (limit %d: %d below it)", fi.Size(), minimalLimit, minimalLimit-fi.Size())
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Align == 0 {
			continue
		}
		step := (p.Filesz + p.Align - 1) / p.Align * p.Align
		t.Logf("LOAD %d (%v): %#x bytes in the file, %d below its next %d KiB step", i, p.Flags, p.Filesz, step-p.Filesz, p.Align>>10)
	}
	if fi.Size() > minimalLimit {
		t.Errorf("roomrelay-minimal-mipsle is %d bytes, over the limit of %d: see the README's Footprint for what to leave out", fi.Size(), minimalLimit)
	}
}
