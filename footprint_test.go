package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
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
