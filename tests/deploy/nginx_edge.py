#!/usr/bin/env python3
"""hlsrelay behind the nginx edge cache of deploy/nginx, sharded over three nodes, on loopback.

Starts three hlsrelay-server nodes (the same channel list, --on-demand) and nginx rendered by
deploy/nginx/run-edge.sh in front of them (its own pid, logs, temp and cache under the work dir), then:

  add node   a fourth node, added to the configuration (nginx reloaded), takes some channels and
             no channel moves between the other nodes; removed again, every channel is back
  routing    every channel, asked through the edge, runs on exactly one node; the API's
             stream-status of a channel (through the edge) comes from that node
  play       ffmpeg plays three channels through the edge at once without a complaint
  load       VIEWERS threads play the channels as players do (playlist reload, new segments) for
             LOAD_SECONDS; from nginx's log: origin requests per segment (<= 1.2), per playlist
             (<= one a second, whatever the viewers: at most half of the six viewers' reloads);
             a byte range of a cached segment comes from the cache
  blocking   BLOCKERS clients send the same LL-HLS blocking reload at once: origin requests for it
             (<= 2) and when each got its answer, against the same through the node directly
  failover   SIGKILL of the node with the most channels: each of its channels comes back through the
             edge (playlist with segments, a segment of it) on another node; the time it took is
             printed; ffmpeg then plays one of them without a complaint

Prints the figures (docs/deploy.md quotes them). Exit 0: every check passed; 1: one failed, or
nginx or ffmpeg is missing (scripts/install-deps.sh installs both: a test that cannot run fails).

  nginx_edge.py --server build/server/hlsrelay-server [--work-dir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "players"))
import matrix  # noqa: E402  (free ports, waiting on conditions, ffmpeg as a player)

RUN_EDGE = REPO / "deploy" / "nginx" / "run-edge.sh"
NGINX = Path(os.environ.get("HLSRELAY_NGINX", "/usr/sbin/nginx"))  # not NGINX: nginx reads that one
NODES = 3
CHANNELS = [f"ch{i}" for i in range(6)]   # classic HLS; consistent hashing spreads them over the nodes
LL_CHANNEL = "ll"                          # low-latency, for the blocking-reload phase
SEGMENT_SECONDS = 2
VIEWERS = 36                               # six per channel
LOAD_SECONDS = 20
BLOCKERS = 20
PLAY_SECONDS = 8
ACROSS_SECONDS = 16                        # media a player plays across the failover (observed only)
BOUND = 90                                 # generous bound on any wait for a condition
RUN_BOUND = 420                            # past it everything is stopped and the run fails (CTest: 480 s)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Failed(Exception):
    pass


def check(ok: bool, what: str) -> None:
    log(("pass  " if ok else "FAIL  ") + what)
    if not ok:
        raise Failed(what)


def get(url: str, timeout: float = 20) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if this script dies, even by SIGKILL (a CTest timeout)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def segments_of(playlist: str) -> list[str]:
    return [l for l in playlist.splitlines() if l and not l.startswith("#")]


class Node:
    def __init__(self, binary: Path, work: Path, index: int, channels: Path):
        self.name = f"node{index}"
        self.log_path = work / f"{self.name}.log"
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(binary), "--channels", str(channels), "--listen", "127.0.0.1:0", "--on-demand",
             "--idle-timeout", "120", "--segment-duration", str(SEGMENT_SECONDS),
             "--max-connections-per-client", "0", "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        m = matrix.wait_for(f"{self.name} prints its URL", lambda: self.proc.poll() is None and re.search(
            r"serving \d+ channel\(s\) at http://(127\.0\.0\.1:\d+)/", self.log_path.read_text()), bound=30)
        self.addr = m.group(1)
        self.url = f"http://{self.addr}"

    def running(self) -> set[str]:
        status, body = get(f"{self.url}/metrics", timeout=5)
        if status != 200:
            return set()
        return set(re.findall(r'hlsrelay_channel_state\{channel="([^"]+)",state="running"\} 1', body.decode()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


class Edge:
    def __init__(self, work: Path, nodes: list[Node]):
        self.dir = work / "edge"
        port = matrix.free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.out = open(work / "run-edge.log", "w")
        # run-edge.sh renders the config and execs nginx in the foreground: proc is nginx's master.
        self.args = ["bash", str(RUN_EDGE), "--dir", str(self.dir), "--listen", f"127.0.0.1:{port}"]
        self.proc = subprocess.Popen(self.args + [n.addr for n in nodes], stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, env=dict(os.environ, HLSRELAY_NGINX=str(NGINX)),
                                     preexec_fn=die_with_parent)
        matrix.wait_for("nginx answers", lambda: self.proc.poll() is None and get(f"{self.url}/healthz", 2)[0] == 200,
                        bound=30)
        self.access_log = self.dir / "logs" / "access.log"

    def workers(self) -> set[str]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return set(children.read_text().split()) if children.exists() else set()

    def reload(self, nodes: list[Node]) -> None:
        """Renders the configuration for `nodes` and reloads nginx (SIGHUP), as an operator adding or
        removing a node would; returns once the workers of the old configuration are gone."""
        subprocess.run(self.args + ["--render-only"] + [n.addr for n in nodes], check=True, timeout=30,
                       stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                       env=dict(os.environ, HLSRELAY_NGINX=str(NGINX)))
        old = self.workers()
        self.proc.send_signal(signal.SIGHUP)
        matrix.wait_for("nginx reloaded", lambda: self.workers() and not (self.workers() & old), bound=BOUND)

    def routes(self, channels: list[str]) -> dict[str, str]:
        """The node each channel's requests go to: the upstream of its stream-status (uncached,
        starts nothing) in the access log."""
        since = self.log_offset()
        for c in channels:
            get(f"{self.url}/api/v1/channels/stream-status/{c}")
        out = {}
        for e in self.entries(since):
            m = re.fullmatch(r"/api/v1/channels/stream-status/(.+)", e["uri"])
            if m and e["upstreams"]:
                out[m.group(1)] = e["upstreams"][-1]
        return out

    def log_offset(self) -> int:
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def entries(self, since: int = 0) -> list[dict]:
        """The access log's lines from byte `since`: uri, status, cache, upstreams (the nodes asked)."""
        time.sleep(0.5)  # nginx writes the line once the response is sent
        out = []
        with open(self.access_log, "rb") as f:
            f.seek(since)
            for line in f.read().decode(errors="replace").splitlines():
                m = re.search(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d+) \d+ cache=(\S+) upstream=(.*?) upstream_status=', line)
                if not m:
                    continue
                ups = [u.strip() for u in re.split(r"[,:]\s", m.group(4)) if u.strip() not in ("", "-")]
                out.append({"uri": m.group(1), "status": int(m.group(2)), "cache": m.group(3), "upstreams": ups})
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)   # nginx: fast shutdown, the workers with it
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def make_media(work: Path) -> Path:
    """20 s of 320x180@25 test pattern and a tone, 2 s GOPs, MPEG-TS: every channel loops it."""
    path = work / "source.ts"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", "20", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-b:v", "300k", "-c:a", "aac", "-b:a", "64k",
                    "-f", "mpegts", str(path)], check=True, timeout=120)
    return path


class Viewer(threading.Thread):
    """A player of one channel: reloads its media playlist (every target duration when it changed,
    half of it when not, as hls.js) and fetches each segment it has not fetched yet (the newest
    three at first). One keep-alive connection to the edge."""

    def __init__(self, edge: Edge, channel: str, until: float):
        super().__init__(daemon=True)
        self.host = edge.url.removeprefix("http://")
        self.channel, self.until = channel, until
        self.playlists = self.segments = 0
        self.errors: list[str] = []
        self.conn: http.client.HTTPConnection | None = None

    def fetch(self, path: str) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, timeout=20)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def run(self) -> None:
        base = f"/hls_streams/{self.channel}/"
        seen: set[str] = set()
        last = ""
        try:
            while time.monotonic() < self.until:
                status, body = self.fetch(base + "index.m3u8")
                self.playlists += 1
                if status != 200:
                    self.errors.append(f"index.m3u8: {status}")
                    time.sleep(1)
                    continue
                text = body.decode(errors="replace")
                new = [s for s in segments_of(text) if s not in seen]
                for s in (new if seen else new[-3:]):
                    status, data = self.fetch(base + s)
                    self.segments += 1
                    if status != 200 or not data:
                        self.errors.append(f"{s}: {status}")
                seen.update(new)
                time.sleep(SEGMENT_SECONDS if text != last else SEGMENT_SECONDS / 2)
                last = text
        except Exception as e:  # noqa: BLE001  (reported as the viewer's error)
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            if self.conn:
                self.conn.close()


def next_part(text: str) -> tuple[int, int] | None:
    """The (msn, part index) an LL client's next blocking reload asks for: the hinted part."""
    if "#EXT-X-PRELOAD-HINT" not in text:
        return None
    msn = int(next(l for l in text.splitlines() if l.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
    index = 0
    for l in text.splitlines():
        if l.startswith("#EXT-X-PART:"):
            index += 1
        elif l and not l.startswith("#"):
            msn, index = msn + 1, 0
    return msn, index


def blocking_burst(base_url: str, node_url: str, count: int) -> tuple[str, float, list[float], list[int]]:
    """`count` clients send base_url the blocking reload of the part that comes next (as the node
    says, not a cached playlist) at once; returns its URI, how long the first answer was held, when
    each answer came (seconds after the first) and the statuses."""
    status, body = get(f"{node_url}/hls_streams/{LL_CHANNEL}/index.m3u8")
    nxt = next_part(body.decode(errors="replace")) if status == 200 else None
    if not nxt:
        raise Failed(f"the LL playlist has no preload hint ({status})")
    uri = f"/hls_streams/{LL_CHANNEL}/index.m3u8?_HLS_msn={nxt[0]}&_HLS_part={nxt[1]}"
    answers: list[float] = [0.0] * count
    statuses: list[int] = [0] * count
    barrier = threading.Barrier(count)

    def one(i: int) -> None:
        barrier.wait()
        statuses[i], _ = get(base_url + uri)
        answers[i] = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    sent = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    first = min(answers)
    return uri, first - sent, [a - first for a in answers], statuses


def wait_segments(edge: Edge, channel: str, count: int = 3) -> None:
    matrix.wait_for(f"{channel} has {count} segments", lambda: len(segments_of(get(
        f"{edge.url}/hls_streams/{channel}/index.m3u8")[1].decode(errors="replace"))) >= count, bound=BOUND)


def origin_count(entries: list[dict]) -> int:
    return sum(len(e["upstreams"]) for e in entries)


def run(binary: Path, work: Path, figures: dict) -> None:
    media = make_media(work)
    channels = work / "channels.json"
    channels.write_text(json.dumps([{"id": c, "name": c, "url": str(media), "loop": True} for c in CHANNELS]
                                   + [{"id": LL_CHANNEL, "name": LL_CHANNEL, "url": str(media), "loop": True,
                                       "low_latency": True}]))
    nodes: list[Node] = []
    edge: Edge | None = None
    try:
        for i in range(NODES):
            nodes.append(Node(binary, work, i, channels))
        edge = Edge(work, nodes)
        log(f"edge {edge.url} in front of {', '.join(n.addr for n in nodes)}")

        # Adding a node moves channels to it only, never between the others; removing it moves
        # them back. Before any channel runs: stream-status starts nothing.
        everything = CHANNELS + [LL_CHANNEL]
        before = edge.routes(everything)
        check(len(before) == len(everything), f"each channel's API is routed to a node: {before}")
        extra = Node(binary, work, NODES, channels)
        try:
            edge.reload(nodes + [extra])
            after = edge.routes(everything)
            moved_to_new = sorted(c for c in everything if after.get(c) != before[c])
            check(all(after.get(c) == extra.addr for c in moved_to_new),
                  f"a fourth node takes {len(moved_to_new)} of {len(everything)} channels {moved_to_new}, "
                  f"no channel moves between the other nodes")
            edge.reload(nodes)
            check(edge.routes(everything) == before, "without it again, every channel is back on its node")
        finally:
            extra.stop()
        figures["add_node"] = {"channels": len(everything), "moved_to_the_new_node": len(moved_to_new)}

        # Routing: each channel starts (on demand) on exactly one node; its API goes there too.
        for c in CHANNELS + [LL_CHANNEL]:
            status, body = get(f"{edge.url}/hls_streams/{c}/master.m3u8")
            check(status == 200 and body.startswith(b"#EXTM3U"), f"{c}: master.m3u8 through the edge ({status})")
        placement: dict[str, str] = {}

        def placed():
            placement.clear()
            for n in nodes:
                for c in n.running():
                    placement[c] = "twice" if c in placement else n.name
            return len(placement) == len(CHANNELS) + 1 and placement
        matrix.wait_for("every channel running", placed, bound=BOUND)
        check("twice" not in placement.values(), f"every channel runs on one node: {placement}")
        for c in CHANNELS:
            status, body = get(f"{edge.url}/api/v1/channels/stream-status/{c}")
            state = json.loads(body).get("state") if status == 200 else None
            check(state == "running", f"{c}: stream-status through the edge comes from its node ({state})")
        figures["placement"] = placement

        # Play: ffmpeg through the edge, three channels at once.
        for c in CHANNELS[:3]:
            wait_segments(edge, c)
        results: dict[str, tuple[bool, str]] = {}
        players = [threading.Thread(target=lambda c=c: results.__setitem__(c, matrix.play_ffmpeg(
            f"{edge.url}/hls_streams/{c}/index.m3u8", PLAY_SECONDS, True, True, bound=BOUND)), daemon=True)
            for c in CHANNELS[:3]]
        for p in players:
            p.start()
        for p in players:
            p.join()
        for c in CHANNELS[:3]:
            ok, detail = results.get(c, (False, "no result"))
            check(ok, f"{c}: ffmpeg plays it through the edge: {detail}")

        # Load: viewers as players, then what reached the origin per resource.
        for c in CHANNELS:
            wait_segments(edge, c)
        time.sleep(1.5)  # the playlists cached by the waits above expire
        since = edge.log_offset()
        t0 = time.monotonic()
        viewers = [Viewer(edge, CHANNELS[i % len(CHANNELS)], t0 + LOAD_SECONDS) for i in range(VIEWERS)]
        for v in viewers:
            v.start()
        for v in viewers:
            v.join(timeout=LOAD_SECONDS + BOUND)
        elapsed = time.monotonic() - t0
        entries = [e for e in edge.entries(since) if e["uri"].startswith("/hls_streams/")]
        errors = [f"{v.channel}: {e}" for v in viewers for e in v.errors]
        check(not errors, f"{VIEWERS} viewers, {LOAD_SECONDS} s: no error ({errors[:5]})")
        segs = [e for e in entries if not e["uri"].split("?")[0].endswith(".m3u8")]
        lists = [e for e in entries if e["uri"].split("?")[0].endswith(".m3u8")]
        distinct_segs = {e["uri"] for e in segs if e["status"] == 200}
        distinct_lists = {e["uri"] for e in lists}
        origin_segs, origin_lists = origin_count(segs), origin_count(lists)
        per_segment: dict[str, int] = {}
        for e in segs:
            per_segment[e["uri"]] = per_segment.get(e["uri"], 0) + len(e["upstreams"])
        figures["load"] = {"viewers": VIEWERS, "seconds": round(elapsed, 1),
                           "client_segment_requests": len(segs), "distinct_segments": len(distinct_segs),
                           "origin_segment_requests": origin_segs,
                           "most_origin_requests_for_one_segment": max(per_segment.values(), default=0),
                           "client_playlist_requests": len(lists), "distinct_playlists": len(distinct_lists),
                           "origin_playlist_requests": origin_lists,
                           "origin_playlist_requests_per_playlist_second":
                               round(origin_lists / max(1, len(distinct_lists)) / elapsed, 2)}
        log(f"load: {figures['load']}")
        check(len(segs) > len(distinct_segs) * 2, f"viewers shared segments ({len(segs)} requests, "
                                                  f"{len(distinct_segs)} distinct)")
        check(origin_segs <= 1.2 * len(distinct_segs),
              f"origin segment requests {origin_segs} <= 1.2 x {len(distinct_segs)} distinct segments")
        check(origin_lists <= len(lists) / 2,
              f"origin playlist requests {origin_lists} <= 1/2 of the viewers' {len(lists)}")
        check(origin_lists <= len(distinct_lists) * (elapsed + 2),
              f"origin playlist requests {origin_lists} <= one a second per playlist "
              f"({len(distinct_lists)} playlists, {elapsed:.0f} s)")

        # A byte range of a cached segment (players such as AVPlayer ask for ranges): served by the edge.
        seg_uri = sorted(distinct_segs)[0]
        req = urllib.request.Request(edge.url + seg_uri, headers={"Range": "bytes=0-187"})
        with urllib.request.urlopen(req, timeout=20) as r:
            ranged = (r.status, r.headers.get("Content-Range", ""), r.headers.get("X-Cache", ""), r.read())
        check(ranged[0] == 206 and ranged[1].startswith("bytes 0-187/") and len(ranged[3]) == 188
              and ranged[3][:1] == b"\x47" and ranged[2] == "HIT",
              f"a range of a cached segment: {ranged[0]} {ranged[1]} X-Cache {ranged[2]}, {len(ranged[3])} bytes")

        # Blocking: the same LL-HLS blocking reload from BLOCKERS clients, through the edge and direct.
        ll_node = next(n for n in nodes if n.name == placement[LL_CHANNEL])
        matrix.wait_for("the LL channel has parts", lambda: b"#EXT-X-PRELOAD-HINT" in get(
            f"{edge.url}/hls_streams/{LL_CHANNEL}/index.m3u8")[1], bound=BOUND)
        time.sleep(1.5)
        since = edge.log_offset()
        uri, held, spread, statuses = blocking_burst(edge.url, ll_node.url, BLOCKERS)
        origin = origin_count([e for e in edge.entries(since) if e["uri"] == uri])
        _, direct_held, direct_spread, direct_statuses = blocking_burst(ll_node.url, ll_node.url, BLOCKERS)
        figures["blocking"] = {"clients": BLOCKERS, "origin_requests": origin, "edge_first_answer_held_s": round(held, 3),
                               "direct_first_answer_held_s": round(direct_held, 3),
                               "edge_answer_spread_max_s": round(max(spread), 3),
                               "edge_answer_spread_p50_s": round(statistics.median(spread), 3),
                               "direct_answer_spread_max_s": round(max(direct_spread), 3)}
        log(f"blocking: {figures['blocking']}")
        check(all(s == 200 for s in statuses) and all(s == 200 for s in direct_statuses),
              f"every blocking reload answered 200 (edge {sorted(set(statuses))}, direct {sorted(set(direct_statuses))})")
        check(1 <= origin <= 2, f"{BLOCKERS} identical blocking reloads cost the origin {origin} request(s)")

        # Failover: kill the node with the most channels; its channels come back on the others.
        counts = {n.name: sum(1 for c in CHANNELS if placement[c] == n.name) for n in nodes}
        victim = max(nodes, key=lambda n: counts[n.name])
        moved = [c for c in CHANNELS if placement[c] == victim.name]
        survivors = [n for n in nodes if n is not victim]
        # A player on one of them across the kill: what it sees is reported, not checked (its
        # segments' names and timestamps jump to those of the channel started on the other node).
        across: dict[str, tuple[bool, str]] = {}
        player = threading.Thread(target=lambda: across.__setitem__("r", matrix.play_ffmpeg(
            f"{edge.url}/hls_streams/{moved[0]}/index.m3u8", ACROSS_SECONDS, True, True, bound=BOUND)), daemon=True)
        player.start()
        time.sleep(4)
        log(f"failover: SIGKILL {victim.name} ({victim.addr}), running {moved}")
        victim.proc.kill()
        victim.proc.wait()
        t_kill = time.monotonic()
        came_back: dict[str, float] = {}

        def back(c: str):
            status, body = get(f"{edge.url}/hls_streams/{c}/index.m3u8")
            segs = segments_of(body.decode(errors="replace")) if status == 200 else []
            if not segs or get(f"{edge.url}/hls_streams/{c}/{segs[-1]}")[0] != 200:
                return False
            return any(c in n.running() for n in survivors)
        def watch(c: str) -> None:  # a player of each channel, asking every 0.2 s
            try:
                matrix.wait_for(f"{c} back through the edge", lambda: back(c), bound=BOUND, every=0.2)
            except TimeoutError as e:
                log(str(e))
                return
            came_back[c] = time.monotonic() - t_kill
            log(f"{c}: back through the edge {came_back[c]:.1f} s after the kill")
        watchers = [threading.Thread(target=watch, args=(c,), daemon=True) for c in moved]
        for w in watchers:
            w.start()
        for w in watchers:
            w.join()
        check(len(came_back) == len(moved), f"every channel of {victim.name} came back through the edge "
                                            f"({sorted(came_back)} of {moved})")
        player.join()
        ok, detail = across.get("r", (False, "no result"))
        log(f"{moved[0]}: ffmpeg playing across the kill: {'clean' if ok else 'complained'}: {detail}")
        figures["failover"] = {"node": victim.name, "channels": moved,
                               "seconds": {c: round(s, 1) for c, s in came_back.items()},
                               "player_across": "clean" if ok else detail[:300]}
        ok, detail = matrix.play_ffmpeg(f"{edge.url}/hls_streams/{moved[0]}/index.m3u8", PLAY_SECONDS / 2,
                                        True, True, bound=BOUND)
        check(ok, f"{moved[0]}: ffmpeg plays it through the edge after the failover: {detail}")
        for c in CHANNELS:
            if c not in moved:
                status, _ = get(f"{edge.url}/hls_streams/{c}/index.m3u8")
                check(status == 200, f"{c} (not on the killed node) still plays ({status})")
    finally:
        if edge:
            edge.stop()
        for n in nodes:
            n.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, type=Path, help="the hlsrelay-server binary")
    ap.add_argument("--work-dir", type=Path, help="where the temporary directory goes (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, nginx config)")
    args = ap.parse_args()
    missing = [p for p, ok in (("nginx", NGINX.exists()), ("ffmpeg", shutil.which("ffmpeg"))) if not ok]
    if missing:
        print(f"nginx_edge: missing {', '.join(missing)} (scripts/install-deps.sh installs them)")
        return 1
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hlsrelay-edge-", dir=args.work_dir))

    def timeout(*_):
        raise Failed(f"the run took longer than {RUN_BOUND} s")
    signal.signal(signal.SIGALRM, timeout)
    signal.signal(signal.SIGTERM, lambda *_: timeout())
    signal.alarm(RUN_BOUND)
    figures: dict = {}
    failed = False
    try:
        run(args.server.resolve(), work, figures)
    except (Failed, TimeoutError, subprocess.SubprocessError) as e:
        log(f"FAIL: {e}")
        failed = True
    finally:
        signal.alarm(0)
        print("figures: " + json.dumps(figures), flush=True)
        if failed or args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
