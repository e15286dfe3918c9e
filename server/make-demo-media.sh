#!/usr/bin/env bash
# Generates the demo channel's looping source: 60 s of 1280x720@30 test pattern + tone, H.264/AAC in MPEG-TS.
# Usage: make-demo-media.sh [OUTPUT]   (default: build/media/demo.ts under the source tree)
#        FORCE=1 regenerates an existing file.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../build/media/demo.ts}"

if [ -s "$out" ] && [ "${FORCE:-0}" != 1 ]; then
  echo "make-demo-media: $out exists (FORCE=1 to regenerate)"
  exit 0
fi
command -v ffmpeg >/dev/null 2>&1 || { echo "make-demo-media: ffmpeg not found (apt-get install ffmpeg)" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# 2 s GOPs (60 frames, no scene-cut keyframes) so that segments cut on every GOP boundary.
ffmpeg -hide_banner -loglevel error -nostdin -y \
  -f lavfi -i "testsrc2=size=1280x720:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" \
  -t 60 -map 0:v -map 1:a \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0 \
  -b:v 2500k -maxrate 2500k -bufsize 5000k \
  -c:a aac -b:a 128k -ac 2 \
  -f mpegts "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "make-demo-media: wrote $out"
