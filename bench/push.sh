#!/usr/bin/env bash
# Benchmark: push to an origin. N looping channels on hlsrelay-server, run twice on the same machine:
# once serving only, once also pushing every channel (--push-url) to an nginx with WebDAV on
# loopback, as docs/deploy.md configures it. Prints, side by side, the server's CPU per channel,
# what was pushed (requests/s, retries, failed, dropped, withheld: the channels' status `push`),
# nginx's CPU, and how far the origin's copy of a sampled channel trailed the server's own playlist.
#
#   bench/push.sh BUILD_DIR [channels=50] [seconds=60]
#
# Needs nginx (scripts/bench-deps.sh), curl, python3 and ffmpeg (the demo media), and a build with
# hlsrelay-server. Each channel loops the demo file (server/make-demo-media.sh: 720p30, ~2.5 Mbit/s,
# 2 s segments).
set -euo pipefail

build="${1:?usage: bench/push.sh BUILD_DIR [channels] [seconds]}"
build="$(cd "$build" && pwd)"
n="${2:-50}"
seconds="${3:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
server_bin="$build/server/hlsrelay-server"
[ -x "$server_bin" ] || { echo "push: $server_bin missing (cmake --build $build --target hlsrelay-server)" >&2; exit 1; }
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$nginx_bin" ] || { echo "push: nginx missing (scripts/bench-deps.sh)" >&2; exit 1; }
command -v curl >/dev/null || { echo "push: curl missing" >&2; exit 1; }

. "$here/lib.sh"
"$here/../server/make-demo-media.sh" "$build/media/demo.ts" >/dev/null
work="$(mktemp -d /tmp/hlsrelay-bench-push.XXXXXX)"
server_pid=
trap cleanup_work EXIT

{
  echo "#EXTM3U"
  for i in $(seq 0 $((n - 1))); do
    echo "#EXTINF:-1 tvg-id=\"p$i\" group-title=\"bench\",Push $i"
    echo "#EXTVLCOPT:input-repeat=-1"
    echo "$build/media/demo.ts"
  done
} >"$work/channels.m3u"

# The origin: nginx with WebDAV, as docs/deploy.md shows it.
nport="$(free_port)"
mkdir -p "$work/www/live" "$work/tmp"
# nginx's workers (another user when started as root) write the pushed files and read the config.
chmod a+rX "$work"
chmod -R a+rwX "$work/www" "$work/tmp"
{ nginx_conf_head "$work"; cat <<EOF
  server {
    listen 127.0.0.1:$nport;
    root $work/www;
    client_max_body_size 64m;
    location /live/ {
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
      location ~ \.m3u8\$ { add_header Cache-Control no-cache; }
    }
  }
}
EOF
} >"$work/nginx.conf"
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
nginx_pids() { pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' '; echo "$(cat "$work/nginx.pid")"; }

# CPU ticks (utime + stime) of the given pids, summed.
ticks() { for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0; done | awk '{ s += $1 } END { print s + 0 }'; }
hz="$(getconf CLK_TCK)"

# newest media sequence in a playlist URL (-1 when there is none)
newest() { { curl -sf "$1" 2>/dev/null || true; } | awk -F'[_.]' '/^seg_/ { n = $2 } END { print (n == "" ? -1 : n) }'; }

# run LABEL [PUSH_URL]: starts the server on every channel, warms up, measures, stops it.
run() {
  local label="$1" push="${2:-}" port base
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  local args=(--channels "$work/channels.m3u" --media-dir "$build/media" --listen "127.0.0.1:$port" --autostart all
              --log-level warn)
  [ -n "$push" ] && args+=(--push-url "$push")
  "$server_bin" "${args[@]}" >"$work/server-$label.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  # Warm-up: every channel lists a full window (5 segments) and, pushing, the origin has d0's playlist.
  for _ in $(seq 600); do
    local ready=1 i
    for i in 0 $((n / 2)) $((n - 1)); do
      [ "$(curl -sf "$base/hls_streams/p$i/index.m3u8" | grep -c '^seg_' || true)" -ge 5 ] || ready=0
    done
    [ -n "$push" ] && { curl -sf "http://127.0.0.1:$nport/live/p0/index.m3u8" >/dev/null || ready=0; }
    [ "$ready" = 1 ] && break
    sleep 0.2
  done
  if [ "$ready" != 1 ]; then
    echo "push: the $label run did not warm up in 120 s; p0's status:" >&2
    curl -s "$base/api/v1/channels/stream-status/p0" >&2 || true
    exit 1
  fi
  local t0 s0 n0 trail=0 samples=0 t
  curl -sf -o "$work/before-$label.json" "$base/api/v1/channels/streams-status"
  s0="$(ticks "$server_pid")"; n0="$(ticks $(nginx_pids))"; t0="$(date +%s.%N)"
  local end=$(( $(date +%s) + seconds ))
  while [ "$(date +%s)" -lt "$end" ]; do
    if [ -n "$push" ]; then
      # How many segments the origin's copy of a sampled channel is behind the server's playlist.
      for i in 0 $((n / 2)) $((n - 1)); do
        local own pushed
        own="$(newest "$base/hls_streams/p$i/index.m3u8")"; pushed="$(newest "http://127.0.0.1:$nport/live/p$i/index.m3u8")"
        if [ "$own" -ge 0 ] && [ "$pushed" -ge 0 ]; then
          t=$(( own - pushed )); [ "$t" -gt "$trail" ] && trail="$t"; samples=$((samples + 1))
        fi
      done
    fi
    sleep 1
  done
  local s1 n1 t1
  s1="$(ticks "$server_pid")"; n1="$(ticks $(nginx_pids))"; t1="$(date +%s.%N)"
  curl -sf -o "$work/after-$label.json" "$base/api/v1/channels/streams-status"
  # A channel pushed from the origin plays: its playlist's newest segment is there.
  local playable="-"
  if [ -n "$push" ]; then
    local seg
    seg="$(curl -sf "http://127.0.0.1:$nport/live/p0/index.m3u8" | grep '^seg_' | tail -1)"
    playable="no"
    [ -n "$seg" ] && curl -sf -o /dev/null "http://127.0.0.1:$nport/live/p0/$seg" && playable="yes"
  fi
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  python3 - "$label" "$n" "$hz" "$s0" "$s1" "$n0" "$n1" "$t0" "$t1" "$trail" "$samples" "$playable" \
    "$work/before-$label.json" "$work/after-$label.json" <<'PY'
import json, sys
label, n, hz, s0, s1, n0, n1, t0, t1, trail, samples, playable, before, after = sys.argv[1:]
n, hz = int(n), float(hz)
window = float(t1) - float(t0)
cpu = (float(s1) - float(s0)) / hz / window * 100
ncpu = (float(n1) - float(n0)) / hz / window * 100
before, after = (json.load(open(path)) for path in (before, after))
def push_sum(status, key):
    return sum((s.get("push") or {}).get(key, 0) or 0 for s in status["streams"])
fields = ["pushed", "retries", "failed", "dropped", "withheld"]
delta = {k: push_sum(after, k) - push_sum(before, k) for k in fields}
def fresh(s):
    age = s.get("newest_segment_age_seconds")
    return age is not None and age <= 7
live = sum(1 for s in after["streams"] if fresh(s))
pushing = label != "serve"
print("|", label, "|", f"{cpu / n:.3f}", "|", f"{ncpu:.1f}" if pushing else "-", "|",
      f"{delta['pushed'] / window:.1f}" if pushing else "-", "|",
      " / ".join(str(delta[k]) for k in fields[1:]) if pushing else "-", "|",
      (trail + f" ({samples} samples)") if pushing else "-", "|", playable, "|", f"{live}/{n}", "|")
PY
}

echo "hlsrelay benchmark: push -- $n looping channels, ${seconds} s window, nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') WebDAV origin on loopback"
echo
echo "| run | server CPU, % of a core per channel | nginx CPU, % of a core | push requests/s (PUT and DELETE, succeeded) | retries / failed / dropped / withheld | origin's copy behind, worst (segments) | plays from the origin | live |"
echo "|---|---|---|---|---|---|---|---|"
run serve
run push "http://127.0.0.1:$nport/live"
