# hlsrelay.fastapi in-process with Starlette's TestClient: the replaced API's routes and HLS serving.
import json
import os

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")  # Starlette's TestClient needs it

from fastapi import FastAPI  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from hlsrelay import Engine, InvalidArgument  # noqa: E402
from hlsrelay.fastapi import create_app, create_router, engine_from_env  # noqa: E402
from conftest import wait_for  # noqa: E402

NOT_FOUND = {"detail": "Channel not found"}
# Requests name the server by address: TestClient's default Host "testserver" is a name the router
# refuses on its API (DNS-rebinding protection, tested at the end of this file).
LOCAL = "http://127.0.0.1"


def playlist_segments(client, stream_id, count, timeout=20.0):
    def listed():
        r = client.get(f"/hls_streams/{stream_id}/index.m3u8")
        if r.status_code != 200:
            return None
        names = [line for line in r.text.splitlines() if line.endswith(".ts")]
        return names if len(names) >= count else None

    return wait_for(listed, timeout, what=f"{count} segments in the playlist")


@pytest.mark.parametrize("zero_copy", [False, True])
@pytest.mark.deadline(60)
def test_api_and_hls_from_memory(live_engine, zero_copy):
    app = create_app(live_engine, zero_copy=zero_copy)
    with TestClient(app, base_url=LOCAL) as client:
        r = client.get("/api/v1/channels")
        assert r.status_code == 200
        assert r.json() == live_engine.api("channels")[1]
        assert r.json()["channels"][0]["running"] is False

        r = client.get("/api/v1/channels/start-stream/Test Channel")
        assert r.status_code == 200
        assert r.json() == {"message": "Stream for 'test' started.", "channel": "Test Channel",
                            "hls_url": "/hls_streams/test/master.m3u8",
                            "config": {"segment_duration": 1, "max_segments": 5, "cleanup_interval": 5,
                                       "container": "ts", "renditions": "all",
                                       "low_latency": False, "part_duration": 1 / 3}}
        r = client.get("/api/v1/channels/start-stream/test")
        assert r.status_code == 200 and r.json()["message"] == "Stream for 'test' is already running."

        names = playlist_segments(client, "test", 2)
        r = client.get("/hls_streams/test/master.m3u8")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert r.headers["cache-control"] == "no-cache"
        assert r.text.startswith("#EXTM3U") and "index.m3u8" in r.text

        r = client.get(f"/hls_streams/test/{names[-1]}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "video/mp2t"
        assert r.headers["cache-control"] == "public, max-age=86400, immutable"
        assert int(r.headers["content-length"]) == len(r.content) > 0
        assert r.content[0] == 0x47 and len(r.content) % 188 == 0
        assert r.content == bytes(live_engine.read("test", names[-1]))

        r = client.get("/api/v1/channels/stream-status/test")
        assert r.status_code == 200
        status = r.json()
        assert status["process_status"] == "running" and status["segment_count"] >= 2
        assert status["master_playlist_exists"] is True and status["hls_url"] == "/hls_streams/test/master.m3u8"
        assert list(status)[:3] == ["channel_name", "stream_id", "process_status"]  # order kept

        r = client.get("/api/v1/channels/streams-status")
        assert r.status_code == 200
        body = r.json()
        assert body["total_channels"] == 1 and body["running_streams"] == 1
        assert body["streams"][0]["stream_id"] == "test"

        r = client.get("/api/v1/channels/static-hls-m3u")
        assert r.status_code == 200 and r.headers["content-type"] == "audio/x-mpegurl; charset=utf-8"
        assert "http://127.0.0.1/hls_streams/test/master.m3u8" in r.text

        r = client.get("/api/v1/channels/stop-stream/test")
        assert r.status_code == 200 and r.json() == {"message": "Stream for 'test' stopped."}
        r = client.get("/api/v1/channels/stop-stream/test")
        assert r.json() == {"message": "Stream for 'test' was not running; stopped."}
        assert client.get("/hls_streams/test/index.m3u8").status_code == 404
        assert client.get("/api/v1/channels/stream-status/test").json()["process_status"] == "stopped"

        assert client.get("/hls_streams/test/index.m3u8").json() == {"detail": "Stream not running"}

        for route in ("start-stream", "stop-stream", "stream-status"):
            r = client.get(f"/api/v1/channels/{route}/no-such-channel")
            assert r.status_code == 404 and r.json() == NOT_FOUND
        r = client.get("/hls_streams/no-such-channel/index.m3u8")
        assert r.status_code == 404 and r.json() == NOT_FOUND
        r = client.get("/hls_streams/Test Channel/index.m3u8")  # ids only, not display names
        assert r.status_code == 404 and r.json() == NOT_FOUND


@pytest.mark.parametrize("zero_copy", [False, True])
@pytest.mark.deadline(60)
def test_hls_ranges_head_and_missing_files(live_engine, zero_copy):
    with TestClient(create_app(live_engine, zero_copy=zero_copy), base_url=LOCAL) as client:
        assert client.get("/api/v1/channels/start-stream/test").status_code == 200
        names = playlist_segments(client, "test", 1)
        url = f"/hls_streams/test/{names[-1]}"
        whole = bytes(live_engine.read("test", names[-1]))
        size = len(whole)

        r = client.get(url, headers={"Range": "bytes=0-187"})
        assert r.status_code == 206 and r.content == whole[:188]
        assert r.headers["content-range"] == f"bytes 0-187/{size}" and r.headers["content-length"] == "188"
        r = client.get(url, headers={"Range": "bytes=-188"})
        assert r.status_code == 206 and r.content == whole[-188:]
        r = client.get(url, headers={"Range": "bytes=188-"})
        assert r.status_code == 206 and r.content == whole[188:]
        r = client.get(url, headers={"Range": f"bytes={size}-"})
        assert r.status_code == 416 and r.json() == {"detail": "Range not satisfiable"}
        assert r.headers["content-range"] == f"bytes */{size}"
        for ignored in ("bytes=0-1,5-9", "items=0-1", "bytes=9-2"):
            r = client.get(url, headers={"Range": ignored})
            assert r.status_code == 200 and r.content == whole
        assert client.get(url).headers["accept-ranges"] == "bytes"

        r = client.head(url)
        assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == str(size)
        r = client.get("/hls_streams/test/index.m3u8", headers={"Range": "bytes=0-3"})
        assert r.status_code == 200 and "accept-ranges" not in r.headers  # playlists: whole only

        r = client.get("/hls_streams/test/seg_1.ts")
        assert r.status_code == 404 and r.json() == {"detail": "Not found"}
        r = client.get("/hls_streams/test/passwd")
        assert r.status_code == 404 and r.json() == {"detail": "Not found"}
    assert not live_engine.closed  # the app does not own an engine it was given


def test_router_mounts_into_an_existing_app(engine):
    engine.add_channel("Idle", url="http://example.invalid/idle.m3u8")
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"ok": True}

    app.include_router(create_router(engine))
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/health").json() == {"ok": True}
        assert client.get("/api/v1/channels/stream-status/idle").json()["process_status"] == "stopped"
        assert client.get("/api/v1/channels/stream-status/nope").json() == NOT_FOUND
    with pytest.raises(TypeError):
        create_router(object())


@pytest.mark.deadline(60)
def test_app_builds_and_closes_its_own_engine(media, tmp_path, monkeypatch):
    channels = tmp_path / "channels.json"
    channels.write_text(json.dumps([{"name": "Looped", "url": media, "loop": True, "segment_duration": 1}]))
    monkeypatch.setenv("HLSRELAY_SEGMENT_DURATION", "1")
    app = create_app(channels_file=channels)
    with TestClient(app, base_url=LOCAL) as client:
        engine = app.state.engine
        assert isinstance(engine, Engine) and engine.settings["segment_duration"] == 1.0
        assert client.get("/api/v1/channels/start-stream/looped").status_code == 200
        playlist_segments(client, "looped", 1)
    assert engine.closed  # closed on shutdown


def test_app_without_channel_list_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.delenv("HLSRELAY_CHANNELS", raising=False)
    with pytest.raises(RuntimeError, match="HLSRELAY_CHANNELS is not set"):
        with TestClient(create_app()):
            pass
    monkeypatch.setenv("HLSRELAY_CHANNELS", str(tmp_path / "missing.m3u"))
    with pytest.raises(RuntimeError, match="not readable"):
        with TestClient(create_app()):
            pass


@pytest.mark.deadline(60)
def test_serve_from_disk(media, tmp_path):
    hls_dir = tmp_path / "hls"
    with Engine() as memory_only, pytest.raises(ValueError):
        create_app(memory_only, serve_from_disk=True)
    with Engine(segment_duration=1.0, hls_dir=hls_dir, log_level="error") as engine:
        engine.add_channel("Disk", url=media, loop=True)
        app = create_app(engine, serve_from_disk=True)
        with TestClient(app, base_url=LOCAL) as client:
            assert client.get("/api/v1/channels/start-stream/disk").status_code == 200
            names = playlist_segments(client, "disk", 2)
            assert os.path.exists(hls_dir / "disk" / names[-1])
            r = client.get(f"/hls_streams/disk/{names[-1]}")
            assert r.status_code == 200 and r.headers["content-type"] == "video/mp2t"
            assert r.headers["cache-control"] == "public, max-age=86400, immutable"
            assert r.content[0] == 0x47 and len(r.content) % 188 == 0
            r = client.get("/hls_streams/disk/master.m3u8")
            assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
            assert client.get("/hls_streams/disk/nothing.ts").status_code == 404


# The HTTP protections, the demo server's rules through the same C++ (hlsrelay._core.check_request).

EVIL = {"Origin": "http://evil.example"}


def test_redaction_helpers_are_the_engines():
    from hlsrelay._core import redact_url, scrub_urls

    assert redact_url("http://u:p@host:8080/live/USER/PASS/100.m3u8?x=1|Cookie=c") == "http://***@host:8080/live/***/***/100.m3u8?***"
    assert redact_url("http://host:25461/USER/PASS/100.ts") == "http://host:25461/***/***/100.ts"
    assert redact_url("http://host/get.php?username=U&password=P") == "http://host/get.php?***"
    assert scrub_urls("cannot open http://h/movie/U/P/1.mkv: 403") == "cannot open http://h/movie/***/***/1.mkv: 403"
    assert scrub_urls("cannot open http://h/movie/U/P/1.mkv: 403", hide=True) == "cannot open <url hidden>: 403"


@pytest.mark.deadline(60)
def test_cross_site_requests_cannot_start_or_stop(live_engine):
    with TestClient(create_app(live_engine), base_url=LOCAL) as client:
        for headers in (EVIL, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"},
                        {"Origin": "http://127.0.0.1:1"}):
            r = client.get("/api/v1/channels/start-stream/test", headers=headers)
            assert r.status_code == 403, headers
            assert r.json()["detail"].startswith("Cross-site request refused")
            assert "access-control-allow-origin" not in r.headers
        assert client.post("/api/v1/channels/test/start", headers=EVIL).status_code == 403
        assert not live_engine.running("test")

        # Same origin (the app's own page) and curl-like clients are served.
        r = client.post("/api/v1/channels/test/start", headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200 and live_engine.running("test")
        assert client.get("/api/v1/channels/stop-stream/test", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert live_engine.running("test")
        assert client.get("/api/v1/channels/stop-stream/test").status_code == 200
        assert not live_engine.running("test")


def test_foreign_host_is_refused_except_on_hls(live_engine, monkeypatch):
    monkeypatch.delenv("HLSRELAY_ALLOWED_HOSTS", raising=False)
    with TestClient(create_app(live_engine)) as client:  # Host: testserver, a name nobody allowed
        for path in ("/api/v1/channels/start-stream/test", "/api/v1/channels/stop-stream/test",
                     "/api/v1/channels/stream-status/test", "/api/v1/channels/streams-status",
                     "/api/v1/channels/static-hls-m3u", "/api/v1/channels"):
            r = client.get(path)
            assert r.status_code == 421, path
            assert r.json()["detail"].startswith("Misdirected request") and "test" not in r.text
        assert client.post("/api/v1/channels/test/start").status_code == 421
        assert not live_engine.running("test")
        r = client.get("/hls_streams/test/master.m3u8")
        assert r.status_code == 404 and r.json() == {"detail": "Stream not running"}
        for host in ("localhost", "127.0.0.1:8000", "[::1]:8000", "10.0.0.7"):
            assert client.get("/api/v1/channels/streams-status", headers={"Host": host}).status_code == 200, host
        assert client.get("/api/v1/channels/streams-status", headers={"Host": "127.0.0.1.evil.example"}).status_code == 421
    with TestClient(create_app(live_engine, allowed_hosts=["testserver"])) as client:
        assert client.get("/api/v1/channels/streams-status").status_code == 200
    monkeypatch.setenv("HLSRELAY_ALLOWED_HOSTS", "tv.example, testserver")
    app = FastAPI()
    app.include_router(create_router(live_engine))
    with TestClient(app) as client:
        assert client.get("/api/v1/channels/streams-status").status_code == 200
        assert client.get("/api/v1/channels/streams-status", headers={"Host": "tv.example:8000"}).status_code == 200
        assert client.get("/api/v1/channels/streams-status", headers={"Host": "other.example"}).status_code == 421


def test_only_hls_is_readable_cross_origin(live_engine):
    with TestClient(create_app(live_engine), base_url=LOCAL) as client:
        for path in ("/api/v1/channels", "/api/v1/channels/streams-status", "/api/v1/channels/stream-status/test",
                     "/api/v1/channels/static-hls-m3u"):
            assert "access-control-allow-origin" not in client.get(path, headers={"Origin": "http://player.example"}).headers
        for path in ("/hls_streams/test/master.m3u8", "/hls_streams/nope/index.m3u8", "/hls_streams/test/passwd"):
            r = client.get(path, headers={"Origin": "http://player.example"})
            assert r.headers["access-control-allow-origin"] == "*", path


# The demo server's HLS delivery headers (server/src/http.cpp, request_handler.cpp).
DEMO_CORS = {"access-control-allow-origin": "*",
             "access-control-expose-headers": "Content-Length, Content-Range, Accept-Ranges"}
DEMO_PREFLIGHT = {**DEMO_CORS, "allow": "GET, HEAD, OPTIONS", "access-control-allow-methods": "GET, HEAD, OPTIONS",
                  "access-control-allow-headers": "Range", "access-control-max-age": "86400"}
PREFLIGHT_REQUEST = {"Origin": "http://player.example", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "range"}


def assert_headers(response, expected, what):
    got = {k: response.headers.get(k) for k in expected}
    assert got == expected, what


def check_hls_cors(client, stream_id, segment, ranges=True):
    """Every HLS response (found or not) carries the demo server's CORS headers and cache policy; a
    preflight on an HLS path is answered 204; API paths grant nothing cross-origin."""
    origin = {"Origin": "http://player.example"}
    r = client.get(f"/hls_streams/{stream_id}/index.m3u8", headers=origin)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    assert_headers(r, DEMO_CORS, "playlist")
    r = client.get(f"/hls_streams/{stream_id}/{segment}", headers={**origin, "Range": "bytes=0-187"})
    # (Debian 12's Starlette serves files without Range support: the disk mirror may answer 200.)
    assert r.status_code in ((206,) if ranges else (200, 206))
    assert r.headers["cache-control"] == "public, max-age=86400, immutable"
    assert_headers(r, DEMO_CORS, "segment range")
    r = client.head(f"/hls_streams/{stream_id}/{segment}", headers=origin)
    assert r.status_code == 200
    assert_headers(r, DEMO_CORS, "HEAD")
    r = client.get(f"/hls_streams/{stream_id}/seg_999999.ts", headers=origin)
    assert r.status_code == 404 and r.json() == {"detail": "Not found"}
    assert_headers(r, DEMO_CORS, "404")
    for path in (f"/hls_streams/{stream_id}/index.m3u8", f"/hls_streams/{stream_id}/{segment}"):
        r = client.options(path, headers=PREFLIGHT_REQUEST)
        assert r.status_code == 204, path
        assert_headers(r, DEMO_PREFLIGHT, f"preflight {path}")
    r = client.options("/api/v1/channels/streams-status", headers=PREFLIGHT_REQUEST)
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.deadline(60)
def test_hls_delivery_headers_match_the_demo_server(live_engine):
    with TestClient(create_app(live_engine), base_url=LOCAL) as client:
        assert client.get("/api/v1/channels/start-stream/test").status_code == 200
        names = playlist_segments(client, "test", 2)
        check_hls_cors(client, "test", names[-1])


@pytest.mark.deadline(60)
def test_hls_delivery_headers_from_disk_match_the_demo_server(media, tmp_path):
    with Engine(segment_duration=1.0, hls_dir=tmp_path / "hls", log_level="error") as engine:
        engine.add_channel("Disk", url=media, loop=True)
        with TestClient(create_app(engine, serve_from_disk=True), base_url=LOCAL) as client:
            assert client.get("/api/v1/channels/start-stream/disk").status_code == 200
            names = playlist_segments(client, "disk", 2)
            check_hls_cors(client, "disk", names[-1], ranges=False)


@pytest.mark.deadline(60)
def test_token_hides_sources_from_requests_without_it(engine, monkeypatch):
    monkeypatch.delenv("HLSRELAY_API_TOKEN", raising=False)
    engine.add_channel("Xtream", url="http://ui_user:ui_pass@127.0.0.1:1/live/xc_user/xc_pass/100.m3u8?password=q_pass")
    engine.start("xtream")
    wait_for(lambda: engine.status("xtream")["last_error"], 30, what="an error from the unreachable source")
    secrets = ("ui_user", "ui_pass", "xc_user", "xc_pass", "q_pass")
    redacted = "http://***@127.0.0.1:1/live/***/***/100.m3u8?***"

    for app in (create_app(engine, api_token="s3cret"), None):
        if app is None:  # the same through $HLSRELAY_API_TOKEN and a mounted router
            monkeypatch.setenv("HLSRELAY_API_TOKEN", "s3cret")
            app = FastAPI()
            app.include_router(create_router(engine))
        with TestClient(app, base_url=LOCAL) as client:
            one = client.get("/api/v1/channels/stream-status/xtream")
            every = client.get("/api/v1/channels/streams-status")
            assert one.status_code == every.status_code == 200
            assert one.json()["source"] is None and every.json()["streams"][0]["source"] is None
            assert "<url hidden>" in one.json()["last_error"] and "127.0.0.1:1" not in one.text + every.text
            r = client.get("/api/v1/channels")
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert client.get("/api/v1/channels/stop-stream/xtream").status_code == 401
            assert engine.running("xtream")

            authed = client.get("/api/v1/channels/stream-status/xtream", headers={"Authorization": "Bearer s3cret"})
            assert authed.json()["source"] == redacted and "127.0.0.1:1" in authed.json()["last_error"]
            assert client.get("/api/v1/channels/streams-status?token=s3cret").json()["streams"][0]["source"] == redacted
            listed = client.get("/api/v1/channels", headers={"Authorization": "Bearer s3cret"})
            assert listed.status_code == 200
            for text in (one.text, every.text, authed.text, listed.text):
                assert not any(s in text for s in secrets), text
    # No token at all: the redacted form for everyone.
    with TestClient(create_app(engine, api_token=""), base_url=LOCAL) as client:
        body = client.get("/api/v1/channels/stream-status/xtream").json()
        assert body["source"] == redacted and not any(s in json.dumps(body) for s in secrets)


def test_engine_from_env_reads_container_and_renditions(tmp_path, monkeypatch):
    channels = tmp_path / "channels.json"
    channels.write_text(json.dumps([{"name": "Ladder", "url": "http://x.invalid/l.m3u8"}]))
    monkeypatch.setenv("HLSRELAY_CONTAINER", "fmp4")
    monkeypatch.setenv("HLSRELAY_RENDITIONS", "max-height=720")
    engine = engine_from_env(channels)
    try:
        assert engine.settings["container"] == "fmp4" and engine.settings["renditions"] == "max-height=720"
    finally:
        engine.close()
    monkeypatch.setenv("HLSRELAY_RENDITIONS", "720")
    with pytest.raises(RuntimeError, match="invalid HLSRELAY_\\* setting: renditions must be"):
        engine_from_env(channels)
    monkeypatch.delenv("HLSRELAY_RENDITIONS")
    monkeypatch.setenv("HLSRELAY_CONTAINER", "mp4")
    with pytest.raises(RuntimeError, match="container 'mp4'"):
        engine_from_env(channels)
    monkeypatch.delenv("HLSRELAY_CONTAINER")
    monkeypatch.setenv("HLSRELAY_LOW_LATENCY", "yes")
    monkeypatch.setenv("HLSRELAY_PART_DURATION", "0.5")
    engine = engine_from_env(channels)
    try:
        assert engine.settings["low_latency"] is True and engine.settings["part_duration"] == 0.5
    finally:
        engine.close()
    monkeypatch.setenv("HLSRELAY_LOW_LATENCY", "maybe")
    with pytest.raises(RuntimeError, match="HLSRELAY_LOW_LATENCY"):
        engine_from_env(channels)


@pytest.mark.deadline(120)
def test_engine_from_env_fetches_channel_lists_by_url(monkeypatch):
    """HLSRELAY_CHANNEL_LISTS: a provider's list by URL, fetched in the background (no file needed);
    GET /api/v1/lists reports it with its credentials redacted, POST /api/v1/lists/refresh fetches it
    again."""
    import http.server
    import threading

    body = b'#EXTM3U\n#EXTINF:-1 tvg-id="one",One\nhttp://127.0.0.1:1/one.m3u8\n'
    fetches = []

    class Provider(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "audio/x-mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    provider = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=provider.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{provider.server_port}/get.php?username=u&password=s3cret&type=m3u_plus"
    monkeypatch.delenv("HLSRELAY_CHANNELS", raising=False)
    monkeypatch.setenv("HLSRELAY_CHANNEL_LISTS", url)
    monkeypatch.setenv("HLSRELAY_LIST_REFRESH", "3600")
    engine = engine_from_env()
    try:
        assert engine.settings["list_refresh_interval"] == 3600
        assert "s3cret" not in json.dumps(engine.settings["channel_lists"])
        wait_for(lambda: any(c["id"] == "one" for c in engine.channels()), 30, what="the list's channel")
        with TestClient(create_app(engine), base_url=LOCAL) as client:
            lists = wait_for(lambda: [x for x in client.get("/api/v1/lists").json()["lists"] if x["fetched_at"]], 30)
            assert lists[0]["channels"] == 1 and lists[0]["url"].endswith("/get.php?***")
            assert "s3cret" not in json.dumps(lists)
            seen = len(fetches)
            assert client.post("/api/v1/lists/refresh").status_code == 200
            wait_for(lambda: len(fetches) > seen, 60, what="a fetch on demand")  # at most 30 s after the last
    finally:
        engine.close()
        provider.shutdown()
        provider.server_close()
    monkeypatch.setenv("HLSRELAY_CHANNEL_LISTS", "file:///etc/passwd")
    with pytest.raises(RuntimeError, match="invalid HLSRELAY_\\* setting: channel list URL is not http"):
        engine_from_env()


@pytest.mark.deadline(90)
def test_low_latency_blocking_reloads_parts_and_delta(engine, media):
    """LL-HLS through the router: a blocking reload is held on the event loop until the part it names
    exists (no thread per request), the hinted part is served, the directives are read as the demo
    server reads them (Engine.hls_playlist), and events tell of each part."""
    engine.add_channel("LL", url=media, id="ll", loop=True, low_latency=True, container="fmp4", segment_duration=2.0)
    parts = []
    engine.subscribe(lambda e: parts.append(e) if e["type"] == "part" else None)
    engine.start("ll")
    app = FastAPI()
    app.include_router(create_router(engine))
    with TestClient(app, base_url=LOCAL) as client:
        def playlist():
            r = client.get("/hls_streams/ll/index.m3u8")
            return r.text if r.status_code == 200 and "#EXT-X-PRELOAD-HINT" in r.text else None

        text = wait_for(playlist, 30, what="an LL playlist")
        assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES" in text and "#EXT-X-PART:" in text
        lines = text.splitlines()
        msn = int(next(l for l in lines if l.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
        msn += sum(1 for l in lines if l and not l.startswith("#"))  # the segment being cut
        index = 0
        for l in reversed(lines):
            if not l.startswith("#EXT-X-PART:") and not l.startswith("#EXT-X-PRELOAD-HINT"):
                break
            index += l.startswith("#EXT-X-PART:")
        hint = next(l for l in lines if l.startswith("#EXT-X-PRELOAD-HINT")).split('URI="')[1].rstrip('"')
        # Held until that part is out: the answer lists it, and is cacheable (its URL names what it holds).
        r = client.get(f"/hls_streams/ll/index.m3u8?_HLS_msn={msn}&_HLS_part={index}")
        assert r.status_code == 200, r.text
        assert f'URI="{hint}"' in r.text
        assert r.headers["cache-control"].startswith("public, max-age=")
        part = client.get(f"/hls_streams/ll/{hint}")
        assert part.status_code == 200 and len(part.content) > 0
        assert part.headers["content-type"] == "video/iso.segment"
        # A preload hint's part asked for before it is complete is held until it is, not a 404.
        for _ in range(3):
            fresh = client.get("/hls_streams/ll/index.m3u8").text
            nxt = next(l for l in fresh.splitlines() if l.startswith("#EXT-X-PRELOAD-HINT")).split('URI="')[1].rstrip('"')
            held = client.get(f"/hls_streams/ll/{nxt}")
            assert held.status_code == 200 and len(held.content) > 0, (nxt, held.status_code, held.text[:200])
        # Refused at once: too far ahead, a part without its msn, a bad skip.
        assert client.get(f"/hls_streams/ll/index.m3u8?_HLS_msn={msn + 5}").status_code == 400
        assert client.get("/hls_streams/ll/index.m3u8?_HLS_part=1").status_code == 400
        assert client.get("/hls_streams/ll/index.m3u8?_HLS_skip=maybe").status_code == 400
        delta = client.get("/hls_streams/ll/index.m3u8?_HLS_skip=YES")
        assert delta.status_code == 200 and "#EXT-X-VERSION:9" in delta.text
        assert engine.wait_playlist("ll", msn + 1, 0, timeout=10)
    assert parts and {"sequence", "part", "duration"} <= set(parts[-1]) and parts[-1]["part"] >= 0
    engine.stop("ll")


@pytest.mark.deadline(120)
def test_low_latency_presentation_renditions_served_and_blocking(engine, tmp_path):
    """A multivariant source (a local two-variant ladder, looping) relayed with low latency: the
    router serves every rendition's files under /hls_streams/{id}/{rendition}/, each rendition's
    playlist has parts and reports of the others and holds blocking reloads, and part events say
    which rendition they belong to."""
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        pytest.skip("ffmpeg is not installed")
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "12",
         "-filter_complex", "[0:v]split=2[a][b];[b]scale=160:90[small]", "-map", "[a]", "-map", "[small]",
         "-map", "1:a", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25",
         "-sc_threshold", "0", "-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
         "-master_pl_name", "master.m3u8", "-hls_segment_filename", str(tmp_path / "%v_%03d.ts"),
         "-var_stream_map", "v:0,a:0 v:1,a:1", str(tmp_path / "v%v.m3u8")],
        check=True, timeout=60)
    engine.add_channel("Ladder", url=str(tmp_path / "master.m3u8"), id="lad", loop=True, low_latency=True,
                       container="fmp4")
    events = []
    engine.subscribe(lambda e: events.append(e) if e["type"] == "part" else None)
    engine.start("lad")
    app = FastAPI()
    app.include_router(create_router(engine))
    with TestClient(app, base_url=LOCAL) as client:
        def both():
            texts = [client.get(f"/hls_streams/lad/{r}/index.m3u8") for r in ("v0", "v1")]
            # A rendition reports another once that one has published (as of its own last publication).
            ok = all(t.status_code == 200 and "#EXT-X-PRELOAD-HINT" in t.text and "#EXT-X-RENDITION-REPORT" in t.text
                     for t in texts)
            return [t.text for t in texts] if ok else None

        v0, v1 = wait_for(both, 60, what="both renditions' LL playlists, each with a report of the other")
        assert '#EXT-X-RENDITION-REPORT:URI="../v1/index.m3u8",LAST-MSN=' in v0
        assert '#EXT-X-RENDITION-REPORT:URI="../v0/index.m3u8",LAST-MSN=' in v1
        master = client.get("/hls_streams/lad/master.m3u8")
        assert master.status_code == 200 and "v1/index.m3u8" in master.text
        lines = v1.splitlines()
        msn = int(next(l for l in lines if l.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
        msn += sum(1 for l in lines if l and not l.startswith("#"))
        hint = next(l for l in lines if l.startswith("#EXT-X-PRELOAD-HINT")).split('URI="')[1].rstrip('"')
        # A blocking reload of v1's playlist for the segment after the one being cut: held, then served.
        r = client.get(f"/hls_streams/lad/v1/index.m3u8?_HLS_msn={msn + 1}&_HLS_part=0")
        assert r.status_code == 200, r.text
        assert f'URI="{hint}"' in r.text
        part = client.get(f"/hls_streams/lad/v1/{hint}")
        assert part.status_code == 200 and part.headers["content-type"] == "video/iso.segment"
        delta = client.get("/hls_streams/lad/v1/index.m3u8?_HLS_skip=YES")
        assert delta.status_code == 200 and "#EXT-X-VERSION:9" in delta.text
        assert client.get(f"/hls_streams/lad/v1/index.m3u8?_HLS_msn={msn + 9}").status_code == 400
        assert client.get("/hls_streams/lad/v9/index.m3u8").status_code == 404
        assert client.get("/hls_streams/lad/..%2Fx/index.m3u8").status_code == 404
        assert engine.wait_playlist("lad", msn + 2, 0, timeout=15, playlist="v1/index.m3u8")
        assert not engine.wait_playlist("lad", msn, 0, timeout=0.1, playlist="v7/index.m3u8")
    assert {e["rendition"] for e in events} >= {None, "v1"}
    engine.stop("lad")


def test_every_endpoint_of_the_table_is_routed(engine):
    """The router adds one route per row of the engine's endpoint table (hlsrelay/endpoints.hpp),
    the same table the demo server routes by and the C ABI calls: none is missing, none answers
    another's name."""
    from hlsrelay._core import endpoints

    rows = endpoints()
    assert {"start-stream", "stop-stream", "stream-status", "streams-status", "static-hls-m3u", "channels"} <= {
        r["name"] for r in rows}
    routes = {(r.path, m) for r in create_router(engine).routes for m in getattr(r, "methods", ())}
    for row in rows:
        assert (row["path"], row["method"]) in routes, row
        assert row["needs_channel"] == ("{channel_name}" in row["path"])
    # Engine.api takes each name, and refuses an unknown one with the table's names.
    for name in {r["name"] for r in rows if not r["changes_state"] and not r["needs_channel"]}:
        status, _ = engine.api(name, base_url="http://127.0.0.1:1")
        assert status == 200, name
    with pytest.raises(InvalidArgument, match="streams-status"):
        engine.api("no-such-endpoint")


@pytest.mark.deadline(60)
def test_channel_management_through_the_router(media, tmp_path):
    """Add, change, disable, enable and remove channels over the FastAPI routes (control-level: the
    token), bad bodies answered 400/413, and the changes kept in the state file for the next engine."""
    state = tmp_path / "state.json"
    auth = {"Authorization": "Bearer s3cret"}
    engine = Engine(segment_duration=1.0, log_level="error", state_file=state)
    try:
        engine.load(json.dumps([{"id": "one", "name": "One", "url": media, "loop": True},
                                {"id": "two", "name": "Two", "url": media, "loop": True}]))
        with TestClient(create_app(engine, api_token="s3cret"), base_url=LOCAL) as client:
            new = {"id": "three", "name": "Three", "url": media, "loop": True}
            assert client.post("/api/v1/channels", json=new).status_code == 401
            assert client.post("/api/v1/channels", json=new, headers={**auth, "Origin": "http://evil.example"}).status_code == 403
            r = client.post("/api/v1/channels", json=new, headers=auth)
            assert r.status_code == 201 and r.json()["id"] == "three" and r.json()["enabled"] is True
            assert client.post("/api/v1/channels", json=new, headers=auth).status_code == 409
            bad = client.post("/api/v1/channels", content=b"{not json", headers=auth)
            assert bad.status_code == 400 and "invalid JSON" in bad.json()["detail"]
            bad = client.post("/api/v1/channels", json={**new, "id": "x", "bogus": 1}, headers=auth)
            assert bad.status_code == 400 and "unknown field 'bogus'" in bad.json()["detail"]
            bad = client.post("/api/v1/channels", json={"name": 3, "url": media}, headers=auth)
            assert bad.status_code == 400 and "'name'" in bad.json()["detail"]
            big = client.post("/api/v1/channels", content=b"{" + b" " * (64 * 1024) + b"}", headers=auth)
            assert big.status_code == 413

            r = client.patch("/api/v1/channels/two", json={"group": "News"}, headers=auth)
            assert r.status_code == 200 and r.json()["group"] == "News" and r.json()["name"] == "Two"
            assert client.patch("/api/v1/channels/nope", json={"group": "News"}, headers=auth).status_code == 404
            assert client.patch("/api/v1/channels/two", json={"group": "News"}).status_code == 401

            assert client.post("/api/v1/channels/one/start", headers=auth).status_code == 200
            r = client.post("/api/v1/channels/one/disable", headers=auth)
            assert r.status_code == 200 and r.json()["enabled"] is False and not engine.running("one")
            r = client.post("/api/v1/channels/one/start", headers=auth)
            assert r.status_code == 409 and "disabled" in r.json()["detail"]
            assert "/stream/one.ts" not in client.get("/playlist.m3u").text
            assert "/stream/two.ts" in client.get("/playlist.m3u").text

            assert client.delete("/api/v1/channels/two").status_code == 401
            r = client.delete("/api/v1/channels/two", headers=auth)
            assert r.status_code == 200 and r.json() == {"removed": "two"}
            assert client.delete("/api/v1/channels/two", headers=auth).status_code == 404
    finally:
        engine.close()

    again = Engine(segment_duration=1.0, log_level="error", state_file=state)
    try:
        again.load(json.dumps([{"id": "one", "name": "One", "url": media, "loop": True},
                               {"id": "two", "name": "Two", "url": media, "loop": True}]))
        assert sorted(c["id"] for c in again.channels()) == ["one", "three"]
        assert again.channel("one").get("enabled") is False
    finally:
        again.close()
