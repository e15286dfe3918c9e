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
work="$(mktemp -d /tmp/hlsrelay-bench-ab.XXXXXX)"
media="$here/../build/media"  # made once (server/make-demo-media.sh's default place), then reused
"$here/../server/make-demo-media.sh" "$media/demo.ts" >/dev/null
{ echo "#EXTM3U"; for i in 0 1 2; do
    echo "#EXTINF:-1 tvg-id=\"d$i\",D$i"; echo "#EXTVLCOPT:input-repeat=-1"; echo "$media/demo.ts"; done; } >"$work/ch.m3u"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pa="$(free_port)"; pb="$(free_port)"
"$A" --channels "$work/ch.m3u" --media-dir "$media" --listen "127.0.0.1:$pa" --max-connections-per-client 0 --log-level warn >"$work/a.log" 2>&1 &
ia=$!
"$B" --channels "$work/ch.m3u" --media-dir "$media" --listen "127.0.0.1:$pb" --max-connections-per-client 0 --log-level warn >"$work/b.log" 2>&1 &
ib=$!
trap 'kill $ia $ib 2>/dev/null; wait $ia $ib 2>/dev/null; rm -rf "$work"' EXIT
for p in "$pa" "$pb"; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/healthz" >/dev/null && break; sleep 0.1; done
  for i in 0 1 2; do curl -sf "http://127.0.0.1:$p/api/v1/channels/start-stream/d$i" >/dev/null; done
  for _ in $(seq 300); do
    n="$(curl -sf "http://127.0.0.1:$p/hls_streams/d0/index.m3u8" | grep -c '^seg_' || true)"
    [ "${n:-0}" -ge 5 ] && break
    sleep 0.1
  done
done
run() { wrk -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"${secs}s" --latency "$1" | awk '/Requests\/sec:/ {r=$2} /^ +99%/ {p=$2} END {printf "%s %s", r, p}'; }
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
