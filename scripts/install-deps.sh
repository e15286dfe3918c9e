#!/usr/bin/env bash
# Installs every Debian 12 package hlsrelay needs to build, run and test (idempotent: only what is
# missing). Runs as root, or through sudo when it is available.
set -euo pipefail

packages=(
  ca-certificates g++ make cmake pkg-config git
  ffmpeg libavformat-dev libavcodec-dev libavutil-dev
  nlohmann-json3-dev libasio-dev catch2
  python3 python3-dev python3-venv python3-pybind11 pybind11-dev python3-setuptools python3-wheel python3-pip
  python3-fastapi python3-uvicorn python3-httpx python3-pytest
  clang libclang-rt-14-dev zlib1g-dev
  chromium nodejs curl
  # the edge cache in front of several nodes (deploy/nginx, tests/deploy) and the WebDAV origin the
  # push tests PUT to (tests/engine/test_engine_push.cpp): each test runs its own on loopback
  nginx
  # GStreamer's playbin/hlsdemux: one of the real players the player tests run against the output
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav
)
# npm comes with NodeSource's nodejs; Debian splits it out.
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# RUNLEVEL=1: the packaged nginx service is not started (the tests run their own nginx on loopback).
$SUDO env RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
