#!/usr/bin/env bash
# Renders deploy/nginx/hlsrelay-edge.conf.in for the given hlsrelay-server nodes into a whole
# nginx.conf under DIR (its own pid, logs, temp and cache directories: no root paths), checks it and
# runs nginx in the foreground (stop it with SIGTERM or Ctrl-C).
#
#   run-edge.sh --dir /tmp/edge --listen 127.0.0.1:8080 127.0.0.1:8001 127.0.0.1:8002 127.0.0.1:8003
#   run-edge.sh --render-only ...     only write DIR/nginx.conf and DIR/hlsrelay-edge.conf
#
# Each node: hlsrelay-server --channels SAME_LIST --on-demand --max-connections-per-client 0
# --listen ADDR:PORT. Per request, DIR/logs/access.log says the cache status and the node(s) asked.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="" listen="127.0.0.1:8080" render_only=0 nginx="${HLSRELAY_NGINX:-/usr/sbin/nginx}"
nodes=()
usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="${2:?--dir wants a directory}"; shift 2 ;;
    --listen) listen="${2:?--listen wants ADDR:PORT}"; shift 2 ;;
    --render-only) render_only=1; shift ;;
    -h|--help) usage 0 ;;
    -*) echo "run-edge.sh: unknown option $1" >&2; usage ;;
    *) nodes+=("$1"); shift ;;
  esac
done
[ -n "$dir" ] || { echo "run-edge.sh: --dir is required" >&2; usage; }
[ ${#nodes[@]} -gt 0 ] || { echo "run-edge.sh: name at least one node ADDR:PORT" >&2; usage; }
node_re='^[][A-Za-z0-9.:_-]+:[0-9]+$'
for n in "${nodes[@]}"; do
  [[ "$n" =~ $node_re ]] || { echo "run-edge.sh: a node is ADDR:PORT, not '$n'" >&2; exit 2; }
done

mkdir -p "$dir"/logs "$dir"/tmp "$dir"/cache
dir="$(cd "$dir" && pwd)"
server_lines=""
for n in "${nodes[@]}"; do server_lines+="server $n max_fails=1 fail_timeout=10s;\n    "; done
# Placeholders are filled in outside comments only (the header names them).
sed -e "/^[[:space:]]*#/!s|@LISTEN@|$listen|" -e "/^[[:space:]]*#/!s|@CACHE_DIR@|$dir/cache|" \
  -e "/^[[:space:]]*#/!s|@NODES@|${server_lines%\\n    }|" \
  "$here/hlsrelay-edge.conf.in" > "$dir/hlsrelay-edge.conf"

# As root, the workers would run as "nobody" and could not write DIR: keep the caller's user.
user_line=""
if [ "$(id -u)" -eq 0 ]; then user_line="user $(id -un) $(id -gn);"; fi
cat > "$dir/nginx.conf" <<CONF
# Rendered by deploy/nginx/run-edge.sh; the edge itself is hlsrelay-edge.conf.
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    include $dir/hlsrelay-edge.conf;
    access_log $dir/logs/access.log hlsrelay_edge;
}
CONF

"$nginx" -t -q -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf"
if [ "$render_only" -eq 1 ]; then
  echo "run-edge.sh: wrote $dir/nginx.conf"
  exit 0
fi
echo "run-edge.sh: nginx on http://$listen/ in front of ${nodes[*]}"
unset NGINX  # nginx takes it for inherited listening sockets (binary upgrade)
exec "$nginx" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf"
