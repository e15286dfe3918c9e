#!/usr/bin/env bash
# Two hlsrelay-server binaries side by side on the same playlists and segments: wrk alternates
# A B B A on each resource and concurrency, so a change's effect is read within one run on a
# noisy machine. Each server loops the demo file on 3 channels.
#
#   bench/server-ab.sh OLD_SERVER NEW_SERVER [seconds per wrk run=5] [concurrencies="1 10 100 400"]
#
# Needs wrk (scripts/bench-deps.sh), curl and ffmpeg (the demo media). Prints a Markdown table:
# each binary's two runs (requests/s and p99), their means and B/A.
set -euo pipefail
A="${1:?usage: bench/server-ab.sh OLD_SERVER NEW_SERVER [seconds] [concurrencies]}"
B="${2:?usage: bench/server-ab.sh OLD_SERVER NEW_SERVER [seconds] [concurrencies]}"
secs="${3:-5}"
conc="${4:-1 10 100 400}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v wrk >/dev/null || { echo "server-ab: wrk missing (scripts/bench-deps.sh)" >&2; exit 1; }
. "$here/lib.sh"
work="$(mktemp -d /tmp/hlsrelay-bench-ab.XXXXXX)"
media="$here/../build/media"  # made once (server/make-demo-media.sh's default place), then reused
"$here/../server/make-demo-media.sh" "$media/demo.ts" >/dev/null
demo_channels "$work/ch.m3u" "$media/demo.ts"
pa="$(free_port)"; pb="$(free_port)"
start_demo_server "$A" "$work/ch.m3u" "$media" "$pa" "$work/a.log"; ia=$!
start_demo_server "$B" "$work/ch.m3u" "$media" "$pb" "$work/b.log"; ib=$!
trap 'kill $ia $ib 2>/dev/null; wait $ia $ib 2>/dev/null; rm -rf "$work"' EXIT
for p in "$pa" "$pb"; do
  warm_demo_server "http://127.0.0.1:$p" || { echo "server-ab: the server on port $p did not start" >&2; cat "$work"/*.log >&2; exit 1; }
done
run() { run_wrk "$1" "$2" "$secs" | awk '{printf "%s %.2fms", $1, $2}'; }
newest() { curl -sf "http://127.0.0.1:$1/hls_streams/d0/index.m3u8" | grep '^seg_' | tail -1; }
echo "| resource | connections | A req/s (p99), two runs | B req/s (p99), two runs | A | B | B/A |"
echo "|---|---|---|---|---|---|---|"
for kind in playlist segment; do
  for c in $conc; do
    if [ "$kind" = segment ]; then na="$(newest "$pa")"; nb="$(newest "$pb")"; else na=index.m3u8; nb=index.m3u8; fi
    a1="$(run "http://127.0.0.1:$pa/hls_streams/d0/$na" "$c")"; b1="$(run "http://127.0.0.1:$pb/hls_streams/d0/$nb" "$c")"
    b2="$(run "http://127.0.0.1:$pb/hls_streams/d0/$nb" "$c")"; a2="$(run "http://127.0.0.1:$pa/hls_streams/d0/$na" "$c")"
    awk -v k="$kind" -v c="$c" -v a1="$a1" -v a2="$a2" -v b1="$b1" -v b2="$b2" 'BEGIN {
      split(a1, x, " "); split(a2, y, " "); split(b1, u, " "); split(b2, v, " ")
      A = (x[1] + y[1]) / 2; B = (u[1] + v[1]) / 2
      printf "| %s | %d | %.0f (%s), %.0f (%s) | %.0f (%s), %.0f (%s) | %.0f | %.0f | %.2f |\n",
             k, c, x[1], x[2], y[1], y[2], u[1], u[2], v[1], v[2], A, B, (A > 0 ? B / A : 0) }'
  done
done
