#!/usr/bin/env bash
# LL-HLS at scale (issue 13): delivery latency and the server's CPU and memory for N LL-HLS channels
# with K blocking clients each, side by side with the same N channels in classic HLS (the reference).
#
#   bench/ll-scale.sh [--player] [SECONDS] [N...]     (defaults: 60 s, N = 1 50 200)
#   CLIENTS=K bench/ll-scale.sh ...                   K clients per channel (default 1)
#
# One source file is made once with ffmpeg and cached (30 s of 640x360 30 fps test pattern, H.264
# ultrafast with a keyframe every second, AAC, MPEG-TS; in BUILD/tests/media/). For each N, twice (LL,
# then classic): bench/ll_clients.py run starts hlsrelay-server with N channels looping that file at its
# rate (fMP4, 8 segments listed; low_latency on in the LL run, parts of 1/3 s), starts them spread over
# one segment duration, waits until every channel publishes, runs N x K clients for a 5 s warm-up and
# SECONDS of measurement, and stops the server. LL clients follow the live edge with blocking reloads
# (_HLS_msn/_HLS_part of the next part) and GET the newest part; classic clients poll the playlist every
# half target duration and GET each new segment. --player: hls.js (tests/players/ll_player.mjs,
# headless Chromium) also plays channel 0 in each run, its latency (wall clock minus the playing frame's
# PROGRAM-DATE-TIME) in the last column.
#
# Columns: server CPU (utime+stime over the window, % of one core), PSS (max over the window),
# requests/s of all clients, delivery latency (wall clock when a part's or segment's last byte arrived
# minus the media time of its end), frame age (the same from its first frame: the least latency a
# player that plays each chunk as it arrives could have), errors (non-200 answers and failed requests
# in the window), the clients' own CPU. Exit status 1 only when a run failed (the server died or never
# published, a client received nothing); never on a figure. BUILD=dir picks the build holding
# server/hlsrelay-server (default: build); LL_SCALE_JSON=file keeps each row's full JSON line (with
# the per-client figures) there.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
player=()
if [ "${1:-}" = "--player" ]; then player=(--player); shift; fi
seconds="${1:-60}"
[ $# -gt 0 ] && shift
ns=("$@")
[ ${#ns[@]} -eq 0 ] && ns=(1 50 200)
clients="${CLIENTS:-1}"
build="${BUILD:-$src/build}"
server="$build/server/hlsrelay-server"
py=/usr/bin/python3
[ -x "$server" ] || { echo "missing $server: cmake --build build --target hlsrelay-server" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "ffmpeg is missing (apt-get install ffmpeg)" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ && "$clients" =~ ^[0-9]+$ ]] || { echo "usage: $0 [--player] [SECONDS] [N...]" >&2; exit 2; }
for n in "${ns[@]}"; do [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || { echo "bad N: $n" >&2; exit 2; }; done

child=""
tmp=""        # the source file being made
out=""        # the running row's output
results=""    # the rows' JSON lines
keep_results="${LL_SCALE_JSON:-}"
stop() {  # Ctrl-C / SIGTERM: the running row stops its server and player (bounded), then we exit
  trap - INT TERM
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
  exit 130
}
trap stop INT TERM
trap 'rm -f ${tmp:+"$tmp"} ${out:+"$out"}; [ -z "$keep_results" ] && [ -n "$results" ] && rm -f "$results"' EXIT

media="$build/tests/media"
mkdir -p "$media" 2>/dev/null && [ -w "$media" ] || media="${TMPDIR:-/tmp}/hlsrelay-bench-media"
mkdir -p "$media"
source_file="$media/ll-scale-360p30-30s.ts"
if [ ! -s "$source_file" ]; then
  tmp="$source_file.tmp.$$.ts"
  echo "making $source_file" >&2
  timeout -k 5 180 ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "testsrc2=size=640x360:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t 30 -map 0:v -map 1:a -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
    -g 30 -keyint_min 30 -sc_threshold 0 -b:v 800k -maxrate 800k -bufsize 1600k \
    -c:a aac -b:a 96k -ac 2 -f mpegts "$tmp" &
  child=$!
  wait "$child" && mv "$tmp" "$source_file" || { echo "ffmpeg failed" >&2; rm -f "$tmp"; exit 1; }
  child=""; tmp=""
fi

# Every row's full JSON line (with per-client figures) goes to $LL_SCALE_JSON if set, else to a temp
# file removed at the end.
if [ -n "$keep_results" ]; then results="$keep_results"; : >"$results" || exit 2; else results="$(mktemp)"; fi
status=0
for n in "${ns[@]}"; do
  for mode in ll classic; do
    out="$(mktemp)"
    # The row bounds itself (warm-up + window + start-up + 2 min); this is the backstop.
    bound=$((seconds + 300 + n))
    echo "[$(date +%H:%M:%S)] N=$n $mode: $clients client(s) per channel, ${seconds} s" >&2
    timeout -k 15 "$bound" "$py" "$here/ll_clients.py" run --server "$server" --source "$source_file" \
      --n "$n" --mode "$mode" --clients "$clients" --seconds "$seconds" "${player[@]}" >"$out" &
    child=$!
    wait "$child"
    rc=$?
    child=""
    [ $rc -ne 0 ] && status=1
    if grep -q '^{' "$out"; then
      grep '^{' "$out" | tail -1 >>"$results"
    else
      echo "{\"n\": $n, \"mode\": \"$mode\", \"failure\": \"no result (exit $rc)\"}" >>"$results"
    fi
    rm -f "$out"
    out=""
    # One line of the run to stderr as it ends (the table comes at the end).
    "$py" - "$results" >&2 <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
l, s = d.get("latency") or {}, d.get("server") or {}
print(f"  -> latency p50 {l.get('p50')} p95 {l.get('p95')}, server CPU {s.get('cpu_pct')} %, client CPU "
      f"{(d.get('client') or {}).get('cpu_pct')} %, errors {d.get('errors')} {d.get('error_statuses') or ''}"
      + (f" FAILED: {d['failure']}" if d.get("failure") else ""))
PY
  done
done

echo
echo "LL-HLS vs classic HLS, ${seconds} s window, ${clients} client(s) per channel, $(date -u +%Y-%m-%d)" \
     "at $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores:"
echo
"$py" - "${#player[@]}" "$results" <<'PY'
import json, sys
player = sys.argv[1] != "0"
head = ["N", "mode", "server CPU % (p50/max per s)", "server PSS MB", "requests/s",
        "delivery latency p50 / p95 s", "frame age p50 s", "errors", "client CPU %"]
if player:
    head.append("hls.js p50 / p95 s")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
f = lambda v, d=2: "n/a" if v is None else f"{v:.{d}f}"
for text in open(sys.argv[2]):
    d = json.loads(text)
    if "latency" not in d:
        print(f"| {d.get('n')} | {d.get('mode')} | run failed: {d.get('failure', '?')[:120]} |" + " |" * (len(head) - 3))
        continue
    s, c, l = d.get("server") or {}, d.get("client") or {}, d["latency"]
    ps = s.get("cpu_pct_per_second") or {}
    errors = str(d["errors"])
    detail = [f"{k}: {v}" for k, v in sorted(d.get("error_statuses", {}).items())]
    if d.get("failed_requests"):
        detail.append(f"failed: {d['failed_requests']}")
    if d.get("answers_without_part"):
        detail.append(f"without the part: {d['answers_without_part']}")
    if detail:
        errors += " (" + ", ".join(detail) + ")"
    row = [str(d["n"]), "LL-HLS" if d["mode"] == "ll" else "classic",
           f"{f(s.get('cpu_pct'), 1)} ({f(ps.get('p50'), 0)}/{f(ps.get('max'), 0)})",
           f((s.get("pss_mb") or {}).get("max"), 1), f(d["requests_per_s"], 0),
           f"{f(l['p50'], 3)} / {f(l['p95'], 3)}", f(d["frame_age"]["p50"]),
           errors + (" FAIL" if d.get("failure") else ""), f(c.get("cpu_pct"), 1)]
    if player:
        p = d.get("player") or {}
        pl = p.get("latency") or {}
        row.append(f"{f(pl.get('p50'))} / {f(pl.get('p95'))}" + ("" if p.get("ok") else f" ({(p.get('detail') or '')[:60]})"))
    print("| " + " | ".join(row) + " |")
PY
failed=$("$py" -c 'import json,sys; print(sum(1 for t in open(sys.argv[1]) if json.loads(t).get("failure")))' "$results")
[ "$failed" != 0 ] && echo "$failed run(s) failed; see the rows marked FAIL" >&2
exit $status
