#!/usr/bin/env bash
# What scripts/setup.sh builds is what `cmake --install` installs: setup.sh --build-only in a fresh
# build dir, then tests/capi/install_test.sh (install into a temporary prefix, consumers via
# find_package and pkg-config) on that dir, and the server binary is installed too.
# Usage: setup_install_test.sh <media-file> <version> <c-compiler>
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 <media-file> <version> <c-compiler>" >&2; exit 2; }
media=$1 version=$2 cc=$3
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hlsrelay-setup-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== scripts/setup.sh --build-only into $work/build"
HLSRELAY_BUILD_DIR=$work/build "$repo/scripts/setup.sh" --build-only </dev/null
echo "== cmake --install (server)"
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
test -x "$work/prefix/bin/hlsrelay-server" || { echo "FAIL: hlsrelay-server not installed" >&2; exit 1; }
"$work/prefix/bin/hlsrelay-server" --version
echo "== tests/capi/install_test.sh on the set-up build"
bash "$repo/tests/capi/install_test.sh" "$work/build" "$repo/tests/capi/consumer" "$media" "$version" "$cc"
echo "PASS"
