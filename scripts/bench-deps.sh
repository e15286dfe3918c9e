#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/install-deps.sh: wrk (HTTP load) and nginx (the
# delivery benchmark's reference server). Idempotent: only what is missing. Runs as root, or through
# sudo when it is available. The nginx package's own service is not started (RUNLEVEL=1): the
# benchmark runs its own nginx on loopback with a generated configuration.
set -euo pipefail

packages=(wrk nginx ffmpeg)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench-deps: everything is installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "bench-deps: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi
echo "bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO env RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bench-deps: done"
