#!/usr/bin/env bash
# scripts/setup.sh --no-build --listen 127.0.0.1:<free port> reports success (exit 0) with the
# server's real URL, the server answers there, and `scripts/setup.sh --stop` stops it.
# Usage: setup_listen_test.sh <build-dir>   (a build dir holding server/hlsrelay-server)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <build-dir>" >&2; exit 2; }
build=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
run=$(mktemp -d "${TMPDIR:-/tmp}/hlsrelay-setup-listen.XXXXXX")
export HLSRELAY_BUILD_DIR=$build HLSRELAY_RUN_DIR=$run
cleanup() {
  # Whatever happened, the server this test started does not outlive it.
  if [ -f "$run/hlsrelay-server.pid" ]; then kill "$(cat "$run/hlsrelay-server.pid")" 2>/dev/null || true; fi
  rm -rf "$run"
}
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[ "$port" != 8000 ] || { echo "the free port is 8000 by chance; the test needs another" >&2; exit 1; }
# No terminal on stdin/stdout: setup.sh starts the server in the background.
set +e
out=$("$repo/scripts/setup.sh" --no-build --listen "127.0.0.1:$port" </dev/null 2>&1)
code=$?
set -e
echo "$out"
[ "$code" -eq 0 ] || { echo "FAIL: setup.sh exited $code with the server on port $port" >&2; exit 1; }
grep -F "running at http://127.0.0.1:$port/" <<<"$out" >/dev/null ||
  { echo "FAIL: setup.sh does not name http://127.0.0.1:$port/" >&2; exit 1; }
pid=$(cat "$run/hlsrelay-server.pid")
body=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/healthz")
echo "healthz: $body"
case "$body" in *'"status":"ok"'*) ;; *) echo "FAIL: unexpected /healthz reply" >&2; exit 1 ;; esac

"$repo/scripts/setup.sh" --stop
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then echo "FAIL: the server (pid $pid) still runs after --stop" >&2; exit 1; fi
[ ! -f "$run/hlsrelay-server.pid" ] || { echo "FAIL: --stop left the pid file" >&2; exit 1; }
echo "PASS"
