#!/usr/bin/env bash
# Sets up hlsrelay on a fresh Debian 12 machine and starts the demo server: installs what is missing,
# builds, fetches the dashboard's pinned npm packages, makes the offline demo channel's media, runs
# hlsrelay-server on http://127.0.0.1:8000 with the bundled channel list.
# In a terminal the server runs in the foreground (Ctrl-C stops it). Without one (CI, scripts) it
# starts in the background, and `scripts/setup.sh --stop` stops it.
# Extra arguments go to hlsrelay-server (e.g. --listen 0.0.0.0:8000 --channels my.m3u).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pidfile=$root/build/hlsrelay-server.pid
if [ "${1:-}" = "--stop" ]; then
  if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then echo "hlsrelay-server stopped"; fi
  rm -f "$pidfile"
  exit 0
fi

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DHLSRELAY_BUILD_SERVER=ON -DHLSRELAY_WERROR=OFF >/dev/null
cmake --build build -j"$(nproc)" --target hlsrelay-server
scripts/web-deps.sh
[ -f build/media/demo.ts ] || server/make-demo-media.sh build/media/demo.ts

server=build/server/hlsrelay-server
if [ -t 0 ] && [ -t 1 ]; then
  echo "Starting hlsrelay-server: open http://127.0.0.1:8000/ (Ctrl-C stops it)"
  exec "$server" "$@"
fi
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then kill "$(cat "$pidfile")"; sleep 1; fi
nohup "$server" "$@" >build/hlsrelay-server.log 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 50); do
  if curl -fsS http://127.0.0.1:8000/healthz >/dev/null 2>&1 || \
     /usr/bin/python3 -c 'import urllib.request,sys; urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=1)' 2>/dev/null; then
    echo "hlsrelay-server is running at http://127.0.0.1:8000/ (pid $(cat "$pidfile"), log build/hlsrelay-server.log)"
    echo "Stop it with: scripts/setup.sh --stop"
    exit 0
  fi
  sleep 0.2
done
echo "hlsrelay-server did not come up; its log:" >&2
cat build/hlsrelay-server.log >&2
exit 1
