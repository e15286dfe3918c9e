#!/usr/bin/env bash
# Installs the pinned npm packages (hls.js for the dashboard, playwright-core for the browser test,
# shaka-player for the player matrix)
# from their committed lockfiles; skips a folder already installed from the same lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's node trusts only its bundled CAs; behind a TLS-inspecting proxy the system store has the
# proxy's CA, so let npm see the system store too.
if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi
for dir in server/web tests/browser tests/players; do
  [ -f "$dir/package-lock.json" ] || continue
  stamp="$dir/node_modules/.lock-sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then continue; fi
  echo "web-deps: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
done
