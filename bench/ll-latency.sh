#!/usr/bin/env bash
# LL-HLS latency (docs/benchmarks.md, "LL-HLS latency"): hls.js in headless Chromium on a continuous
# 720p30 source (ffmpeg, MPEG-TS over UDP, keyframe every second) relayed by hlsrelay-server, printed
# side by side with the reference: the same source and relay without low_latency, hls.js in its
# classic mode. Latency = the wall clock minus the playing frame's EXT-X-PROGRAM-DATE-TIME (when the
# media reached the relay), sampled every 250 ms after a 10 s warm-up.
#
#   bench/ll-latency.sh [SECONDS]   (default 600: the ten minutes of issue 13's goal; ~70 min in all)
#
# Rows: classic HLS; LL-HLS with hls.js's defaults (lowLatencyMode, no catch-up: it stays where it
# started, PART-HOLD-BACK plus its start-up behind); LL-HLS with maxLiveSyncPlaybackRate 1.5 (hls.js
# speeds up to reach PART-HOLD-BACK). The LL rows fail (exit 1) on a stall or a p50 of 2 s or more.
# Then the other kinds of source (an LL-HLS origin, a classic HLS origin, a ladder), judged only on
# stalls and the LL playlist rules.
# BUILD=dir picks the build holding server/hlsrelay-server (default: build).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
seconds="${1:-600}"
server="${BUILD:-$src/build}/server/hlsrelay-server"
[ -x "$server" ] || { echo "missing $server: cmake --build build --target hlsrelay-server" >&2; exit 2; }
py=/usr/bin/python3
status=0
rows=()
run() {  # label, extra args...
  local label=$1; shift
  local out
  out=$("$py" "$src/tests/players/ll_latency.py" --server "$server" --seconds "$seconds" "$@" 2>&1)
  local rc=$?
  [ $rc -ne 0 ] && status=1
  local json
  json=$(printf '%s\n' "$out" | grep '^{"container"' | tail -1)
  rows+=("$("$py" - "$label" "$json" "$rc" <<'PY'
import json, sys
label, text, rc = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    d = json.loads(text)
except ValueError:
    print(f"| {label} | run failed (exit {rc}) | | | | |"); sys.exit()
l = d["latency"] or {}
f = lambda v: "n/a" if v is None else f"{v:.2f}"
print(f"| {label} | {f(l.get('p50'))} | {f(l.get('p95'))} | {f(l.get('max'))} | {len(d.get('stalls') or [])} | "
      f"{d.get('parts_loaded')} |{'' if rc == '0' else ' FAIL'}")
PY
)")
  printf '%s\n' "$out" | grep -E "latency p50|blocking reloads|LL playlist rules|FAIL" >&2
}
run "classic HLS (hls.js default)" --classic
run "LL-HLS, hls.js lowLatencyMode" --goal 2
run "LL-HLS, hls.js lowLatencyMode + maxLiveSyncPlaybackRate 1.5" --goal 2 --catch-up 1.5
# The other kinds of source, with the catch-up the dashboard's player uses (no goal: what they reach
# is documented, docs/benchmarks.md): the relay reading another channel's LL-HLS output (parts
# followed) or classic HLS output of the same source, and an fMP4 ladder relayed as a presentation.
run "source LL-HLS (parts followed), catch-up 1.5" --catch-up 1.5 --source ll-hls
run "source classic HLS, catch-up 1.5" --catch-up 1.5 --source hls
run "source HLS ladder, 2 s segments (master.m3u8), catch-up 1.5" --catch-up 1.5 --source ladder
echo
echo "LL-HLS latency, ${seconds} s each, fMP4 parts of 1/3 s, 2 s segments, 720p30 (seconds):"
echo
echo "| player | p50 | p95 | max | stalls | parts loaded |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
exit $status
