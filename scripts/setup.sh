#!/usr/bin/env bash
# Sets up hlsrelay on a fresh Debian 12 machine and starts the demo server: installs what is missing,
# builds the server and the C library (what `cmake --install build` installs), fetches the
# dashboard's pinned npm packages, makes the offline demo channel's media, runs hlsrelay-server on
# http://127.0.0.1:8000 with the bundled channel list.
# In a terminal the server runs in the foreground (Ctrl-C stops it). Without one (CI, scripts) it
# starts in the background, and `scripts/setup.sh --stop` stops it.
#
#   scripts/setup.sh [SERVER OPTIONS]             set up, build, start
#   scripts/setup.sh --no-build [SERVER OPTIONS]  start the server already built (no apt, no build)
#   scripts/setup.sh --build-only                 install what is missing and build, start nothing
#   scripts/setup.sh --stop                       stop the server a background run started
#
# Server options go to hlsrelay-server (e.g. --listen 0.0.0.0:8000 --channels my.m3u --autostart all).
# Environment: HLSRELAY_BUILD_DIR (default: build), HLSRELAY_RUN_DIR (pid file and log of a
# background run; default: the build dir).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${HLSRELAY_BUILD_DIR:-build}
run_dir=${HLSRELAY_RUN_DIR:-$build}
pidfile=$run_dir/hlsrelay-server.pid
logfile=$run_dir/hlsrelay-server.log

mode=run
case "${1:-}" in
  --stop)
    if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then echo "hlsrelay-server stopped"; fi
    rm -f "$pidfile"
    exit 0 ;;
  --no-build) mode=no-build; shift ;;
  --build-only) mode=build-only; shift ;;
esac

# The URL a --listen ADDR:PORT argument (the last one wins, as in the server) is reached at locally.
listen_url() {
  local listen=127.0.0.1:8000 prev=
  for a in "$@"; do
    case "$a" in --listen=*) listen=${a#--listen=} ;; esac
    [ "$prev" = --listen ] && listen=$a
    prev=$a
  done
  local host=${listen%:*} port=${listen##*:}
  case "$host" in ""|0.0.0.0) host=127.0.0.1 ;; "[::]") host="[::1]" ;; esac
  echo "http://$host:$port/"
}

if [ "$mode" != no-build ]; then
  scripts/install-deps.sh
  # The C library is built too: `cmake --install` installs it with the server.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHLSRELAY_BUILD_SERVER=ON -DHLSRELAY_BUILD_CAPI=ON \
    -DHLSRELAY_WERROR=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target hlsrelay-server hlsrelay
  [ "$mode" = build-only ] && exit 0
  scripts/web-deps.sh
fi
server=$build/server/hlsrelay-server
[ -x "$server" ] || { echo "setup: $server is not built; run scripts/setup.sh without --no-build" >&2; exit 1; }
[ -f "$build/media/demo.ts" ] || server/make-demo-media.sh "$build/media/demo.ts"

if [ -t 0 ] && [ -t 1 ]; then
  echo "Starting hlsrelay-server: open $(listen_url "$@") (Ctrl-C stops it)"
  exec "$server" "$@"
fi
mkdir -p "$run_dir"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  kill "$(cat "$pidfile")"
  for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
fi
nohup "$server" "$@" >"$logfile" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"
# The server logs the URL it serves at once it listens ("serving N channel(s) at http://..."): that
# is the address to check, whatever --listen said (port 0 included).
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || break
  url=$(sed -n 's|.* serving [0-9]* channel(s) at \(http://[^ ]*/\).*|\1|p' "$logfile" | head -n1)
  if [ -n "$url" ]; then
    health=${url}healthz
    case "$url" in
      http://0.0.0.0:*) health=http://127.0.0.1:${url#http://0.0.0.0:}healthz ;;
      "http://[::]:"*) health="http://[::1]:${url#http://\[::\]:}healthz" ;;
    esac
    if curl -fsS --max-time 2 "$health" >/dev/null 2>&1 || \
       /usr/bin/python3 -c 'import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)' "$health" 2>/dev/null; then
      echo "hlsrelay-server is running at $url (pid $pid, log $logfile)"
      echo "Stop it with: scripts/setup.sh --stop"
      exit 0
    fi
  fi
  sleep 0.2
done
echo "hlsrelay-server did not come up (expected at $(listen_url "$@")); its log:" >&2
cat "$logfile" >&2
kill "$pid" 2>/dev/null || true
rm -f "$pidfile"
exit 1
