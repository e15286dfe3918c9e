#!/usr/bin/env bash
# Builds hlsrelay and runs every test suite: C++ (unit, engine, server), C, Python, the browser test,
# then the C++ suites again under AddressSanitizer+UndefinedBehaviorSanitizer and ThreadSanitizer,
# then each libFuzzer target for a bounded time (scripts/fuzz.sh).
# Installs missing Debian packages first (as root or through sudo).
#   scripts/test.sh           everything (what CI runs)
#   scripts/test.sh --quick   the plain build's suites only
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/install-deps.sh
jobs=$(nproc)
py=/usr/bin/python3

# Line tables only (-g1): stack traces, perf and the sanitizers' reports need no more, and full
# debug info costs about a third of the compile time (test_engine_live.cpp: 24 s -> 17 s).
configure_and_build() {  # dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DHLSRELAY_WERROR=ON \
    -DPython_EXECUTABLE=$py -DPYTHON_EXECUTABLE=$py "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

status=0
# CI shows only the end of this script's output, so every failure is also written down here and
# printed again, briefly, at the very end: which stage, which tests, and the first lines of each
# failing test's output.
failures=$(mktemp); trap 'rm -f "$failures"' EXIT
fail() { status=1; echo "$*" >>"$failures"; }
run_ctest() {  # label, ctest args...
  local label=$1; shift
  local log; log=$(mktemp)
  local rc=0
  ctest "$@" 2>&1 | tee "$log" || rc=1
  if [ $rc -ne 0 ]; then
    {
      echo "-- $label:"
      sed -n '/The following tests FAILED:/,$p' "$log" | grep -E '^[[:space:]]+[0-9]+ - ' | cut -c1-200 | head -20
      # Each failure's line and the first lines of its output, which ctest prints right after it.
      awk '/\*\*\*(Failed|Exception|Timeout)|Failed +[0-9.]+ sec/ {n=14} n>0 {print "   " substr($0, 1, 200); n--}' "$log" | head -60
      # The player tests log each failing cell as one line, "[time] <source> <player/check> FAIL
      # <why>", after a long preamble: those lines, wider (the why carries the player's diagnosis).
      grep -E '^\[[0-9:]+\] .* FAIL ' "$log" | cut -c1-1500 | head -8 | sed 's/^/   /' || true
    } >>"$failures"
  fi
  rm -f "$log"
  return $rc
}
# Sanitizer and fuzz builds run in the background at the lowest CPU priority while the previous
# stage's suites run: those mostly wait on live streams and sockets, so the builds soak up the idle
# cores without slowing the tests (nice 19 gets ~1.5% of a core against a normal-priority process).
# Each background build logs to <dir>/ci-build.log, shown when it fails.
bg_pid=
bg_name=
start_bg_build() {  # name, command...
  bg_name=$1; shift
  mkdir -p "$root/$bg_name"
  ( renice -n 19 -p "$BASHPID" >/dev/null; "$@" >"$root/$bg_name/ci-build.log" 2>&1 ) &
  bg_pid=$!
}
wait_bg_build() {
  if ! wait "$bg_pid"; then
    echo "== build of $bg_name FAILED:"; tail -60 "$root/$bg_name/ci-build.log"; return 1
  fi
  echo "== $bg_name built (log: $bg_name/ci-build.log)"
}
stage_start=$(date +%s)
stage() { local now; now=$(date +%s); echo "== [$(( now - stage_start )) s] $*"; }

stage "build (RelWithDebInfo, warnings as errors)"
configure_and_build build -DHLSRELAY_BUILD_PYTHON=ON -DHLSRELAY_BUILD_SERVER=ON -DHLSRELAY_BUILD_CAPI=ON
scripts/web-deps.sh
[ $quick -eq 0 ] && start_bg_build build-asan configure_and_build build-asan -DHLSRELAY_SANITIZE=address,undefined \
  -DHLSRELAY_BUILD_PYTHON=OFF -DHLSRELAY_BUILD_BENCH=OFF -DHLSRELAY_BUILD_SERVER=ON -DHLSRELAY_BUILD_CAPI=ON
stage "tests"
(cd build && run_ctest "tests" --output-on-failure -j2 --timeout 600) || status=1

stage "Python package installed the documented way (venv + pip, offline), its suite against it"
rm -rf build/venv
$py -m venv --system-site-packages build/venv
build/venv/bin/pip install --no-build-isolation --no-index --quiet . || fail "-- pip install of the Python package"
pylog=$(mktemp)
if ! (cd build && venv/bin/python -m pytest -q -p no:cacheprovider -rfE "$root/tests/python") 2>&1 | tee "$pylog"; then
  fail "-- Python suite:"; grep -E '^(FAILED|ERROR) ' "$pylog" | cut -c1-200 | head -20 | sed 's/^/   /' >>"$failures"
fi
rm -f "$pylog"

if [ $quick -eq 0 ]; then
  stage "AddressSanitizer + UndefinedBehaviorSanitizer"
  wait_bg_build || fail "-- build of $bg_name"
  start_bg_build build-tsan configure_and_build build-tsan -DHLSRELAY_SANITIZE=thread -DHLSRELAY_BUILD_PYTHON=OFF -DHLSRELAY_BUILD_BENCH=OFF \
    -DHLSRELAY_BUILD_SERVER=ON -DHLSRELAY_BUILD_CAPI=OFF
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     run_ctest "AddressSanitizer + UBSan" --output-on-failure -j2 --timeout 900 -R "^(unit|engine|server|capi):" -E "install|browser") || status=1
  stage "ThreadSanitizer"
  wait_bg_build || fail "-- build of $bg_name"
  # The clang build of the fuzz targets (scripts/fuzz.sh) goes on in the background meanwhile.
  start_bg_build build-fuzz env HLSRELAY_FUZZ_BUILD_ONLY=1 scripts/fuzz.sh
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
     run_ctest "ThreadSanitizer" --output-on-failure -j2 --timeout 1200 -R "^(engine|server):" -E "browser") || status=1
  # libFuzzer with clang (build-fuzz): each of the 7 targets for 20 s from its seed corpus.
  stage "libFuzzer (${HLSRELAY_FUZZ_SECONDS:-20} s per target)"
  wait_bg_build || fail "-- build of $bg_name"
  HLSRELAY_FUZZ_SKIP_BUILD=1 scripts/fuzz.sh "${HLSRELAY_FUZZ_SECONDS:-20}" || fail "-- libFuzzer (its report is above)"
fi
stage "done"
if [ $status -ne 0 ]; then echo "== FAILED:"; cat "$failures"; else echo "== all suites passed"; fi
exit $status
