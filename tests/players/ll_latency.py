#!/usr/bin/env python3
"""LL-HLS end to end: a continuous 720p30 source (ffmpeg, MPEG-TS over UDP on loopback) relayed by
hlsrelay-server with low_latency on, played by hls.js in low-latency mode in headless Chromium.

Reports how far behind the source the picture plays (the wall clock minus the playing frame's
EXT-X-PROGRAM-DATE-TIME, which the relay takes from when the media arrived; p50/p95/max), the stalls,
the parts hls.js loaded, and how soon the relay answered blocking playlist reloads after the part
they waited for was published (the server's view: a blocking request for the next part, timed
from the part's publication event... measured from the client as the time between consecutive
answers minus the part duration, see `blocking`).

  ll_latency.py --seconds 60            what CTest runs (players:ll-hls): checks it plays in
                                        low-latency mode without a stall; prints the latency
  ll_latency.py --seconds 600 --goal 2  bench/ll-latency.sh: ten minutes, fails when p50 >= 2 s
  ll_latency.py --source ll-hls         the relay reads that source through another channel's LL-HLS
                                        output (its parts, with blocking reloads); --source hls: a
                                        classic HLS origin
  ll_latency.py --source ladder         an fMP4 ladder (classic HLS) relayed as an LL presentation:
                                        every rendition's playlist checked, hls.js on the master

Exit status 0 when every check passed, 1 when one failed, 2 when a prerequisite is missing.
"""
import argparse
import json
import os
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
sys.path.insert(0, str(HERE))
import matrix  # noqa: E402  (the player matrix's helpers: ports, the loopback origin, the paths)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def attributes(line: str) -> dict[str, str]:
    return matrix.parse_attributes(line.split(":", 1)[1]) if ":" in line else {}


def validate_ll(text: str, full: str | None = None) -> list[str]:
    """The LL-HLS rules hlsrelay's media playlists follow (RFC 8216bis), checked on one playlist;
    with `full`, `text` is the delta update (_HLS_skip=YES) taken right after that full playlist.
    Returns the problems (empty: valid)."""
    problems = []
    lines = [l for l in text.splitlines() if l]
    if not lines or lines[0] != "#EXTM3U":
        return ["no #EXTM3U"]
    tag = lambda name: next((l for l in lines if l.startswith(name + ":")), None)
    version = int((tag("#EXT-X-VERSION") or ":0").split(":")[1])
    td = int((tag("#EXT-X-TARGETDURATION") or ":0").split(":")[1])
    control, inf = tag("#EXT-X-SERVER-CONTROL"), tag("#EXT-X-PART-INF")
    if not control or not inf:
        return ["no EXT-X-SERVER-CONTROL or EXT-X-PART-INF"]
    c, pt = attributes(control), float(attributes(inf).get("PART-TARGET", "0"))
    if c.get("CAN-BLOCK-RELOAD") != "YES":
        problems.append("CAN-BLOCK-RELOAD is not YES")
    if not (pt > 0 and pt <= td):
        problems.append(f"PART-TARGET {pt} is not in (0, {td}]")
    if float(c.get("PART-HOLD-BACK", "0")) < 3 * pt - 1e-6:
        problems.append(f"PART-HOLD-BACK {c.get('PART-HOLD-BACK')} < 3 x PART-TARGET {pt}")
    if "CAN-SKIP-UNTIL" in c and float(c["CAN-SKIP-UNTIL"]) < 6 * td:
        problems.append(f"CAN-SKIP-UNTIL {c['CAN-SKIP-UNTIL']} < 6 x target duration {td}")
    # Walk the segments and their parts.
    msn = int((tag("#EXT-X-MEDIA-SEQUENCE") or ":0").split(":")[1])
    skipped = int(attributes(tag("#EXT-X-SKIP")).get("SKIPPED-SEGMENTS", "0")) if tag("#EXT-X-SKIP") else 0
    if skipped and version < 9:
        problems.append(f"EXT-X-SKIP with EXT-X-VERSION {version} (needs 9)")
    seq = msn + skipped
    segments = []   # (msn, extinf, [part durations])
    parts: list[tuple[str, float, bool]] = []
    hints = []
    for l in lines:
        if l.startswith("#EXT-X-PART:"):
            a = attributes(l)
            parts.append((a.get("URI", ""), float(a.get("DURATION", "0")), a.get("INDEPENDENT") == "YES"))
        elif l.startswith("#EXTINF:"):
            extinf = float(l.split(":")[1].split(",")[0])
        elif l.startswith("#EXT-X-PRELOAD-HINT:"):
            hints.append(attributes(l))
        elif not l.startswith("#"):
            segments.append((seq, extinf, parts))
            parts = []
            seq += 1
    open_parts, open_msn = parts, seq
    end = sum(e for _, e, _ in segments) + sum(d for _, d, _ in open_parts)
    start = 0.0
    last_number = None
    for n, (s, extinf, ps) in enumerate(segments + [(open_msn, None, open_parts)]):
        if extinf is not None and round(extinf) > td:
            problems.append(f"segment {s}: EXTINF {extinf} rounds above the target duration {td}")
        for k, (uri, d, independent) in enumerate(ps):
            base = uri.rsplit("/", 1)[-1]  # the top-level playlist of a ladder names "v0/part_<n>"
            number = int(base.split("_")[1].split(".")[0]) if base.startswith("part_") else -1
            if last_number is not None and number != last_number + 1:
                problems.append(f"segment {s}: part {k} is {uri}, not part_{last_number + 1}.*: parts are numbered in one run")
            last_number = number
            if d > pt + 1e-6:
                problems.append(f"{uri}: DURATION {d} > PART-TARGET {pt}")
            last = extinf is not None and k == len(ps) - 1
            if d < 0.85 * pt - 1e-6 and not last and not independent:
                problems.append(f"{uri}: DURATION {d} < 85% of PART-TARGET {pt}, neither last nor independent")
        if ps and not ps[0][2]:
            problems.append(f"segment {s}: its first part is not INDEPENDENT (segments start with a keyframe)")
        if ps and extinf is not None and abs(sum(d for _, d, _ in ps) - extinf) > 0.001 * len(ps) + 0.0015:
            problems.append(f"segment {s}: its parts last {sum(d for _, d, _ in ps):.5f} s, its EXTINF {extinf}")
        if ps and extinf is not None and end - start > 3 * td + 1e-6 and not skipped:
            problems.append(f"segment {s}: parts listed although it starts {end - start:.2f} s (> 3 target durations) from the end")
        start += extinf if extinf is not None else 0
    # One hint, for the part right after the last one listed.
    if len(hints) != 1 or hints[0].get("TYPE") != "PART":
        problems.append(f"{len(hints)} EXT-X-PRELOAD-HINT TYPE=PART, not one")
    else:
        want = f"part_{last_number + 1 if last_number is not None else '?'}."
        if not hints[0].get("URI", "").rsplit("/", 1)[-1].startswith(want):
            problems.append(f"the preload hint names {hints[0].get('URI')}, not {want}*")
    # Rendition reports (a ladder's playlists, RFC 8216bis 4.4.5.4): each names another rendition's
    # playlist, with its last MSN near this one's (the renditions are aligned) and a part index.
    reports = [attributes(l) for l in lines if l.startswith("#EXT-X-RENDITION-REPORT:")]
    for r in reports:
        uri, last_msn = r.get("URI", ""), r.get("LAST-MSN", "")
        if not uri.endswith("index.m3u8") or not last_msn.isdigit():
            problems.append(f"rendition report {r}: no URI of a media playlist or no LAST-MSN")
        elif abs(int(last_msn) - open_msn) > 2:
            problems.append(f"rendition report of {uri}: LAST-MSN {last_msn} is far from this playlist's {open_msn}")
        elif "LAST-PART" in r and not r["LAST-PART"].isdigit():
            problems.append(f"rendition report of {uri}: LAST-PART {r['LAST-PART']} is not a part index")
    if len({r.get("URI") for r in reports}) != len(reports):
        problems.append("two rendition reports of one playlist")
    if full is not None:
        f = [l for l in full.splitlines() if l and not l.startswith("#")]
        d = [l for l in lines if not l.startswith("#")]
        if f[skipped:skipped + len(d)] != d[:len(f) - skipped]:
            problems.append(f"the delta's segments are not the full playlist's after the {skipped} skipped")
        if (tag("#EXT-X-MEDIA-SEQUENCE") or "") not in full:
            problems.append("the delta's EXT-X-MEDIA-SEQUENCE is not the full playlist's")
        # Skipped: exactly the segments that begin more than CAN-SKIP-UNTIL before the full playlist's end.
        segs = validate_segments(full)
        pending = 0.0  # the parts after the last segment: the one being cut
        for l in full.splitlines():
            if l.startswith("#EXT-X-PART:"):
                pending += float(attributes(l).get("DURATION", "0"))
            elif l and not l.startswith("#"):
                pending = 0.0
        total = sum(e for _, e in segs) + pending
        until = float(c.get("CAN-SKIP-UNTIL", "0"))
        begins = [total - sum(e for _, e in segs[:i]) for i in range(len(segs))]  # seconds before the end
        should = sum(1 for b in begins if b > until + 1e-6)
        if skipped != should:
            problems.append(f"the delta skips {skipped} segments, the skip boundary ({until} s) says {should}")
    return problems


def validate_segments(text: str) -> list[tuple[str, float]]:
    """(URI, EXTINF) of each segment of a playlist."""
    out, extinf = [], 0.0
    for l in text.splitlines():
        if l.startswith("#EXTINF:"):
            extinf = float(l.split(":")[1].split(",")[0])
        elif l and not l.startswith("#"):
            out.append((l, extinf))
    return out


def blocking_probe(url: str, count: int) -> dict:
    """Follows the live edge with blocking reloads (_HLS_msn/_HLS_part of the next part), as an LL
    client does, and times each answer against the part it asked for: `late` is how long after the
    part's expected completion (its predecessor's answer plus its duration) the answer came, a
    client-side bound on the server's hold-and-release delay."""
    def head(text: str):
        """The next part: (its segment's msn, its index in it, the hint's URI)."""
        hints = [l for l in text.splitlines() if l.startswith("#EXT-X-PRELOAD-HINT")]
        if not hints:
            return None
        msn = int(next(l for l in text.splitlines() if l.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
        index = 0
        for l in text.splitlines():
            if l.startswith("#EXT-X-SKIP:"):
                msn += int(attributes(l)["SKIPPED-SEGMENTS"])
            elif l.startswith("#EXT-X-PART:"):
                index += 1
            elif l and not l.startswith("#"):
                msn, index = msn + 1, 0
        return msn, index, hints[-1].split('URI="')[1].split('"')[0]
    text = matrix.http_get(url).decode()
    waits = []
    for _ in range(count):
        nxt = head(text)
        if not nxt:
            return {"error": "no EXT-X-PRELOAD-HINT in the playlist"}
        t0 = time.monotonic()
        with urllib.request.urlopen(f"{url}?_HLS_msn={nxt[0]}&_HLS_part={nxt[1]}", timeout=10) as r:
            text = r.read().decode()
            status = r.status
        waits.append(time.monotonic() - t0)
        if status != 200 or f'"{nxt[2]}"' not in text:
            return {"error": f"a blocking reload for part {nxt} answered {status} without it"}
    waits.sort()
    result = {"answers": len(waits), "wait_p50": statistics.median(waits), "wait_max": waits[-1]}
    # The part a preload hint names, asked for before it exists: held, then its bytes.
    base = url.rsplit("/", 1)[0]
    nxt = head(matrix.http_get(url).decode())
    ext = "." + nxt[2].rsplit(".", 1)[1]
    t0 = time.monotonic()
    with urllib.request.urlopen(f"{base}/{nxt[2]}", timeout=10) as r:
        body = r.read()
        if r.status != 200 or not body:
            return {"error": f"the hinted part answered {r.status} with {len(body)} bytes"}
    result["hinted_part_wait"] = time.monotonic() - t0
    # A part further ahead is not held (only the hinted one is): 404 at once; a msn three past: 400.
    # (60 parts ahead: a source whose segments come whole publishes a segment's parts at once.)
    # Each is asked against a fresh playlist, up to three times: on a loaded machine the ingest may
    # catch up by two segments between the read and the request, which makes "three past" legitimate.
    def refused(make_target, want):
        answers = []
        for _ in range(3):
            ahead = head(matrix.http_get(url).decode())
            if not ahead:
                return "no EXT-X-PRELOAD-HINT in the playlist"
            target = make_target(ahead)
            try:
                urllib.request.urlopen(target, timeout=10).read()
                answers.append(200)
            except urllib.error.HTTPError as e:
                if e.code == want:
                    return None
                answers.append(e.code)
        return f"{target.rsplit('/', 1)[1]} answered {answers}, not {want}"
    for make_target, want in ((lambda h: f"{base}/part_{int(h[2].split('_')[1].split('.')[0]) + 60}{ext}", 404),
                              (lambda h: f"{url}?_HLS_msn={h[0] + 3}", 400),
                              (lambda h: f"{url}?_HLS_part=1", 400)):
        why = refused(make_target, want)
        if why:
            return {"error": why}
    return result


SAMPLE = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.00002
#EXT-X-PART-INF:PART-TARGET=0.33334
#EXT-X-MEDIA-SEQUENCE:40
#EXT-X-MAP:URI="init_0.mp4"
""" + "".join(f"#EXTINF:2.000,\nseg_{n}.m4s\n" for n in range(40, 45)) + "".join(
    "".join(f'#EXT-X-PART:DURATION=0.33333,URI="part_{n * 6 + k}.m4s"' + (",INDEPENDENT=YES" if k % 3 == 0 else "") + "\n"
            for k in range(6)) + f"#EXTINF:2.000,\nseg_{n}.m4s\n" for n in range(45, 47)) + \
    '#EXT-X-PART:DURATION=0.33333,URI="part_282.m4s",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part_283.m4s"\n'


def self_test() -> int:
    """The validator passes a valid playlist and its delta, and fails each broken variant."""
    delta = SAMPLE.replace("#EXT-X-MAP", "#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n#EXT-X-MAP").replace(
        "#EXTINF:2.000,\nseg_40.m4s\n#EXTINF:2.000,\nseg_41.m4s\n", "")
    cases = {
        "valid": (SAMPLE, None, True), "valid delta": (delta, SAMPLE, True),
        "part over PART-TARGET": (SAMPLE.replace("DURATION=0.33333,URI=\"part_272", "DURATION=0.34,URI=\"part_272"), None, False),
        "short part in the middle": (SAMPLE.replace("DURATION=0.33333,URI=\"part_272", "DURATION=0.2,URI=\"part_272"), None, False),
        "PART-HOLD-BACK too small": (SAMPLE.replace("PART-HOLD-BACK=1.00002", "PART-HOLD-BACK=1"), None, False),
        "CAN-SKIP-UNTIL too small": (SAMPLE.replace("CAN-SKIP-UNTIL=12", "CAN-SKIP-UNTIL=6"), None, False),
        "no blocking": (SAMPLE.replace("CAN-BLOCK-RELOAD=YES", "CAN-BLOCK-RELOAD=NO"), None, False),
        "hint for the wrong part": (SAMPLE.replace("part_283.m4s\"\n", "part_284.m4s\"\n"), None, False),
        "two hints": (SAMPLE + '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part_283.m4s"\n', None, False),
        "parts of an old segment": (SAMPLE.replace("#EXTINF:2.000,\nseg_44.m4s", "".join(
            f'#EXT-X-PART:DURATION=0.33333,URI="part_{264 + k}.m4s"' + (",INDEPENDENT=YES" if k % 3 == 0 else "") + "\n"
            for k in range(6)) + "#EXTINF:2.000,\nseg_44.m4s"), None, False),
        "parts that do not add up": (SAMPLE.replace("#EXTINF:2.000,\nseg_45.m4s", "#EXTINF:1.800,\nseg_45.m4s"), None, False),
        "misnamed part": (SAMPLE.replace("part_279.m4s", "part_280.m4s"), None, False),
        "delta skips too much": (delta.replace("SKIPPED-SEGMENTS=2", "SKIPPED-SEGMENTS=3").replace("#EXTINF:2.000,\nseg_42.m4s\n", ""), SAMPLE, False),
        "delta skips too little": (delta.replace("SKIPPED-SEGMENTS=2", "SKIPPED-SEGMENTS=1").replace("#EXT-X-MAP:URI=\"init_0.mp4\"\n", "#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXTINF:2.000,\nseg_41.m4s\n"), SAMPLE, False),
        "delta at version 6": (delta.replace("VERSION:9", "VERSION:6"), SAMPLE, False),
        "rendition reports": (SAMPLE + '#EXT-X-RENDITION-REPORT:URI="../a0/index.m3u8",LAST-MSN=46,LAST-PART=2\n', None, True),
        "a report far off": (SAMPLE + '#EXT-X-RENDITION-REPORT:URI="../a0/index.m3u8",LAST-MSN=30,LAST-PART=2\n', None, False),
        "a report without LAST-MSN": (SAMPLE + '#EXT-X-RENDITION-REPORT:URI="../a0/index.m3u8"\n', None, False),
        "a report twice": (SAMPLE + 2 * '#EXT-X-RENDITION-REPORT:URI="../a0/index.m3u8",LAST-MSN=46\n', None, False),
    }
    failed = 0
    for name, (text, full, valid) in cases.items():
        problems = validate_ll(text, full)
        ok = (not problems) == valid
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {problems[:2] if problems else 'valid'}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default=os.environ.get("HLSRELAY_SERVER", str(matrix.REPO / "build" / "server" / "hlsrelay-server")))
    ap.add_argument("--seconds", type=float, default=60, help="seconds of latency samples after the warm-up")
    ap.add_argument("--warmup", type=float, default=10, help="seconds of playing before sampling starts")
    ap.add_argument("--container", choices=["fmp4", "ts"], default="fmp4")
    ap.add_argument("--catch-up", type=float, default=1.0, metavar="RATE",
                    help="hls.js maxLiveSyncPlaybackRate: how fast it may play to reach its target latency "
                    "(default 1, hls.js's default: it stays where it started)")
    ap.add_argument("--part-duration", type=float, help="the relay's part_duration (default: the engine's)")
    ap.add_argument("--gop", type=int, default=30, metavar="FRAMES", help="the source's keyframe interval (default 30: 1 s)")
    ap.add_argument("--source", choices=["udp", "ll-hls", "hls", "ladder"], default="udp",
                    help="what the relay reads: the continuous source itself (udp, default), or another channel "
                    "of the same server that relays it as LL-HLS (ll-hls) or classic HLS (hls); ladder: the player "
                    "matrix's dated fMP4 ladder (classic HLS, 3 variants, 2 audio languages, subtitles), the player "
                    "on the relay's master.m3u8")
    ap.add_argument("--classic", action="store_true",
                    help="the reference: the same source and relay without low_latency, hls.js without lowLatencyMode")
    ap.add_argument("--goal", type=float, help="fail unless the latency p50 is below this (benchmarks only)")
    ap.add_argument("--work-dir", help="keep logs here (default: a temp dir, removed)")
    ap.add_argument("--self-test", action="store_true", help="check the LL playlist validator on made-up playlists")
    args = ap.parse_args()
    if args.self_test:
        return self_test()

    missing = [m for m in matrix.missing_prerequisites() if "shaka" not in m.lower()]
    if not Path(args.server).exists():
        missing.append(f"{args.server} is missing")
    if missing:
        for m in missing:
            print(f"FAIL (prerequisite): {m}", file=sys.stderr)
        return 2
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="hlsrelay-ll-"))
    work.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    origin = None
    bound = args.seconds + args.warmup + 120
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError(f"the run took over {bound:.0f} s")))
    # Stopped from outside (CTest's timeout, Ctrl-C, a benchmark killed): still stop what it started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(TimeoutError("terminated")))
    signal.alarm(int(bound))
    try:
        (work / "player").mkdir(exist_ok=True)
        shutil.copy(matrix.HLSJS, work / "player" / "hls.min.js")
        (work / "player" / "index.html").write_text('<!doctype html><html><body><video id="v" muted playsinline></video>'
                                                    '<script src="hls.min.js"></script></body></html>')
        origin = matrix.Origin(work)
        udp = matrix.free_port(__import__("socket").SOCK_DGRAM)
        port = matrix.free_port()
        # max_segments 8 (16 s): delta updates skip some.
        relay = {"id": "ll", "name": "LL", "url": f"udp://127.0.0.1:{udp}", "low_latency": not args.classic,
                 "container": args.container, "max_segments": 8}
        if args.part_duration:
            relay["part_duration"] = args.part_duration
        channels = [relay]
        ladder = None
        if args.source == "ladder":
            ladder = matrix.all_sources()["ladder-fmp4"]
            ladder.prepare(work, origin)
            ladder.start()
            procs.append(ladder.proc)
            matrix.wait_for("the ladder source", ladder.ready, bound=60)
            relay["url"] = ladder.url
            relay["max_segments"] = matrix.LADDER_WINDOW
        elif args.source != "udp":
            # The relay reads an HLS origin: another channel of the same server, LL or classic, on the
            # continuous source. Its dates are the origin's, so the latency is still from the source.
            channels.insert(0, dict(relay, id="origin", name="origin", low_latency=args.source == "ll-hls"))
            relay["url"] = f"http://127.0.0.1:{port}/hls_streams/origin/index.m3u8"
        (work / "channels.json").write_text(json.dumps(channels))
        procs.append(subprocess.Popen(
            [args.server, "--channels", str(work / "channels.json"), "--listen", f"127.0.0.1:{port}", "--autostart", "all"],
            stdin=subprocess.DEVNULL, stdout=open(work / "hlsrelay-server.log", "w"), stderr=subprocess.STDOUT))
        # 720p30, a keyframe every second (segments of 2 s, parts of 1/3 s), AAC; paced in real time.
        total = args.seconds + args.warmup + 90
        procs.append(None if ladder else subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi", "-i",
             "testsrc2=size=1280x720:rate=30", "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
             "-t", str(int(total)), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast",
             "-tune", "zerolatency", "-g", str(args.gop), "-keyint_min", str(args.gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p",
             "-b:v", "2500k", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts", f"udp://127.0.0.1:{udp}?pkt_size=1316"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(work / "ffmpeg.log", "w")))
        procs = [p for p in procs if p]
        url = f"http://127.0.0.1:{port}/hls_streams/ll/index.m3u8"
        # A ladder: the top-level playlist and every audio/video rendition's are checked, the player
        # plays the master (hls.js picks a variant and the default audio rendition).
        playlists = [url]
        play_url = url.replace("index.m3u8", "master.m3u8") if ladder else url

        def ready():
            try:
                return (b"#EXTINF" if args.classic else b"#EXT-X-PART:") in matrix.http_get(url, timeout=2)
            except (urllib.error.URLError, OSError):
                return False
        matrix.wait_for("the relay's first LL playlist", ready, bound=60)
        log(f"relay at {url}")
        if ladder:
            master = matrix.http_get(play_url).decode()
            for l in master.splitlines():
                uri = attributes(l).get("URI") if l.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" not in l else (
                    l if l and not l.startswith("#") else None)
                if uri:
                    playlists.append(url.replace("index.m3u8", uri))
            log(f"ladder: {len(playlists) - 1} audio/video renditions besides the top-level playlist")
        probe = blocking_probe(url, 30) if not args.classic else {}
        if probe:
            log(f"blocking reloads: {probe}")
        invalid = []
        checked = 0
        for _ in range(0 if args.classic else 40 * len(playlists)):  # full playlists and their deltas, as they come
            target = playlists[checked % len(playlists)]
            full = matrix.http_get(target).decode()
            delta = matrix.http_get(target + "?_HLS_skip=YES").decode()
            if matrix.http_get(target).decode() != full:
                continue  # a part came out between the two: the delta is of a newer playlist
            name = target.split("/hls_streams/ll/")[1]
            broken = [f"{name} full: {p}" for p in validate_ll(full)] + [f"{name} delta: {p}" for p in validate_ll(delta, full)]
            if broken and not invalid:  # the first playlist that broke a rule, whole, for whoever reads the log
                log(f"{name} broke a rule; as served:\n{full}")
            invalid += broken
            if ladder and "#EXT-X-RENDITION-REPORT:" not in full:
                invalid.append(f"{name}: no EXT-X-RENDITION-REPORT")
            checked += 1
            if checked == 10 * len(playlists):
                break
            time.sleep(0.2)
        if checked < 10 * len(playlists) and not args.classic:
            invalid.append(f"only {checked} stable full/delta pairs in {40 * len(playlists)} tries")
        if not args.classic:
            log(f"LL playlist rules: {f'all kept in {checked} playlists and their deltas' if not invalid else invalid[:5]}")
        log(f"hls.js lowLatencyMode: {args.warmup:.0f} s warm-up, then {args.seconds:.0f} s of samples")
        # The PART-HOLD-BACK the relay advertises while the player plays: a relay of a classic source
        # moves it with the source's arrival bursts, and hls.js's target latency should follow.
        hold_backs: list[tuple[float, float]] = []
        sampling = threading.Event()

        def sample_hold_back():
            t0 = time.monotonic()
            while not sampling.wait(1.0):
                try:
                    c = next((attributes(l) for l in matrix.http_get(url, timeout=2).decode().splitlines()
                              if l.startswith("#EXT-X-SERVER-CONTROL:")), {})
                    if "PART-HOLD-BACK" in c and (not hold_backs or hold_backs[-1][1] != float(c["PART-HOLD-BACK"])):
                        hold_backs.append((round(time.monotonic() - t0, 1), float(c["PART-HOLD-BACK"])))
                except (urllib.error.URLError, OSError, ValueError):
                    pass
        sampler = threading.Thread(target=sample_hold_back, daemon=True)
        if not args.classic:
            sampler.start()
        out = subprocess.run(["node", str(HERE / "ll_player.mjs"), "--page", f"{origin.url}/player/index.html",
                              "--playwright", str(matrix.PLAYWRIGHT), "--chromium", str(matrix.CHROMIUM), "--url", play_url,
                              "--seconds", str(args.seconds), "--warmup", str(args.warmup), "--catch-up", str(args.catch_up)]
                             + (["--classic"] if args.classic else []),
                             capture_output=True, text=True, timeout=bound)
        sampling.set()
        if sampler.is_alive():
            sampler.join(5)
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if not lines:
            print(f"FAIL: the player printed no result; stderr: {out.stderr[-800:]}")
            return 1
        r = json.loads(lines[-1])
        lat = r.get("latency") or {}
        fmt = lambda v: "n/a" if v is None else f"{v:.2f} s"
        log(f"latency p50 {fmt(lat.get('p50'))}, p95 {fmt(lat.get('p95'))}, max {fmt(lat.get('max'))} "
            f"({lat.get('samples')} samples; hls.js's own estimate p50 {fmt(lat.get('hlsjs_estimate_p50'))}), "
            f"parts loaded {r.get('parts_loaded')}, stalls {len(r.get('stalls') or [])}")
        if not args.classic:
            targets = r.get("targets") or []
            log(f"PART-HOLD-BACK over the run: {len(hold_backs)} value(s) {[v for _, v in hold_backs][:12]}; "
                f"hls.js target latency: {len(targets)} value(s) {[t['target'] for t in targets][:12]}")
        failures = []
        if not r.get("ok"):
            failures.append(r.get("detail"))
        if "error" in probe:
            failures.append("blocking reload: " + probe["error"])
        if invalid:
            failures.append(f"{len(invalid)} LL playlist rule(s) broken: " + "; ".join(sorted(set(invalid))[:5]))
        if args.goal is not None and not (lat.get("p50") is not None and lat["p50"] < args.goal):
            failures.append(f"latency p50 {fmt(lat.get('p50'))} is not below {args.goal} s")
        print(json.dumps({"container": args.container, "source": args.source, "classic": args.classic, "seconds": args.seconds,
                          "catch_up": args.catch_up, "part_duration": args.part_duration, "latency": lat,
                          "stalls": r.get("stalls"), "parts_loaded": r.get("parts_loaded"), "blocking": probe,
                          "part_hold_back": hold_backs[:50], "hlsjs_targets": (r.get("targets") or [])[:50],
                          "errors": (r.get("errors") or [])[:5]}))
        if failures:
            print("FAIL: " + "; ".join(failures))
            return 1
        print("PASS")
        return 0
    except (TimeoutError, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        signal.alarm(0)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if origin:
            origin.close()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
