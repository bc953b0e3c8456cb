#!/usr/bin/env bash
# crosscompile.sh builds static roomrelay binaries for Linux routers and
# single-board computers into dist/ (dist/roomrelay-TARGET), with
# dist/SHA256SUMS beside them. Builds with tags are named after them
# (TAGS=minimal: dist/roomrelay-minimal-TARGET), beside the full builds.
#
#   scripts/crosscompile.sh [--verify] [TARGET...]
#
# Targets (all of them when none is named):
#
#   amd64 386 armv5 armv6 armv7 arm64 mips mipsle mips64 mips64le
#
# The MIPS targets use soft float: most MIPS router SoCs have no FPU. armv5
# suits old ARM9 boards (Kirkwood NAS, early routers), armv6 the first
# Raspberry Pi and the Pi Zero, armv7 the Pi 2 and most 32-bit ARM routers.
#
# Environment:
#
#   VERSION  the version stamped into the binary (roomrelay version);
#            default: git describe --always --dirty
#   TAGS     build tags passed to go build -tags (default: none), such as
#            minimal: the relay and its line door only
#   DIST     where the binaries and SHA256SUMS go (default: dist, in the
#            repository)
#   GO       the go command (default: go)
#
# The build is reproducible: CGO is off, paths are trimmed, the build ID
# is empty and the version is the only stamp, so the same commit built with
# the same Go release gives the same bytes wherever it is built.
# --verify proves it for the named targets: it clones HEAD twice into
# temporary directories, builds each clone (the second with an empty build
# cache), and compares the sha256 of every binary. It leaves dist/ alone.
set -euo pipefail

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
cd "$(dirname "$self")/.."
root=$(pwd)

GO=${GO:-go}
TAGS=${TAGS:-}
DIST=${DIST:-dist}
# The binaries' names: roomrelay-TARGET, or roomrelay-TAG1-TAG2-TARGET.
tagname=$(echo "$TAGS" | tr -s ' ,' '--' | sed 's/^-//; s/-$//')
prefix=roomrelay-${tagname:+$tagname-}

all_targets=(amd64 386 armv5 armv6 armv7 arm64 mips mipsle mips64 mips64le)

die() { echo "crosscompile: $*" >&2; exit 2; }

# target_env prints the GOARCH and the per-architecture variables of a
# target, one assignment a line. Every variant variable is pinned so that
# a setting in the caller's environment cannot change the bytes.
target_env() {
	case $1 in
	amd64) echo GOARCH=amd64 GOAMD64=v1 ;;
	386) echo GOARCH=386 GO386=sse2 ;;
	armv5) echo GOARCH=arm GOARM=5 ;;
	armv6) echo GOARCH=arm GOARM=6 ;;
	armv7) echo GOARCH=arm GOARM=7 ;;
	arm64) echo GOARCH=arm64 GOARM64=v8.0 ;;
	mips) echo GOARCH=mips GOMIPS=softfloat ;;
	mipsle) echo GOARCH=mipsle GOMIPS=softfloat ;;
	mips64) echo GOARCH=mips64 GOMIPS64=softfloat ;;
	mips64le) echo GOARCH=mips64le GOMIPS64=softfloat ;;
	*) return 1 ;;
	esac
}

verify=0
targets=()
for arg in "$@"; do
	case $arg in
	--verify) verify=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$self" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) die "unknown flag $arg (want --verify)" ;;
	*)
		target_env "$arg" >/dev/null || die "unknown target $arg (want one of: ${all_targets[*]})"
		targets+=("$arg")
		;;
	esac
done
if [ ${#targets[@]} -eq 0 ]; then
	targets=("${all_targets[@]}")
fi

# build SRC OUT TARGET VERSION builds one static binary of the module in
# SRC into OUT.
build() {
	local src=$1 out=$2 target=$3 version=$4
	# shellcheck disable=SC2046 # target_env's words are meant to split
	(cd "$src" && env CGO_ENABLED=0 GOOS=linux $(target_env "$target") \
		"$GO" build -trimpath -buildvcs=false -tags "$TAGS" \
		-ldflags "-s -w -buildid= -X main.version=$version" \
		-o "$out" .)
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [ "$verify" = 1 ]; then
	commit=$(git rev-parse HEAD)
	tmp=$(mktemp -d)
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	for side in a b; do
		git clone -q --no-hardlinks "$root" "$tmp/src-$side"
		git -C "$tmp/src-$side" checkout -q --detach "$commit"
	done
	mkdir -p "$tmp/cache-b" "$tmp/out-a" "$tmp/out-b"
	version=${VERSION:-$(git -C "$tmp/src-a" describe --always --dirty)}
	echo "verifying $commit ($version) with $("$GO" version)"
	echo "build a: $tmp/src-a, the usual build cache"
	echo "build b: $tmp/src-b, an empty build cache"
	same=0
	differ=0
	printf '%-10s %-64s %s\n' target sha256 result
	for t in "${targets[@]}"; do
		build "$tmp/src-a" "$tmp/out-a/$prefix$t" "$t" "$version"
		GOCACHE="$tmp/cache-b" build "$tmp/src-b" "$tmp/out-b/$prefix$t" "$t" "$version"
		a=$(sha256 "$tmp/out-a/$prefix$t")
		b=$(sha256 "$tmp/out-b/$prefix$t")
		if [ "$a" = "$b" ]; then
			printf '%-10s %-64s %s\n' "$t" "$a" identical
			same=$((same + 1))
		else
			printf '%-10s %-64s %s\n' "$t" "$a" "DIFFERENT (b: $b)"
			differ=$((differ + 1))
		fi
	done
	echo "reproducible: $same identical, $differ different"
	[ "$differ" -eq 0 ]
	exit
fi

version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
mkdir -p "$DIST"
dist=$(cd "$DIST" && pwd)
echo "building roomrelay $version with $("$GO" version)${TAGS:+, tags $TAGS}"
for t in "${targets[@]}"; do
	build "$root" "$dist/$prefix$t" "$t" "$version"
done

(
	cd "$dist"
	# Keep the sums of targets not rebuilt this time, replace the others.
	if [ -f SHA256SUMS ]; then
		for t in "${targets[@]}"; do
			grep -v "  $prefix$t\$" SHA256SUMS >SHA256SUMS.tmp || true
			mv SHA256SUMS.tmp SHA256SUMS
		done
	fi
	for t in "${targets[@]}"; do
		sha256sum "$prefix$t" >>SHA256SUMS
	done
	sort -k2 SHA256SUMS -o SHA256SUMS
)

printf '%-10s %10s %8s\n' target bytes MiB
for t in "${targets[@]}"; do
	size=$(wc -c <"$dist/$prefix$t")
	printf '%-10s %10d %8s\n' "$t" "$size" "$(awk -v n="$size" 'BEGIN { printf "%.2f", n / 1048576 }')"
done
echo "binaries: $dist/$prefix*; sums: $dist/SHA256SUMS"
