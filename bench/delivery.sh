#!/usr/bin/env bash
# Benchmark 2: delivery. hlsrelay-server serving a segment and a playlist from memory vs nginx
# serving the same bytes from disk (page cache), both on loopback, loaded by wrk.
#
#   bench/delivery.sh BUILD_DIR [seconds per wrk run=10] [concurrencies="1 10 100 400"]
#
# Needs wrk and nginx (scripts/bench-deps.sh) and a build with hlsrelay-server. The server loops a
# 60 s 720p30 ~2.5 Mbit/s file (server/make-demo-media.sh) on 3 channels; before each wrk run the
# newest segment and the current playlist of channel d0 are copied byte for byte into nginx's root
# under the same path, so both answer the same URL path with the same body. nginx runs as configured
# below (2 workers to match the server's 2 io threads, sendfile, keep-alive without a request cap,
# open_file_cache); everything -- wrk included (-t2) -- shares the machine's cores.
set -euo pipefail

build="${1:?usage: bench/delivery.sh BUILD_DIR [seconds] [concurrencies]}"
build="$(cd "$build" && pwd)"
seconds="${2:-10}"
concurrencies="${3:-1 10 100 400}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
server_bin="$build/server/hlsrelay-server"
[ -x "$server_bin" ] || { echo "delivery: $server_bin missing (cmake --build $build --target hlsrelay-server)" >&2; exit 1; }
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || { echo "delivery: $tool missing (scripts/bench-deps.sh)" >&2; exit 1; }
done
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

. "$here/lib.sh"
"$here/../server/make-demo-media.sh" "$build/media/demo.ts" >/dev/null
work="$(mktemp -d /tmp/hlsrelay-bench-delivery.XXXXXX)"
server_pid=
trap cleanup_work EXIT

hport="$(free_port)"
nport="$(free_port)"

# hlsrelay-server: three looping channels, from memory only.
demo_channels "$work/channels.m3u" "$build/media/demo.ts"
start_demo_server "$server_bin" "$work/channels.m3u" "$build/media" "$hport" "$work/server.log"
server_pid=$!
base="http://127.0.0.1:$hport"
warm_demo_server "$base" || { echo "delivery: hlsrelay-server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }

# nginx on loopback, as the current user, everything in $work.
mkdir -p "$work/www/hls_streams/d0" "$work/tmp"
chmod -R a+rX "$work"
{ nginx_conf_head "$work"; cat <<EOF
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  open_file_cache max=1000 inactive=60s;
  server {
    listen 127.0.0.1:$nport;
    root $work/www;
    location ~ \.m3u8\$ { add_header Cache-Control no-cache; }
    location ~ \.ts\$ { add_header Cache-Control "public, max-age=86400, immutable"; }
  }
}
EOF
} >"$work/nginx.conf"
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
nbase="http://127.0.0.1:$nport"
for _ in $(seq 50); do curl -s -o /dev/null "$nbase/" && break; sleep 0.1; done


echo "hlsrelay benchmark: delivery -- wrk -t2 -c{$concurrencies} -d${seconds}s --latency, hlsrelay-server (memory) vs nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') (disk)"
printf '\n| resource | connections | hlsrelay req/s | nginx req/s | ratio | hlsrelay Gbit/s | nginx Gbit/s | hlsrelay p99 (ms) | nginx p99 (ms) | non-2xx (h/n) |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for kind in segment playlist; do
  for c in $concurrencies; do
    # Snapshot the newest segment (listed for ~10 s, then kept for its grace: it outlives the run).
    playlist="$(curl -sf "$base/hls_streams/d0/index.m3u8")"
    if [ "$kind" = segment ]; then
      name="$(printf '%s\n' "$playlist" | grep '^seg_' | tail -1)"
      curl -sf -o "$work/www/hls_streams/d0/$name" "$base/hls_streams/d0/$name"
    else
      name=index.m3u8
      printf '%s\n' "$playlist" >"$work/www/hls_streams/d0/$name"
      # The server's playlist changes every 2 s; its size stays within a few bytes of the snapshot.
    fi
    chmod a+r "$work/www/hls_streams/d0/$name"
    bytes="$(stat -c %s "$work/www/hls_streams/d0/$name")"
    path="/hls_streams/d0/$name"
    read -r h_rps h_p99 h_bad < <(run_wrk "$base$path" "$c" "$seconds")
    read -r n_rps n_p99 n_bad < <(run_wrk "$nbase$path" "$c" "$seconds")
    awk -v k="$kind ($bytes B)" -v c="$c" -v hr="$h_rps" -v nr="$n_rps" -v b="$bytes" -v hp="$h_p99" -v np="$n_p99" \
        -v hb="$h_bad" -v nb="$n_bad" 'BEGIN {
      printf "| %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %d / %d |\n",
             k, c, hr, nr, (nr > 0 ? hr / nr : 0), hr * b * 8 / 1e9, nr * b * 8 / 1e9, hp, np, hb, nb }'
  done
done
