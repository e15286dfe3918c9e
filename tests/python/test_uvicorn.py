# `uvicorn hlsrelay.fastapi:app` for real on a loopback port, against a looping local MPEG-TS source.
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from conftest import wait_for  # noqa: E402

HOST = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get(port, path, timeout=10.0, method="GET", headers=None):
    """(status, headers, body bytes) of GET (or method) http://127.0.0.1:port/path."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def get_json(port, path):
    status, _, body = get(port, path)
    return status, json.loads(body)


class Uvicorn:
    """uvicorn hlsrelay.fastapi:app in a subprocess; stopped (then killed) in stop()."""

    def __init__(self, env, log_path):
        self.env = env
        self.log_path = log_path
        self.proc = None
        self.port = None

    def start(self, attempts=3):
        for _ in range(attempts):
            self.port = free_port()
            self.log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "hlsrelay.fastapi:app", "--host", HOST, "--port", str(self.port),
                 "--log-level", "info"],
                env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            )
            end = time.monotonic() + 20
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    break
                try:
                    if get(self.port, "/api/v1/channels", timeout=2)[0] in (200, 401):  # 401: a token is set
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            self.stop()
            if b"address already in use" not in self.output().lower():
                break  # a real failure, not a port race
        pytest.fail(f"uvicorn did not come up:\n{self.output().decode(errors='replace')}")

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # graceful: runs the lifespan shutdown (engine.close)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def server_env(package_root, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("HLSRELAY_CHANNELS", None)
    return env


@pytest.mark.deadline(120)
def test_uvicorn_serves_a_live_channel(media, tmp_path, server_env):
    ffprobe = shutil.which("ffprobe")
    if not ffprobe:
        pytest.skip("ffprobe is not installed")
    channels = tmp_path / "channels.json"
    channels.write_text(json.dumps([
        {"name": "Test Channel", "id": "test", "url": media, "loop": True},
        {"name": "Spare", "url": "http://127.0.0.1:9/never.m3u8"},
    ]))
    server_env.update(HLSRELAY_CHANNELS=str(channels), HLSRELAY_SEGMENT_DURATION="1", HLSRELAY_MAX_SEGMENTS="4",
                      HLSRELAY_LOG_LEVEL="error")
    server = Uvicorn(server_env, tmp_path / "uvicorn.log")
    try:
        port = server.start().port

        status, body = get_json(port, "/api/v1/channels/start-stream/Test Channel".replace(" ", "%20"))
        assert status == 200, body
        assert body["message"] == "Stream for 'test' started." and body["hls_url"] == "/hls_streams/test/master.m3u8"
        assert body["config"] == {"segment_duration": 1, "max_segments": 4, "cleanup_interval": 5,
                                  "container": "ts", "renditions": "all",
                                  "low_latency": False, "part_duration": 1 / 3}

        def segments():
            status, _, text = get(port, "/hls_streams/test/index.m3u8")
            names = [x for x in text.decode().splitlines() if x.endswith(".ts")] if status == 200 else []
            return names if len(names) >= 3 else None

        names = wait_for(segments, 30, interval=0.2, what="3 segments")

        status, headers, master = get(port, "/hls_streams/test/master.m3u8")
        assert status == 200 and headers["content-type"] == "application/vnd.apple.mpegurl"
        assert headers["cache-control"] == "no-cache" and master.startswith(b"#EXTM3U")

        status, headers, segment = get(port, f"/hls_streams/test/{names[-1]}")
        assert status == 200 and headers["content-type"] == "video/mp2t"
        assert headers["cache-control"] == "public, max-age=86400, immutable"
        assert int(headers["content-length"]) == len(segment) > 0
        status, headers, head = get(port, f"/hls_streams/test/{names[-1]}", method="HEAD")
        assert status == 200 and head == b"" and int(headers["content-length"]) == len(segment)
        status, headers, part = get(port, f"/hls_streams/test/{names[-1]}", headers={"Range": "bytes=188-375"})
        assert status == 206 and part == segment[188:376]
        assert headers["content-range"] == f"bytes 188-375/{len(segment)}"

        # ffprobe reads one served segment, and the live playlist itself over HTTP.
        seg_file = tmp_path / "segment.ts"
        seg_file.write_bytes(segment)
        probe = subprocess.run(
            [ffprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height:format=duration",
             "-of", "json", str(seg_file)], capture_output=True, text=True, timeout=30, check=True)
        info = json.loads(probe.stdout)
        kinds = {s["codec_type"]: s for s in info["streams"]}
        assert kinds["video"]["codec_name"] == "h264" and kinds["video"]["width"] == 320
        assert kinds["audio"]["codec_name"] == "aac"
        assert 0.5 <= float(info["format"]["duration"]) <= 1.6

        probe = subprocess.run(
            [ffprobe, "-v", "error", "-rw_timeout", "10000000", "-show_entries", "stream=codec_name", "-of", "json",
             f"http://{HOST}:{port}/hls_streams/test/master.m3u8"],
            capture_output=True, text=True, timeout=60)
        assert probe.returncode == 0, probe.stderr
        assert {s["codec_name"] for s in json.loads(probe.stdout)["streams"]} >= {"h264", "aac"}

        status, body = get_json(port, "/api/v1/channels/stream-status/test")
        assert status == 200
        assert body["channel_name"] == "Test Channel" and body["stream_id"] == "test"
        assert body["process_status"] == "running" and body["cleanup_running"] is True
        assert 3 <= body["segment_count"] <= 4 and body["max_segments"] == 4
        assert body["master_playlist_exists"] is True and body["hls_url"] == "/hls_streams/test/master.m3u8"
        assert body["estimated_buffer_seconds"] > 0 and body["resolution"] == "320x240"
        assert body["video_codec"] == "h264" and body["target_duration"] == 1

        status, body = get_json(port, "/api/v1/channels/streams-status")
        assert status == 200 and body["total_channels"] == 2 and body["running_streams"] == 1

        status, headers, text = get(port, "/api/v1/channels/static-hls-m3u")
        assert status == 200 and headers["content-type"] == "audio/x-mpegurl; charset=utf-8"
        assert f"http://{HOST}:{port}/hls_streams/test/master.m3u8".encode() in text
        assert f"http://{HOST}:{port}/hls_streams/spare/master.m3u8".encode() in text

        status, body = get_json(port, "/api/v1/channels/stop-stream/test")
        assert status == 200 and body == {"message": "Stream for 'test' stopped."}
        assert get(port, "/hls_streams/test/index.m3u8")[0] == 404
        assert get_json(port, "/api/v1/channels/stream-status/test")[1]["process_status"] == "stopped"

        for route in ("start-stream", "stop-stream", "stream-status"):
            assert get_json(port, f"/api/v1/channels/{route}/nope") == (404, {"detail": "Channel not found"})
        assert get_json(port, "/hls_streams/nope/master.m3u8") == (404, {"detail": "Channel not found"})
        assert get_json(port, "/hls_streams/test/master.m3u8") == (404, {"detail": "Stream not running"})
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output().decode(errors="replace")


@pytest.mark.deadline(60)
def test_uvicorn_without_channel_list_exits_with_a_clear_error(tmp_path, server_env):
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "hlsrelay.fastapi:app", "--host", HOST, "--port", str(free_port())],
            env=server_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert proc.returncode != 0
    assert b"HLSRELAY_CHANNELS is not set" in log.read_bytes()


@pytest.mark.deadline(90)
def test_uvicorn_applies_the_http_protections(tmp_path, server_env):
    channels = tmp_path / "channels.json"
    channels.write_text(json.dumps([{"name": "Xtream", "url": "http://u_user:u_pass@127.0.0.1:9/live/xc_user/xc_pass/1.m3u8"}]))
    server_env.update(HLSRELAY_CHANNELS=str(channels), HLSRELAY_LOG_LEVEL="error", HLSRELAY_API_TOKEN="s3cret",
                      HLSRELAY_ALLOWED_HOSTS="tv.example")
    server = Uvicorn(server_env, tmp_path / "uvicorn.log")
    auth = {"Authorization": "Bearer s3cret"}
    try:
        port = server.start().port
        # The token: control needs it; status hides the source without it, redacts it with it.
        assert get(port, "/api/v1/channels/start-stream/xtream")[0] == 401
        status, _, body = get(port, "/api/v1/channels/stream-status/xtream")
        assert status == 200 and json.loads(body)["source"] is None
        status, _, body = get(port, "/api/v1/channels/stream-status/xtream", headers=auth)
        assert json.loads(body)["source"] == "http://***@127.0.0.1:9/live/***/***/1.m3u8"
        # Cross-site, even with the token (a browser may hold it in a cookie-less fetch of a page's own).
        status, headers, body = get(port, "/api/v1/channels/xtream/start", method="POST",
                                    headers={**auth, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert status == 403 and "access-control-allow-origin" not in headers
        # DNS rebinding: a foreign Host; the allowed name passes.
        assert get(port, "/api/v1/channels/streams-status", headers={"Host": "attacker.example"})[0] == 421
        assert get(port, "/api/v1/channels/streams-status", headers={"Host": f"tv.example:{port}"})[0] == 200
        status, _, body = get_json_with(port, "/api/v1/channels/stream-status/xtream", auth)
        assert status == 200 and body["process_status"] == "stopped"
        for secret in (b"u_user", b"u_pass", b"xc_user", b"xc_pass"):
            assert secret not in server.output()
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output().decode(errors="replace")


def get_json_with(port, path, headers):
    status, response_headers, body = get(port, path, headers=headers)
    return status, response_headers, json.loads(body)


@pytest.mark.deadline(120)
def test_uvicorn_app_sends_the_demo_servers_hls_cors_headers(media, tmp_path, server_env):
    """The standalone app (uvicorn hlsrelay.fastapi:app): a browser player on another origin can
    fetch HLS (Access-Control-Allow-Origin: *) and get a preflight answered, as from the demo server."""
    channels = tmp_path / "channels.json"
    channels.write_text(json.dumps([{"id": "cors", "name": "CORS", "url": str(media), "loop": True}]))
    server_env.update(HLSRELAY_CHANNELS=str(channels), HLSRELAY_SEGMENT_DURATION="1", HLSRELAY_LOG_LEVEL="error")
    server = Uvicorn(server_env, tmp_path / "uvicorn.log")
    origin = {"Origin": "http://player.example"}
    try:
        port = server.start().port
        assert get(port, "/api/v1/channels/cors/start", method="POST")[0] == 200
        wait_for(lambda: get(port, "/hls_streams/cors/index.m3u8")[0] == 200, 30, what="the first playlist")
        for path in ("/hls_streams/cors/master.m3u8", "/hls_streams/cors/index.m3u8", "/hls_streams/cors/seg_999999.ts"):
            status, headers, _ = get(port, path, headers=origin)
            assert status in (200, 404), path
            assert headers.get("access-control-allow-origin") == "*", path
            assert headers.get("access-control-expose-headers") == "Content-Length, Content-Range, Accept-Ranges", path
        status, headers, _ = get(port, "/hls_streams/cors/index.m3u8", method="OPTIONS",
                                 headers={**origin, "Access-Control-Request-Method": "GET",
                                          "Access-Control-Request-Headers": "range"})
        assert status == 204
        assert headers.get("access-control-allow-origin") == "*"
        assert headers.get("access-control-allow-methods") == "GET, HEAD, OPTIONS"
        assert headers.get("access-control-allow-headers") == "Range"
        status, headers, _ = get(port, "/api/v1/channels/streams-status", headers=origin)
        assert status == 200 and "access-control-allow-origin" not in headers
    finally:
        server.stop()


def read_stream(port, path, nbytes, timeout=30.0):
    """(status, headers, the first `nbytes` of the body) of a streamed response; the connection is then closed."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        headers = {k.lower(): v for k, v in r.getheaders()}
        if r.status != 200:
            return r.status, headers, r.read()
        body = b""
        while len(body) < nbytes:
            chunk = r.read1(65536)
            if not chunk:
                break
            body += chunk
        return r.status, headers, body
    finally:
        conn.close()


@pytest.mark.deadline(150)
def test_uvicorn_is_a_tuner(media, tmp_path, server_env):
    """Jellyfin's way through the FastAPI app: discover, lineup, then ffmpeg on the lineup's continuous TS
    URL (the channel starts on demand); two viewers at once begin with a whole segment opening with a
    keyframe; the same routes answer as the demo server's (the endpoint table)."""
    ffprobe = shutil.which("ffprobe")
    if not ffprobe:
        pytest.skip("ffprobe is not installed")
    channels = tmp_path / "channels.json"
    channels.write_text(json.dumps([
        {"name": "Test Channel", "id": "test", "url": media, "loop": True, "chno": "7"},
        {"name": "Packaged fMP4", "id": "mp4", "url": media, "loop": True, "container": "fmp4"},
    ]))
    server_env.update(HLSRELAY_CHANNELS=str(channels), HLSRELAY_SEGMENT_DURATION="1", HLSRELAY_LOG_LEVEL="error")
    server = Uvicorn(server_env, tmp_path / "uvicorn.log")
    try:
        port = server.start().port
        base = f"http://{HOST}:{port}"
        status, discover = get_json(port, "/discover.json")
        assert status == 200 and discover["ModelNumber"] == "HDTC-2US" and discover["BaseURL"] == base
        assert discover["LineupURL"] == base + "/lineup.json" and discover["TunerCount"] == 2
        status, lineup = get_json(port, "/lineup.json")
        assert status == 200 and [c["GuideNumber"] for c in lineup] == ["7", "2"]
        assert lineup[0]["URL"] == base + "/stream/test.ts"
        assert get(port, "/lineup.post?scan=start", method="POST")[0] == 200
        status, headers, xml = get(port, "/device.xml")
        assert status == 200 and headers["content-type"].startswith("application/xml") and b"<UDN>uuid:" in xml

        probe = subprocess.run(
            [ffprobe, "-v", "error", "-rw_timeout", "20000000", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
             lineup[0]["URL"]], capture_output=True, text=True, timeout=60)
        assert {"video", "audio"} <= set(probe.stdout.split()), probe.stdout + probe.stderr

        for path in ("/stream/test.ts", "/auto/v7"):
            status, headers, body = read_stream(port, path, 188 * 400)
            assert status == 200 and headers["content-type"] == "video/mp2t" and "content-length" not in headers
            assert len(body) >= 188 * 400 and body[0] == 0x47
            first = tmp_path / "first.ts"
            first.write_bytes(body)
            frames = subprocess.run(
                [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type",
                 "-read_intervals", "%+#1", "-of", "csv=p=0", str(first)], capture_output=True, text=True, timeout=30)
            assert frames.stdout.startswith("1,I"), frames.stdout + frames.stderr

        # An fMP4 channel streams too: its segments remuxed into TS, starting at a keyframe.
        status, headers, body = read_stream(port, "/stream/mp4.ts", 188 * 400)
        assert status == 200 and headers["content-type"] == "video/mp2t" and body[0] == 0x47
        first = tmp_path / "fmp4.ts"
        first.write_bytes(body)
        frames = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type",
             "-read_intervals", "%+#1", "-of", "csv=p=0", str(first)], capture_output=True, text=True, timeout=30)
        assert frames.stdout.startswith("1,I"), frames.stdout + frames.stderr
        streams = subprocess.run([ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(first)],
                                 capture_output=True, text=True, timeout=30)
        assert {"video", "audio"} <= set(streams.stdout.split()), streams.stdout + streams.stderr
        assert get_json(port, "/stream/nope.ts")[0] == 404
        assert get_json(port, "/auto/v99")[0] == 404
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output().decode(errors="replace")


GUIDE = """<?xml version="1.0" encoding="UTF-8"?>
<tv generator-info-name="provider">
  <channel id="news.uk"><display-name>News UK</display-name></channel>
  <channel id="other.fr"><display-name>Autre</display-name></channel>
  <programme start="20261201230000 +0000" stop="20261202003000 +0000" channel="news.uk"><title lang="en">Late &amp; News</title></programme>
  <programme start="20261201230000 +0000" stop="20261202000000 +0000" channel="other.fr"><title>Pas pour nous</title></programme>
</tv>
"""


@pytest.mark.deadline(120)
def test_uvicorn_serves_the_lists_guide(media, tmp_path, server_env):
    """The list's url-tvg (a gzip file on a loopback provider) is fetched and served at /epg.xml filtered
    to the list's channels (by tvg-id, under the stream id, tvg-shift applied), also gzipped; the exported
    M3U names it; /api/v1/guide reports the source."""
    import gzip
    import http.server
    import threading

    body = gzip.compress(GUIDE.encode())

    class Provider(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/epg.xml.gz" else 404)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    provider = http.server.ThreadingHTTPServer((HOST, 0), Provider)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    guide_url = f"http://{HOST}:{provider.server_address[1]}/epg.xml.gz"
    channels = tmp_path / "channels.m3u"
    channels.write_text(f'#EXTM3U url-tvg="{guide_url}"\n'
                        f'#EXTINF:-1 tvg-id="news.uk" tvg-shift="1" hlsrelay-id="news",News\n{media}\n'
                        f'#EXTINF:-1 hlsrelay-id="film",Film\n{media}\n')
    server_env.update(HLSRELAY_CHANNELS=str(channels), HLSRELAY_LOG_LEVEL="error")
    server = Uvicorn(server_env, tmp_path / "uvicorn.log")
    try:
        port = server.start().port

        def guide():
            status, headers, xml = get(port, "/epg.xml")
            return xml.decode() if status == 200 and b"<programme" in xml else None

        xml = wait_for(guide, 30, interval=0.2, what="the guide's programmes")
        assert '<channel id="news">' in xml and '<channel id="film">' in xml  # every channel listed
        assert 'channel="news"' in xml and 'start="20261202000000 +0000"' in xml  # shifted by an hour
        assert "Pas pour nous" not in xml and "other.fr" not in xml
        assert "Late &amp; News" in xml
        status, headers, gz = get(port, "/epg.xml.gz")
        assert status == 200 and headers["content-type"] == "application/gzip"
        assert gzip.decompress(gz).decode() == xml
        xmllint = shutil.which("xmllint")
        if xmllint:
            (tmp_path / "epg.xml").write_text(xml)
            assert subprocess.run([xmllint, "--noout", str(tmp_path / "epg.xml")]).returncode == 0
        status, sources = get_json(port, "/api/v1/guide")
        assert status == 200 and len(sources["sources"]) == 1
        assert sources["sources"][0]["has_guide"] and sources["sources"][0]["gzip_file"]
        assert sources["sources"][0]["programmes"] == 1
        status, _, m3u = get(port, "/playlist.m3u")
        assert m3u.decode().startswith(f'#EXTM3U url-tvg="http://{HOST}:{port}/epg.xml"')
    finally:
        server.stop()
        provider.shutdown()
    assert server.proc.returncode == 0, server.output().decode(errors="replace")
