#!/usr/bin/env python3
"""LL-HLS load clients and measurement (issue 13: latency and server CPU for N channels with K players
each, LL-HLS side by side with classic HLS). Stdlib only.

Two ways to use it:

  ll_clients.py measure --url http://127.0.0.1:PORT --channels c0,c1,... [--clients K] [--mode ll|classic]
                        [--seconds 60] [--warmup 5] [--server-pid PID]
      K clients per channel against a running server; with --server-pid also samples that process.

  ll_clients.py run --source FILE --n N [--mode ll|classic] [--clients K] [--seconds 60] [--player]
      what bench/ll-scale.sh runs for one row: starts hlsrelay-server with N channels looping FILE
      (fMP4, max_segments 8; low_latency on in ll mode), starts them spread over one segment duration,
      waits until every channel publishes, measures as above, stops the server. --player also plays
      channel 0 with hls.js (tests/players/ll_player.mjs, headless Chromium) during the run.

Each client holds one keep-alive HTTP/1.1 connection (asyncio, one event loop for all clients).
  ll:      like an LL-HLS player: reads the playlist, then loops: a blocking reload for the part after the
           last one listed (?_HLS_msn=M&_HLS_part=P: the open segment's next part, which the server maps
           to the next segment's part 0 when that segment closes), then GETs the newest part listed.
  classic: like hls.js on a classic playlist: polls the playlist every half target duration and GETs
           each segment that appeared since the last poll (from the first poll on, none of the backlog).

Measured over the window (after the warm-up), per client and overall:
  requests/s; errors: every answer other than 200 (by status) and every failed request (timeout,
  connection closed) in the window;
  delivery latency at each receipt of a part (ll) or segment (classic): the wall clock when its last
  byte arrived minus the media time of its end (ll: its segment's EXT-X-PROGRAM-DATE-TIME + the
  durations of the parts before it + its own; classic: PROGRAM-DATE-TIME + EXTINF); the relay dates
  media by when it reached it, so this is how long after the source the newest media reached the player;
  frame age: the same for the chunk's first frame (wall clock minus the chunk's start), the least
  latency a player that plays every chunk the moment it arrives could have;
  ll only: playlist latency (answer of a blocking reload minus the end of the newest part it lists) and
  answers that did not list the part asked for.
  The server process (--server-pid): CPU (utime+stime of /proc/PID/stat per second of wall time, % of
  one core: mean over the window and the per-second samples' p50/max), RSS and PSS
  (/proc/PID/smaps_rollup, mean/max), and its own count of responses by status (/metrics, read at the
  window's start and end: one of those reads is in the count; --player's requests too). This
  process's own CPU (os.times) the same way, and how late its event loop woke (lag p50/p95/max): a
  client short of CPU shows there, and its latencies would be its own.

Prints one JSON line. Exit status: 0; 1 when the run failed (the server died, a client had no
successful receipt in the window, the server never published); 2 bad usage.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PLAYERS = REPO / "tests" / "players"
CLK_TCK = os.sysconf("SC_CLK_TCK")
REQUEST_TIMEOUT = 10.0   # a blocking reload is answered within 3 target durations (6 s), 503 after


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def quantile(values: list[float], q: float):
    """Nearest rank of a sorted list; None when empty."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))]


def summary(values: list[float], digits: int = 4) -> dict:
    v = sorted(values)
    r = lambda x: None if x is None else round(x, digits)
    return {"p50": r(quantile(v, 0.5)), "p95": r(quantile(v, 0.95)), "max": r(v[-1] if v else None),
            "min": r(v[0] if v else None), "n": len(v)}


# ---------------------------------------------------------------------------------------------
# Playlists

_pdt_cache: dict[str, float] = {}


def pdt_seconds(text: str) -> float:
    """EXT-X-PROGRAM-DATE-TIME value -> POSIX seconds (cached: each date recurs in many playlists)."""
    v = _pdt_cache.get(text)
    if v is None:
        if len(_pdt_cache) > 50000:
            _pdt_cache.clear()
        v = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        _pdt_cache[text] = v
    return v


class Playlist:
    __slots__ = ("target", "segments", "parts", "open_msn", "open_parts")

    def __init__(self):
        self.target = 2.0
        self.segments: list[tuple[int, float | None, float, str]] = []   # (msn, start, extinf, uri)
        self.parts: list[tuple[int, int, float | None, float, str]] = []  # (msn, index, start, duration, uri)
        self.open_msn = 0      # the segment being cut (after the last whole one)
        self.open_parts = 0    # its parts listed so far


def parse_playlist(text: str) -> Playlist:
    """The media playlist's segments and parts with their media times (from PROGRAM-DATE-TIME; a
    segment without one continues its predecessor)."""
    p = Playlist()
    msn, start, extinf, index, offset = 0, None, 0.0, 0, 0.0
    for line in text.split("\n"):
        if not line:
            continue
        if line[0] != "#":
            p.segments.append((msn, start, extinf, line.strip()))
            msn += 1
            start = None if start is None else start + extinf
            index, offset = 0, 0.0
        elif line.startswith("#EXT-X-PART:"):
            i = line.find("DURATION=")
            j = line.find('URI="')
            d = float(line[i + 9:line.index(",", i)] if line.find(",", i) > 0 else line[i + 9:]) if i >= 0 else 0.0
            uri = line[j + 5:line.index('"', j + 5)] if j >= 0 else ""
            p.parts.append((msn, index, None if start is None else start + offset, d, uri))
            index += 1
            offset += d
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            start = pdt_seconds(line[25:].strip())
        elif line.startswith("#EXTINF:"):
            extinf = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line[22:])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            p.target = float(line[22:])
        elif line.startswith("#EXT-X-SKIP:"):
            k = line.find("SKIPPED-SEGMENTS=")
            msn += int(line[k + 17:].split(",")[0])
    p.open_msn, p.open_parts = msn, index
    return p


# ---------------------------------------------------------------------------------------------
# A keep-alive HTTP/1.1 client (the server always sends Content-Length)

class Conn:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    def close(self):
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:
                pass
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """(status, body); raises OSError/TimeoutError/asyncio.IncompleteReadError on failure."""
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
                head = await self.reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                status = int(lines[0].split(b" ", 2)[1])
                length, close = 0, False
                for h in lines[1:]:
                    k, _, v = h.partition(b":")
                    k = k.strip().lower()
                    if k == b"content-length":
                        length = int(v)
                    elif k == b"connection" and v.strip().lower() == b"close":
                        close = True
                body = await self.reader.readexactly(length) if length else b""
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, body


# ---------------------------------------------------------------------------------------------
# Clients

class Window:
    """The measuring window in time.monotonic(); receipts and requests count inside it only."""

    def __init__(self, start: float, end: float):
        self.start, self.end = start, end

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


class ClientStats:
    __slots__ = ("channel", "k", "requests", "statuses", "failures", "latency", "age", "playlist_latency",
                 "missing", "receipts", "first_error")

    def __init__(self, channel: str, k: int):
        self.channel, self.k = channel, k
        self.requests = 0
        self.statuses: dict[int, int] = {}   # non-200 answers in the window
        self.failures = 0                    # requests without an answer (timeout, closed) in the window
        self.latency: list[float] = []
        self.age: list[float] = []
        self.playlist_latency: list[float] = []
        self.missing = 0                     # blocking reloads answered without the part asked for
        self.receipts = 0
        self.first_error = None

    def errors(self) -> int:
        return self.failures + sum(self.statuses.values())


async def fetch(conn: Conn, path: str, st: ClientStats, window: Window) -> tuple[int, bytes, float]:
    """(status, body, wall clock at the last byte); status 0 when the request failed."""
    try:
        status, body = await conn.get(path)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as e:
        status, body = 0, b""
        if st.first_error is None:
            st.first_error = f"{path}: {type(e).__name__} {e}"[:200]
    wall, now = time.time(), time.monotonic()
    if now in window:
        st.requests += 1
        if status == 0:
            st.failures += 1
        elif status != 200:
            st.statuses[status] = st.statuses.get(status, 0) + 1
            if st.first_error is None:
                st.first_error = f"{path}: {status}"
    return status, body, wall


async def ll_client(conn: Conn, channel: str, st: ClientStats, window: Window, stop: asyncio.Event) -> None:
    base = f"/hls_streams/{channel}/"
    playlist = base + "index.m3u8"
    p = None          # the newest playlist, parsed
    last_uri = None   # the newest part fetched
    while not stop.is_set():
        if p is None:
            status, body, _ = await fetch(conn, playlist, st, window)
            if status != 200:
                await asyncio.sleep(0.5)
                continue
            p = parse_playlist(body.decode())
            if not p.parts:
                p = None
                await asyncio.sleep(0.3)
                continue
        # The live edge: the newest part listed.
        msn, index, start, duration, uri = p.parts[-1]
        if uri != last_uri:
            status, body, wall = await fetch(conn, base + uri, st, window)
            if status == 200 and body:
                last_uri = uri
                if time.monotonic() in window:
                    st.receipts += 1
                    if start is not None:
                        st.latency.append(wall - (start + duration))
                        st.age.append(wall - start)
        # Held until the part after the last one listed exists.
        want = (p.open_msn, p.open_parts)
        status, body, wall = await fetch(conn, f"{playlist}?_HLS_msn={want[0]}&_HLS_part={want[1]}", st, window)
        if status != 200:
            p = None
            await asyncio.sleep(0.2 if status else 0.5)
            continue
        p = parse_playlist(body.decode())
        newest = p.parts[-1] if p.parts else None
        if time.monotonic() in window:
            if newest is None or (newest[0], newest[1]) < want:
                st.missing += 1
            elif newest[2] is not None:
                st.playlist_latency.append(wall - (newest[2] + newest[3]))
        if newest is None:
            p = None


async def classic_client(conn: Conn, channel: str, st: ClientStats, window: Window, stop: asyncio.Event) -> None:
    base = f"/hls_streams/{channel}/"
    playlist = base + "index.m3u8"
    seen = None   # the newest msn fetched (or present at the first poll)
    while not stop.is_set():
        t0 = time.monotonic()
        status, body, _ = await fetch(conn, playlist, st, window)
        interval = 1.0
        if status == 200:
            p = parse_playlist(body.decode())
            interval = p.target / 2
            if seen is None:
                seen = p.segments[-1][0] if p.segments else -1
            for msn, start, extinf, uri in p.segments:
                if msn <= seen:
                    continue
                status, data, wall = await fetch(conn, base + uri, st, window)
                seen = msn
                if status == 200 and data and time.monotonic() in window:
                    st.receipts += 1
                    if start is not None:
                        st.latency.append(wall - (start + extinf))
                        st.age.append(wall - start)
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, t0 + interval - time.monotonic()))
        except TimeoutError:
            pass


async def lag_probe(lags: list[float], window: Window, stop: asyncio.Event) -> None:
    """How late the event loop wakes a 50 ms sleep: the clients' own delay when short of CPU."""
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.05)
        now = time.monotonic()
        if now in window:
            lags.append(now - t - 0.05)


async def run_clients(host: str, port: int, channels: list[str], k: int, mode: str, warmup: float,
                      seconds: float, on_window=None) -> tuple[list[ClientStats], list[float], Window]:
    start = time.monotonic()
    window = Window(start + warmup, start + warmup + seconds)
    stop = asyncio.Event()
    stats, tasks, conns = [], [], []
    client = ll_client if mode == "ll" else classic_client
    lags: list[float] = []
    tasks.append(asyncio.create_task(lag_probe(lags, window, stop)))
    total = len(channels) * k
    # Started spread over the first second (or a quarter of the warm-up): no burst of connections.
    spread = min(1.0, warmup / 4) / max(1, total)
    for j in range(k):
        for c in channels:
            st = ClientStats(c, j)
            conn = Conn(host, port)
            stats.append(st)
            conns.append(conn)
            tasks.append(asyncio.create_task(client(conn, c, st, window, stop)))
            if spread:
                await asyncio.sleep(spread)
    await asyncio.sleep(max(0.0, window.start - time.monotonic()))
    if on_window:
        on_window("start")
    await asyncio.sleep(max(0.0, window.end - time.monotonic()))
    if on_window:
        on_window("end")
    stop.set()
    for c in conns:
        c.close()   # wakes the clients held in a blocking reload
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats, lags, window


# ---------------------------------------------------------------------------------------------
# Process sampling

def proc_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return None


def proc_memory_kb(pid: int) -> tuple[int, int] | None:
    """(Rss, Pss) in kB from /proc/PID/smaps_rollup."""
    try:
        rss = pss = 0
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
        return rss, pss
    except (OSError, IndexError, ValueError):
        return None


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def server_metrics(url: str) -> dict[str, float]:
    """Counters of /metrics: responses by status, reconnects summed over the channels."""
    out: dict[str, float] = {}
    try:
        text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    except (OSError, urllib.error.URLError):
        return out
    for line in text.splitlines():
        if line.startswith("hlsrelay_http_requests_total{code="):
            code = line.split('"')[1]
            out[f"http_{code}"] = out.get(f"http_{code}", 0) + float(line.split()[-1])
        elif line.startswith("hlsrelay_channel_reconnects_total{"):
            out["reconnects"] = out.get("reconnects", 0) + float(line.split()[-1])
    return out


class Sampler(threading.Thread):
    """Once a second: the server's CPU and memory, and this process's CPU. Own thread, so a busy event
    loop does not skew it (each sample is divided by the wall time it covers)."""

    def __init__(self, server_pid: int | None, server_url: str | None):
        super().__init__(daemon=True)
        self.pid, self.url = server_pid, server_url
        self.active = threading.Event()
        self.done = threading.Event()
        self.server_cpu: list[float] = []
        self.client_cpu: list[float] = []
        self.rss: list[int] = []
        self.pss: list[int] = []
        self.marks: dict[str, tuple[float, float | None, float, dict]] = {}
        self.died = False

    def mark(self, name: str) -> None:
        """Window start/end: monotonic time, the server's and this process's CPU seconds, /metrics."""
        metrics = server_metrics(self.url) if self.url else {}
        self.marks[name] = (time.monotonic(), proc_cpu_seconds(self.pid) if self.pid else None, self_cpu_seconds(), metrics)
        if name == "start":
            self.active.set()
        else:
            self.active.clear()
            self.done.set()

    def run(self) -> None:
        self.active.wait()
        last = (time.monotonic(), proc_cpu_seconds(self.pid) if self.pid else None, self_cpu_seconds())
        while not self.done.wait(1.0):
            now = (time.monotonic(), proc_cpu_seconds(self.pid) if self.pid else None, self_cpu_seconds())
            span = now[0] - last[0]
            if self.pid:
                if now[1] is None:
                    self.died = True
                elif last[1] is not None and span > 0:
                    self.server_cpu.append(100 * (now[1] - last[1]) / span)
                m = proc_memory_kb(self.pid)
                if m:
                    self.rss.append(m[0])
                    self.pss.append(m[1])
            if span > 0:
                self.client_cpu.append(100 * (now[2] - last[2]) / span)
            last = now

    def result(self) -> dict:
        s, e = self.marks.get("start"), self.marks.get("end")
        out: dict = {}
        if not s or not e:
            return out
        span = e[0] - s[0]
        r = lambda x, d=1: None if x is None else round(x, d)
        per_second = lambda v: {"p50": r(quantile(sorted(v), 0.5)), "max": r(max(v) if v else None)}
        if self.pid:
            cpu = None if s[1] is None or e[1] is None else 100 * (e[1] - s[1]) / span
            out["server"] = {
                "cpu_pct": r(cpu, 2), "cpu_pct_per_second": per_second(self.server_cpu),
                "rss_mb": {"mean": r(sum(self.rss) / len(self.rss) / 1024 if self.rss else None),
                           "max": r(max(self.rss) / 1024 if self.rss else None)},
                "pss_mb": {"mean": r(sum(self.pss) / len(self.pss) / 1024 if self.pss else None),
                           "max": r(max(self.pss) / 1024 if self.pss else None)},
                "died": self.died or e[1] is None,
            }
            if s[3] and e[3]:
                d = {k: int(e[3][k] - s[3].get(k, 0)) for k in e[3]}
                out["server"]["responses"] = {k[5:]: v for k, v in sorted(d.items()) if k.startswith("http_") and v}
                out["server"]["reconnects"] = d.get("reconnects", 0)
        out["client"] = {"cpu_pct": r(100 * (e[2] - s[2]) / span, 2), "cpu_pct_per_second": per_second(self.client_cpu)}
        out["window_seconds"] = round(span, 3)
        return out


# ---------------------------------------------------------------------------------------------
# Results

def aggregate(stats: list[ClientStats], lags: list[float], window: Window, mode: str, sampler: Sampler | None) -> dict:
    span = window.end - window.start
    statuses: dict[str, int] = {}
    for st in stats:
        for code, n in st.statuses.items():
            statuses[str(code)] = statuses.get(str(code), 0) + n
    latency = [x for st in stats for x in st.latency]
    clients = []
    for st in stats:
        l = sorted(st.latency)
        clients.append({"channel": st.channel, "k": st.k, "req_s": round(st.requests / span, 2),
                        "receipts": st.receipts, "errors": st.errors(),
                        "p50": None if not l else round(quantile(l, 0.5), 4),
                        "p95": None if not l else round(quantile(l, 0.95), 4),
                        "max": None if not l else round(l[-1], 4)})
    silent = [f"{st.channel}/{st.k}" for st in stats if st.receipts == 0]
    out = {
        "mode": mode, "channels": len({st.channel for st in stats}), "clients": len(stats),
        "seconds": round(span, 2),
        "requests": sum(st.requests for st in stats),
        "requests_per_s": round(sum(st.requests for st in stats) / span, 1),
        "receipts": sum(st.receipts for st in stats),
        "errors": sum(st.errors() for st in stats),
        "error_statuses": statuses, "failed_requests": sum(st.failures for st in stats),
        "latency": summary(latency), "frame_age": summary([x for st in stats for x in st.age]),
        "clients_without_receipt": silent[:20], "clients_without_receipt_count": len(silent),
        "first_errors": sorted({st.first_error for st in stats if st.first_error})[:5],
        "client_loop_lag": summary(lags),
        "worst_client_p95": max((c["p95"] for c in clients if c["p95"] is not None), default=None),
    }
    if mode == "ll":
        out["playlist_latency"] = summary([x for st in stats for x in st.playlist_latency])
        out["answers_without_part"] = sum(st.missing for st in stats)
    if sampler:
        out.update(sampler.result())
    out["per_client"] = clients
    return out


def measure(url: str, channels: list[str], k: int, mode: str, warmup: float, seconds: float,
            server_pid: int | None) -> dict:
    host_port = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    sampler = Sampler(server_pid, url.rstrip("/"))
    sampler.start()
    stats, lags, window = asyncio.run(run_clients(host, int(port), channels, k, mode, warmup, seconds,
                                                  on_window=sampler.mark))
    sampler.join(5)
    return aggregate(stats, lags, window, mode, sampler)


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # the server started after inherits it


# ---------------------------------------------------------------------------------------------
# One row: server, channels, clients (and optionally hls.js)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_published(url: str, ids: list[str], mode: str, bound: float, server: subprocess.Popen) -> float:
    """Until every channel's playlist lists a part (ll) or a segment (classic); seconds taken."""
    t0 = time.monotonic()
    pending = list(ids)
    want = b"#EXT-X-PART:" if mode == "ll" else b"#EXTINF"
    while pending:
        if server.poll() is not None:
            raise RuntimeError(f"hlsrelay-server exited ({server.returncode}) before every channel published")
        if time.monotonic() - t0 > bound:
            raise RuntimeError(f"{len(pending)} of {len(ids)} channels did not publish within {bound:.0f} s "
                               f"(first: {pending[:5]})")
        still = []
        for c in pending:
            try:
                if want not in urllib.request.urlopen(f"{url}/hls_streams/{c}/index.m3u8", timeout=5).read():
                    still.append(c)
            except (OSError, urllib.error.URLError):
                still.append(c)
        pending = still
        if pending:
            time.sleep(0.5)
    return time.monotonic() - t0


def run_row(args) -> int:
    server_path = Path(args.server)
    source = Path(args.source).resolve()
    if not server_path.exists() or not source.exists():
        print(json.dumps({"error": f"missing {server_path if not server_path.exists() else source}"}))
        return 2
    ids = [f"c{i}" for i in range(args.n)]
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="hlsrelay-ll-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    origin = None
    player = None
    bound = args.warmup + args.seconds + 120 + 0.5 * args.n + (60 if args.player else 0)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError(f"the run took over {bound:.0f} s")))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(TimeoutError("terminated")))
    signal.alarm(int(bound))
    result: dict = {"n": args.n, "mode": args.mode, "clients_per_channel": args.clients}
    status = 0
    try:
        raise_fd_limit(args.n * args.clients * 2 + 256)
        channels = [{"id": c, "name": c, "url": str(source), "low_latency": args.mode == "ll",
                     "container": "fmp4", "max_segments": 8, "loop": True} for c in ids]
        (work / "channels.json").write_text(json.dumps(channels))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [str(server_path), "--channels", str(work / "channels.json"), "--listen", f"127.0.0.1:{port}",
               "--autostart", "all" if args.stagger <= 0 else "none",
               "--max-connections-per-client", "0",
               "--max-connections", str(max(2048, args.n * args.clients + 512))]
        server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(work / "hlsrelay-server.log", "w"),
                                  stderr=subprocess.STDOUT)
        procs.append(server)
        matrix_wait = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).read()
                break
            except (OSError, urllib.error.URLError):
                if server.poll() is not None or time.monotonic() > matrix_wait:
                    raise RuntimeError(f"hlsrelay-server did not come up (exit {server.poll()}); "
                                       f"log: {(work / 'hlsrelay-server.log').read_text()[-600:]}")
                time.sleep(0.1)
        if args.stagger > 0:
            # Channels started evenly over one segment duration: their parts come out at different
            # moments, as independent live channels' do (all at once, every channel publishes together).
            t0 = time.monotonic()
            for i, c in enumerate(ids):
                time.sleep(max(0.0, t0 + i * args.stagger / len(ids) - time.monotonic()))
                urllib.request.urlopen(f"{url}/api/v1/channels/start-stream/{c}", timeout=10).read()
        result["publish_seconds"] = round(wait_published(url, ids, args.mode, 60 + 0.5 * args.n, server), 2)
        log(f"{args.n} channel(s) publishing ({args.mode}) at {url}; {args.clients} client(s) each, "
            f"{args.warmup:.0f} s warm-up + {args.seconds:.0f} s")
        if args.player:
            sys.path.insert(0, str(PLAYERS))
            import matrix  # noqa: E402 (the player matrix's loopback origin and paths)
            (work / "player").mkdir(exist_ok=True)
            shutil.copy(matrix.HLSJS, work / "player" / "hls.min.js")
            (work / "player" / "index.html").write_text(
                '<!doctype html><html><body><video id="v" muted playsinline></video>'
                '<script src="hls.min.js"></script></body></html>')
            origin = matrix.Origin(work)
            # Its 10 s warm-up (ll_latency.py's) overlaps the clients' warm-up; it samples for the window.
            player = subprocess.Popen(
                ["node", str(PLAYERS / "ll_player.mjs"), "--page", f"{origin.url}/player/index.html",
                 "--playwright", str(matrix.PLAYWRIGHT), "--chromium", str(matrix.CHROMIUM),
                 "--url", f"{url}/hls_streams/{ids[0]}/index.m3u8", "--seconds", str(int(args.seconds)),
                 "--warmup", "10"] + (["--classic"] if args.mode == "classic" else []),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(work / "player.log", "w"),
                text=True, start_new_session=True)
        r = measure(url, ids, args.clients, args.mode, args.warmup, args.seconds, server.pid)
        result.update(r)
        if player is not None:
            try:
                out, _ = player.communicate(timeout=args.seconds + 60)
                lines = [l for l in out.splitlines() if l.startswith("{")]
                result["player"] = json.loads(lines[-1]) if lines else {"ok": False, "detail": "no result"}
            except subprocess.TimeoutExpired:
                result["player"] = {"ok": False, "detail": "timed out"}
            if not result["player"].get("latency"):
                status = 1
        if server.poll() is not None or r.get("server", {}).get("died"):
            result["failure"] = f"hlsrelay-server died (exit {server.poll()})"
            status = 1
        elif r["clients_without_receipt_count"]:
            result["failure"] = f"{r['clients_without_receipt_count']} client(s) without a successful receipt"
            status = 1
    except (TimeoutError, RuntimeError, OSError, urllib.error.URLError) as e:
        result["failure"] = f"{type(e).__name__}: {e}"
        status = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # the cleanup is not interrupted; it is bounded below
        if player is not None and player.poll() is None:
            try:
                os.killpg(player.pid, signal.SIGTERM)
                player.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(player.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if origin:
            origin.close()
        if status and not args.work_dir:
            tail = (work / "hlsrelay-server.log").read_text()[-1500:] if (work / "hlsrelay-server.log").exists() else ""
            result["server_log_tail"] = tail
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    if not args.per_client:
        result.pop("per_client", None)
    print(json.dumps(result), flush=True)
    return status


def measure_cmd(args) -> int:
    bound = args.warmup + args.seconds + 60
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError(f"over {bound:.0f} s")))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(TimeoutError("terminated")))
    signal.alarm(int(bound))
    channels = [c for c in args.channels.split(",") if c]
    raise_fd_limit(len(channels) * args.clients + 256)
    try:
        r = measure(args.url, channels, args.clients, args.mode, args.warmup, args.seconds, args.server_pid)
    except TimeoutError as e:
        print(json.dumps({"failure": str(e)}), flush=True)
        return 1
    finally:
        signal.alarm(0)
    failed = r["clients_without_receipt_count"] or r.get("server", {}).get("died")
    if failed:
        r["failure"] = "server died" if r.get("server", {}).get("died") else "client(s) without a successful receipt"
    if not args.per_client:
        r.pop("per_client", None)
    print(json.dumps(r), flush=True)
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description="LL-HLS load clients and measurement (bench/ll-scale.sh).",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mode", choices=["ll", "classic"], default="ll")
    common.add_argument("--clients", type=int, default=1, metavar="K", help="clients per channel (default 1)")
    common.add_argument("--seconds", type=float, default=60, help="measuring window (default 60)")
    common.add_argument("--warmup", type=float, default=5, help="seconds of load before the window (default 5)")
    common.add_argument("--no-per-client", dest="per_client", action="store_false",
                        help="leave the per-client figures out of the JSON")
    m = sub.add_parser("measure", parents=[common], help="clients against a running server")
    m.add_argument("--url", required=True, help="the server, http://HOST:PORT")
    m.add_argument("--channels", required=True, help="channel ids, comma-separated")
    m.add_argument("--server-pid", type=int, help="sample this process's CPU and memory")
    r = sub.add_parser("run", parents=[common], help="start a server with N channels, measure, stop it")
    r.add_argument("--server", default=os.environ.get("HLSRELAY_SERVER", str(REPO / "build" / "server" / "hlsrelay-server")))
    r.add_argument("--source", required=True, help="the media file every channel loops (read at its rate)")
    r.add_argument("--n", type=int, required=True, help="channels")
    r.add_argument("--stagger", type=float, default=2.0,
                   help="start the channels evenly over this many seconds (default 2: one segment); 0: --autostart all")
    r.add_argument("--player", action="store_true", help="also play channel 0 with hls.js (headless Chromium)")
    r.add_argument("--work-dir", help="keep the channel list and logs here (default: a temp dir, removed)")
    args = ap.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.warmup < 0:
        ap.error("--clients >= 1, --seconds > 0, --warmup >= 0")
    return run_row(args) if args.cmd == "run" else measure_cmd(args)


if __name__ == "__main__":
    sys.exit(main())
