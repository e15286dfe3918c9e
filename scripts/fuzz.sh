#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (-fsanitize=fuzzer,address,undefined) in
# build-fuzz and runs each for a bounded time from its seed corpus. New interesting inputs go to
# build-fuzz/corpus/<target> (not the repository); a crash stops with the input saved as
# build-fuzz/artifacts/<target>/crash-* and a non-zero exit.
#   scripts/fuzz.sh [seconds per target, default 30] [target...]   (CI: 20 s each, scripts/test.sh)
# HLSRELAY_FUZZ_SKIP_BUILD=1 runs the binaries already built (e.g. two runs side by side, one build);
# HLSRELAY_FUZZ_BUILD_ONLY=1 builds them and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(channels m3u8 http_request http_response ts_segmenter ts_cutter fmp4 xmltv)
dir=${HLSRELAY_FUZZ_BUILD_DIR:-build-fuzz}

start=$(date +%s)
if [ "${HLSRELAY_FUZZ_SKIP_BUILD:-0}" != 1 ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHLSRELAY_BUILD_FUZZ=ON \
    -DHLSRELAY_BUILD_SERVER=OFF -DHLSRELAY_BUILD_CAPI=OFF -DHLSRELAY_BUILD_PYTHON=OFF >/dev/null
  cmake --build "$dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
  echo "fuzz: built in $(( $(date +%s) - start )) s"
fi
[ "${HLSRELAY_FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

# One target: its findings stay in the build directory; its report goes to $dir/fuzz_<t>.report.
fuzz_one() {
  local t=$1 max_len=4096
  mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t"
  [ "$t" = ts_segmenter ] && max_len=65536
  local inputs=("$dir/corpus/$t" "$root/tests/fuzz/corpus/$t")
  [ -d "$root/tests/fuzz/regressions/$t" ] && inputs+=("$root/tests/fuzz/regressions/$t")
  local dict=()
  [ -f "$root/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$root/tests/fuzz/dict/$t.dict")
  rm -f "$dir/fuzz_$t.failed"
  {
    echo "== fuzz_$t for ${seconds}s"
    # The seed corpus is read-only input; what the run finds is kept in the build directory only.
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=$max_len -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t/" \
        "${dict[@]}" "${inputs[@]}" 2>"$dir/fuzz_$t.log"; then
      echo "fuzz_$t FAILED; the input is in $dir/artifacts/$t/:"
      ls "$dir/artifacts/$t"
      grep -A40 -m1 "ERROR\|==ERROR\|runtime error\|deadly signal" "$dir/fuzz_$t.log" || tail -40 "$dir/fuzz_$t.log"
      touch "$dir/fuzz_$t.failed"
      return 1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$dir/fuzz_$t.log" | tr '\n' ' '
    echo
  } >"$dir/fuzz_$t.report" 2>&1
}

# Targets run side by side, HLSRELAY_FUZZ_JOBS at a time (default: one per core); each is
# single-threaded, so two cores fuzz two targets in the time of one.
jobs=${HLSRELAY_FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
  cat "$dir/fuzz_$t.report"
  [ -e "$dir/fuzz_$t.failed" ] && status=1
done
echo "fuzz: total $(( $(date +%s) - start )) s"
exit $status
