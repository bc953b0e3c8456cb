#!/usr/bin/env bash
# Soaks the built relay over every door (see TestSoak in soak_test.go):
#   scripts/soak.sh [DURATION]     (default 5m; CI runs it with 30s)
# Many clients connect, chat, disconnect at random and resume for
# DURATION, then it prints the account: sent, posted, dropped by counted
# reason, delivered, replayed by resume, and the relay's RSS, fds and
# goroutines at the end against the start. It fails unless the account
# adds up exactly and the fds and goroutines came back.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5m}
# go test's own bound: the soak, and up to 10 minutes of setup and checks.
case $dur in
*h) secs=$((${dur%h} * 3600)) ;;
*m) secs=$((${dur%m} * 60)) ;;
*s) secs=${dur%s} ;;
*) echo "soak.sh: want a duration such as 30s, 5m or 1h, not $dur" >&2; exit 2 ;;
esac
report=$(mktemp)
log=$(mktemp)
trap 'rm -f "$report" "$log"' EXIT
if ! ROOMRELAY_SOAK=$dur ROOMRELAY_SOAK_REPORT=$report \
  go test -run '^TestSoak$' -count=1 -v -timeout "$((secs + 600))s" . >"$log" 2>&1; then
  cat "$log"
  exit 1
fi
cat "$report"
