#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs a consumer via find_package and pkg-config.
set -euo pipefail

if [ $# -ne 5 ]; then
  echo "usage: $0 <build-dir> <consumer-source-dir> <media-file> <expected-version> <c-compiler>" >&2
  exit 2
fi
build_dir=$1 consumer_src=$2 media=$3 version=$4 cc=$5
cmake=${CMAKE_COMMAND:-cmake}

work=$(mktemp -d "${TMPDIR:-/tmp}/hlsrelay-capi-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { echo "== $*"; }
run_logged() {  # runs a command quietly, showing its output only when it fails
  local log=$work/step.log
  if ! "$@" >"$log" 2>&1; then cat "$log"; echo "FAILED: $*" >&2; exit 1; fi
}

step "install into $prefix"
run_logged "$cmake" --install "$build_dir" --prefix "$prefix"
test -f "$prefix/include/hlsrelay/hlsrelay.h" || { echo "header not installed" >&2; exit 1; }
pc=$(find "$prefix" -name hlsrelay.pc -path '*/pkgconfig/*' | head -n1)
test -n "$pc" || { echo "hlsrelay.pc not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
test -L "$libdir/libhlsrelay.so" || { echo "namelink libhlsrelay.so missing in $libdir" >&2; exit 1; }
test -e "$libdir/libhlsrelay.so.${version%%.*}" || { echo "SONAME link missing in $libdir" >&2; exit 1; }
test -f "$libdir/cmake/hlsrelay/hlsrelayConfig.cmake" || { echo "CMake package missing" >&2; exit 1; }
test -f "$libdir/cmake/hlsrelay/hlsrelayConfigVersion.cmake" || { echo "CMake version file missing" >&2; exit 1; }

step "find_package(hlsrelay $version) consumer"
run_logged "$cmake" -S "$consumer_src" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DHLSRELAY_EXPECTED_VERSION="$version" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release
run_logged "$cmake" --build "$work/consumer"
# It must run against the installed library, not the build tree's.
ldd "$work/consumer/hlsrelay_consumer" | grep -F "$libdir/libhlsrelay.so.${version%%.*}" >/dev/null ||
  { ldd "$work/consumer/hlsrelay_consumer"; echo "consumer does not use the installed library" >&2; exit 1; }
"$work/consumer/hlsrelay_consumer" "$media"

step "pkg-config consumer"
export PKG_CONFIG_PATH=$(dirname "$pc")
pkg-config --exists --print-errors "hlsrelay = $version"
flags=$(pkg-config --cflags --libs hlsrelay)
echo "pkg-config --cflags --libs hlsrelay: $flags"
case " $flags " in *" -lhlsrelay "*) ;; *) echo "no -lhlsrelay in pkg-config output" >&2; exit 1 ;; esac
pc_libdir=$(pkg-config --variable=libdir hlsrelay)
[ "$(cd "$pc_libdir" && pwd -P)" = "$(cd "$libdir" && pwd -P)" ] ||
  { echo "pkg-config libdir $pc_libdir is not $libdir" >&2; exit 1; }
pc_includedir=$(pkg-config --variable=includedir hlsrelay)
test -f "$pc_includedir/hlsrelay/hlsrelay.h" || { echo "pkg-config includedir $pc_includedir is wrong" >&2; exit 1; }
# shellcheck disable=SC2086  # the flags are words
run_logged "$cc" -std=c99 -Wall -Wextra -Werror -pedantic "$consumer_src/main.c" -o "$work/consumer_pc" \
  $(pkg-config --cflags hlsrelay) $(pkg-config --libs hlsrelay) -Wl,-rpath,"$pc_libdir"
"$work/consumer_pc" "$media"

echo "install test passed"
