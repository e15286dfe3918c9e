#!/usr/bin/env python3
"""Benchmark 8: the tuner. A channel's continuous MPEG-TS (/stream/{id}.ts) from hlsrelay-server vs the
way IPTV tuners (xTeVe/Threadfin's ffmpeg buffer, tvhProxy) serve it: one `ffmpeg -c copy -f mpegts`
process per viewer reading the provider's HLS.

    bench/tuner.py BUILD_DIR [--rounds 5] [--viewers 1 10 50] [--seconds 20]

The provider is another channel of the same server: the demo file looping at native rate, served as
live HLS (2 s segments, 5 in the window), so both sides read the same live HLS over loopback.

- time to first byte: from a stopped channel (hlsrelay starts it on the request) and from a running
  one, vs ffmpeg started per viewer; the median and the worst of --rounds.
- N viewers for --seconds: CPU (user+sys per second of wall time, 100 % = one core) and RSS of the
  server (which is also the provider, so it is in both columns) plus, for the reference, every ffmpeg
  process; and how many times the provider handed out each byte it published (1.00: one upstream).
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ttfb(url: str, timeout: float = 30) -> float:
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        r.read(188)
    return time.monotonic() - t0


def ffmpeg_cmd(src: str) -> list:
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", src, "-map", "0", "-c", "copy",
            "-f", "mpegts", "pipe:1"]


def ffmpeg_ttfb(src: str) -> float:
    t0 = time.monotonic()
    p = subprocess.Popen(ffmpeg_cmd(src), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        p.stdout.read(188)
        return time.monotonic() - t0
    finally:
        p.kill()
        p.wait()


def proc_usage(pids: list) -> tuple:
    """(cpu seconds, rss bytes) summed over pids."""
    cpu, rss = 0.0, 0
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return cpu, rss


def drain(stream, stop: threading.Event, counter: list) -> None:
    while not stop.is_set():
        chunk = stream.read(65536)
        if not chunk:
            return
        counter[0] += len(chunk)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--viewers", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    build = Path(args.build).resolve()
    server = build / "server" / "hlsrelay-server"
    media = build / "media" / "demo.ts"
    subprocess.run([str(HERE.parent / "server" / "make-demo-media.sh"), str(media)], check=True, stdout=subprocess.DEVNULL)
    work = Path(tempfile.mkdtemp(prefix="hlsrelay-bench-tuner-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (work / "channels.json").write_text(json.dumps([
        {"id": "provider", "name": "Provider", "url": str(media), "loop": True},
        {"id": "tuned", "name": "Tuned", "url": f"{base}/hls_streams/provider/index.m3u8"},
    ]))
    srv = subprocess.Popen([str(server), "--channels", str(work / "channels.json"), "--listen", f"127.0.0.1:{port}",
                            "--autostart", "provider", "--log-level", "warn", "--max-connections-per-client", "0"],
                           stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/hls_streams/provider/index.m3u8", timeout=2) as r:
                    if r.read().count(b"#EXTINF") >= 5:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        src = f"{base}/hls_streams/provider/index.m3u8"
        stream = f"{base}/stream/tuned.ts"
        print(f"machine: {os.cpu_count()} cores; provider: {media.name} looping as live HLS (2 s segments)")
        cold, warm, ref = [], [], []
        for _ in range(args.rounds):
            urllib.request.urlopen(f"{base}/api/v1/channels/stop-stream/tuned", timeout=30).read()
            cold.append(ttfb(stream))
            warm.append(ttfb(stream))
            ref.append(ffmpeg_ttfb(src))
        fmt = lambda xs: f"{statistics.median(xs):.3f} s (worst {max(xs):.3f} s)"
        print("\n| time to first byte | hlsrelay /stream/{id}.ts | ffmpeg per viewer |")
        print("|---|---|---|")
        print(f"| channel stopped | {fmt(cold)} | {fmt(ref)} |")
        print(f"| channel running | {fmt(warm)} | (same: a new process each time) |")

        print("\n| viewers | hlsrelay CPU | hlsrelay RSS | ffmpeg CPU | ffmpeg RSS | provider bytes out per byte published, hlsrelay / ffmpeg |")
        print("|---|---|---|---|---|---|")
        for n in args.viewers:
            rows = []
            for side in ("hlsrelay", "ffmpeg"):
                # Only the side measured reads the provider: the tuned channel runs for hlsrelay's alone.
                action = "start-stream" if side == "hlsrelay" else "stop-stream"
                urllib.request.urlopen(f"{base}/api/v1/channels/{action}/tuned", timeout=30).read()
                stop = threading.Event()
                counters, threads, procs, conns = [], [], [], []
                for _ in range(n):
                    c = [0]
                    counters.append(c)
                    if side == "hlsrelay":
                        r = urllib.request.urlopen(stream, timeout=30)
                        conns.append(r)
                        t = threading.Thread(target=drain, args=(r, stop, c), daemon=True)
                    else:
                        p = subprocess.Popen(ffmpeg_cmd(src), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                             stdin=subprocess.DEVNULL)
                        procs.append(p)
                        t = threading.Thread(target=drain, args=(p.stdout, stop, c), daemon=True)
                    t.start()
                    threads.append(t)
                # The server is the provider on both sides: it is counted in both columns.
                pids = [srv.pid] + [p.pid for p in procs]
                time.sleep(2)
                cpu0, _ = proc_usage(pids)
                t0 = time.monotonic()
                served0 = json.loads(urllib.request.urlopen(f"{base}/api/v1/channels/stream-status/provider").read())
                time.sleep(args.seconds)
                cpu1, rss = proc_usage(pids)
                served1 = json.loads(urllib.request.urlopen(f"{base}/api/v1/channels/stream-status/provider").read())
                wall = time.monotonic() - t0
                stop.set()
                for r in conns:
                    r.close()
                for p in procs:
                    p.kill()
                    p.wait()
                # bytes the provider handed out per byte it published: 1 per distinct reader of each segment.
                published = served1.get("bytes_published", 0) - served0.get("bytes_published", 0)
                out = served1.get("bytes_out", 0) - served0.get("bytes_out", 0)
                rows.append(((cpu1 - cpu0) / wall * 100, rss, out / published if published else float("nan")))
                time.sleep(1)
            (hc, hr, hx), (fc, fr, fx) = rows
            print(f"| {n} | {hc:.1f} % | {hr / 2**20:.0f} MiB | {fc:.1f} % | {fr / 2**20:.0f} MiB | {hx:.2f} / {fx:.2f} |")
        return 0
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    sys.exit(main())
