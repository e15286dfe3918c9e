#!/usr/bin/env bash
# Builds and runs the benchmarks of docs/benchmarks.md and prints their tables.
#
#   bench/run.sh [quick|full] [channels|delivery|remux|ladder|fmp4 ...]
#
# quick (default, ~10 min): channels N=1 and 10 with short windows, a 2 min remux, 3 s wrk runs,
# the ladder and fMP4 rows at N=10 with short windows.
# full (~45 min, more with the ffmpeg reference at 200 channels): channels N=1, 10, 50, 200, 1000
# (the ffmpeg reference capped at 200 channels), a 10 min remux (median of 3), 10 s wrk runs at
# 1, 10, 100 and 400 connections, the ladder row at N=10 and 50 (MPEG-TS) and 10 (fMP4), the fMP4
# row at N=10 and 50.
# Every run is bounded: fixed windows, a warm-up of at most 120 s more than asked.
# BUILD=dir picks the build directory (default: build-bench in the source tree, Release).
# The delivery benchmark needs wrk and nginx: scripts/bench-deps.sh installs them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
mode="${1:-quick}"
shift || true
case "$mode" in quick|full) ;; *) echo "usage: bench/run.sh [quick|full] [channels|delivery|remux|ladder|fmp4 ...]" >&2; exit 2 ;; esac
which=("$@")
[ ${#which[@]} -eq 0 ] && which=(channels delivery remux ladder fmp4)
build="${BUILD:-$src/build-bench}"

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHLSRELAY_BUILD_SERVER=ON -DHLSRELAY_BUILD_CAPI=OFF \
    -DHLSRELAY_BUILD_TESTS=ON >/dev/null || exit 1
fi
cmake --build "$build" -j"$(nproc)" --target hlsrelay-server hlsrelay_bench_channels hlsrelay_bench_remux \
  >"$build/bench-build.log" 2>&1 || { tail -40 "$build/bench-build.log" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
echo "commit: $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"

for bench in "${which[@]}"; do
  echo
  case "$bench" in
    channels)
      if [ "$mode" = quick ]; then
        for n in 1 10; do "$build/bench/hlsrelay_bench_channels" "$n" --warmup 8 --cpu-window 10 --delay-window 10; echo; done
      else
        for n in 1 10 50 200; do "$build/bench/hlsrelay_bench_channels" "$n"; echo; done
        "$build/bench/hlsrelay_bench_channels" 1000 --warmup 30 --cpu-window 30 --delay-window 30
      fi
      ;;
    delivery)
      if [ "$mode" = quick ]; then "$here/delivery.sh" "$build" 3 "1 10 100"; else "$here/delivery.sh" "$build" 10 "1 10 100 400"; fi
      ;;
    remux)
      if [ "$mode" = quick ]; then "$build/bench/hlsrelay_bench_remux" 2 1; else "$build/bench/hlsrelay_bench_remux" 10 3; fi
      ;;
    ladder)
      # A 3-variant + 2-audio-language source: hlsrelay renditions=all vs ffmpeg keeping every rendition.
      if [ "$mode" = quick ]; then
        "$build/bench/hlsrelay_bench_channels" 10 --row ladder --warmup 8 --cpu-window 10 --delay-window 10
      else
        for n in 10 50; do "$build/bench/hlsrelay_bench_channels" "$n" --row ladder; echo; done
        "$build/bench/hlsrelay_bench_channels" 10 --row ladder --ladder-fmp4
      fi
      ;;
    fmp4)
      # fMP4 source: passthrough vs the remux path vs ffmpeg, against today's MPEG-TS passthrough (1.5x target).
      if [ "$mode" = quick ]; then
        "$build/bench/hlsrelay_bench_channels" 10 --row fmp4 --warmup 8 --cpu-window 10 --delay-window 10
      else
        for n in 10 50; do "$build/bench/hlsrelay_bench_channels" "$n" --row fmp4; echo; done
      fi
      ;;
    *) echo "unknown benchmark '$bench' (channels, delivery, remux, ladder, fmp4)" >&2; exit 2 ;;
  esac
done
