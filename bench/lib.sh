# Shell helpers shared by the delivery benchmarks (bench/delivery.sh, bench/server-ab.sh): sourced,
# not run. Each server loops the demo file on channels d0, d1, d2, from memory only.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# demo_channels LIST MEDIA_TS: writes an M3U of the three looping demo channels.
demo_channels() {
  {
    echo "#EXTM3U"
    for i in 0 1 2; do
      echo "#EXTINF:-1 tvg-id=\"d$i\" group-title=\"bench\",Delivery $i"
      echo "#EXTVLCOPT:input-repeat=-1"
      echo "$2"
    done
  } >"$1"
}

# start_demo_server BIN LIST MEDIA_DIR PORT LOG: starts it in the background (its pid in $!). wrk's
# connections all come from 127.0.0.1: the per-client cap (64) is lifted as for nginx.
start_demo_server() {
  "$1" --channels "$2" --media-dir "$3" --listen "127.0.0.1:$4" --max-connections-per-client 0 \
    --log-level warn >"$5" 2>&1 &
}

# warm_demo_server BASE_URL: waits for the server, starts d0..d2, waits until d0 lists a full
# window (5 segments). Fails if the server never answers.
warm_demo_server() {
  for _ in $(seq 100); do curl -sf "$1/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "$1/healthz" >/dev/null || return 1
  for i in 0 1 2; do curl -sf "$1/api/v1/channels/start-stream/d$i" >/dev/null; done
  for _ in $(seq 300); do
    n="$(curl -sf "$1/hls_streams/d0/index.m3u8" | grep -c '^seg_' || true)"
    [ "${n:-0}" -ge 5 ] && break
    sleep 0.1
  done
}

# wrk output -> "req/s p99_ms non2xx"
parse_wrk() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
               ms = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v }
    /Non-2xx or 3xx responses:/ { bad = $5 }
    END { printf "%s %s %d\n", rps, ms, bad + 0 }'
}

# run_wrk URL CONNECTIONS SECONDS -> "req/s p99_ms non2xx" (at most 2 wrk threads)
run_wrk() { wrk -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"$3s" --latency "$1" | parse_wrk; }

# nginx_conf_head WORK: the start of a loopback nginx.conf for a benchmark (as the current user,
# everything under WORK, 2 workers, no access log) up to the common lines of its http block; the
# caller adds its own http settings, its server block and the two closing braces.
nginx_conf_head() {
  cat <<EOF
worker_processes 2;
pid $1/nginx.pid;
error_log $1/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
EOF
}

# cleanup_work: the EXIT trap of a benchmark that keeps everything in $work: stops the server whose
# pid is in $server_pid and the nginx whose pid file is in $work, then removes $work.
cleanup_work() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -s "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$work"
}
