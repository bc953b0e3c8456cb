#!/usr/bin/env bash
# Runs every fuzz test of roomrelay for a while each:
#   scripts/fuzz.sh [DURATION]     (default 60s; CI runs it with 3s)
# A crash is written by `go test` under the package's testdata/fuzz/ and
# stays there as a regression case: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-60s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $name ($dur)"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" "$pkg" >/tmp/fuzz.$$.log 2>&1 || {
      cat /tmp/fuzz.$$.log; rm -f /tmp/fuzz.$$.log; exit 1; }
    tail -n 1 /tmp/fuzz.$$.log
  done
done
rm -f /tmp/fuzz.$$.log
