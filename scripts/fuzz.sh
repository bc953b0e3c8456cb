#!/usr/bin/env bash
# Runs every fuzz test of roomrelay for a while each:
#   scripts/fuzz.sh [DURATION]     (default 60s; CI runs it with 3s)
# A crash is written by `go test` under the package's testdata/fuzz/ and
# stays there as a regression case: commit it with the fix.
#
# Go 1.26's fuzz coordinator can end a run that found nothing with a bare
# "context deadline exceeded" when -fuzztime runs out while a worker is
# busy (golang/go#75804, fixed in Go 1.27). Such a run wrote no failing
# input; it is reported and does not fail the script. Any other failure
# does.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-60s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $name ($dur)"
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" "$pkg" >"$log" 2>&1; then
      tail -n 1 "$log"
      continue
    fi
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log" &&
      [ "$(grep -c -- '--- FAIL' "$log")" = 1 ] && ! grep -qE 'panic:|_test\.go:[0-9]+:' "$log"; then
      echo "nothing found; the run ended on Go's fuzz deadline race (golang/go#75804), not on an input"
      continue
    fi
    cat "$log"
    exit 1
  done
done
