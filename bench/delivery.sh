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

"$here/../server/make-demo-media.sh" "$build/media/demo.ts" >/dev/null
work="$(mktemp -d /tmp/hlsrelay-bench-delivery.XXXXXX)"
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -s "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hport="$(free_port)"
nport="$(free_port)"

# hlsrelay-server: three looping channels, from memory only.
{
  echo "#EXTM3U"
  for i in 0 1 2; do
    echo "#EXTINF:-1 tvg-id=\"d$i\" group-title=\"bench\",Delivery $i"
    echo "#EXTVLCOPT:input-repeat=-1"
    echo "$build/media/demo.ts"
  done
} >"$work/channels.m3u"
# wrk's connections all come from 127.0.0.1: the per-client cap (64) is lifted as for nginx.
"$server_bin" --channels "$work/channels.m3u" --media-dir "$build/media" --listen "127.0.0.1:$hport" \
  --max-connections-per-client 0 --log-level warn >"$work/server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$hport"
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/healthz" >/dev/null || { echo "delivery: hlsrelay-server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
for i in 0 1 2; do curl -sf "$base/api/v1/channels/start-stream/d$i" >/dev/null; done
# Warm: wait until d0 lists a full window of segments.
for _ in $(seq 300); do
  n="$(curl -sf "$base/hls_streams/d0/index.m3u8" | grep -c '^seg_' || true)"
  [ "${n:-0}" -ge 5 ] && break
  sleep 0.1
done

# nginx on loopback, as the current user, everything in $work.
mkdir -p "$work/www/hls_streams/d0" "$work/tmp"
chmod -R a+rX "$work"
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/tmp/body;
  proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi;
  scgi_temp_path $work/tmp/scgi;
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
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
nbase="http://127.0.0.1:$nport"
for _ in $(seq 50); do curl -s -o /dev/null "$nbase/" && break; sleep 0.1; done

# wrk output -> "req/s p99_ms non2xx"
parse_wrk() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
               ms = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v }
    /Non-2xx or 3xx responses:/ { bad = $5 }
    /Socket errors:/ { err = $0 }
    END { printf "%s %s %d\n", rps, ms, bad + 0 }'
}

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
    t=$(( c < 2 ? c : 2 ))
    read -r h_rps h_p99 h_bad < <(wrk -t"$t" -c"$c" -d"${seconds}s" --latency "$base$path" | parse_wrk)
    read -r n_rps n_p99 n_bad < <(wrk -t"$t" -c"$c" -d"${seconds}s" --latency "$nbase$path" | parse_wrk)
    awk -v k="$kind ($bytes B)" -v c="$c" -v hr="$h_rps" -v nr="$n_rps" -v b="$bytes" -v hp="$h_p99" -v np="$n_p99" \
        -v hb="$h_bad" -v nb="$n_bad" 'BEGIN {
      printf "| %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %d / %d |\n",
             k, c, hr, nr, (nr > 0 ? hr / nr : 0), hr * b * 8 / 1e9, nr * b * 8 / 1e9, hp, np, hb, nb }'
  done
done
