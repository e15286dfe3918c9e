# hlsrelay._core's API: settings, registry, status, reads with the buffer protocol, api(), errors.
import gc
import re
import weakref

import pytest

import hlsrelay
from hlsrelay import ChannelNotFound, Engine, EngineError, InvalidArgument
from conftest import wait_for, wait_for_segments

M3U = """#EXTM3U
#EXTINF:-1 tvg-id="news" tvg-logo="http://logo/n.png" group-title="News",News HD
http://user:secret@example.invalid/live/news.m3u8
this line is not a URL
#EXTINF:-1,Sports
http://example.invalid/sports.ts
"""


def test_version_and_exports():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hlsrelay.__version__)
    assert hlsrelay.__version__ == hlsrelay._core.__version__
    assert issubclass(ChannelNotFound, EngineError) and issubclass(InvalidArgument, EngineError)
    assert issubclass(EngineError, Exception)
    assert EngineError.__module__ == "hlsrelay"
    for name in hlsrelay.__all__:
        assert hasattr(hlsrelay, name)


def test_engine_settings_and_validation():
    with Engine(segment_duration=1.5, max_segments=7, hls_dir=None, log_level="error") as e:
        s = e.settings
        assert s["segment_duration"] == 1.5 and s["max_segments"] == 7 and s["log_level"] == "error"
        assert e.hls_dir is None and not e.closed
    with pytest.raises(InvalidArgument, match="segment_duration"):
        Engine(segment_duration=0.1)
    with pytest.raises(InvalidArgument, match="max_segments"):
        Engine(max_segments=0)
    with pytest.raises(InvalidArgument, match="log_level"):
        Engine(log_level="loud")
    with pytest.raises(TypeError):
        Engine(segment_duration="fast")
    with pytest.raises(InvalidArgument, match="push_url") as refused:
        Engine(push_url="ftp://ingest:s3cret@cdn.example/live")
    assert "s3cret" not in str(refused.value)
    with Engine(push_url="http://ingest:s3cret@127.0.0.1:9/live", log_level="off") as e:
        assert e.settings["push_url"] == "http://***@127.0.0.1:9/live"
    with Engine(log_level="off") as e:
        assert e.settings["push_url"] is None


def test_fetch_limits_engine_wide_and_per_channel():
    with Engine(log_level="off") as e:
        s = e.settings  # the engine's defaults (include/hlsrelay/channel.hpp's FetchLimits)
        assert s["max_playlist_bytes"] == 4 << 20 and s["max_segment_bytes"] == 64 << 20
        assert s["max_redirects"] == 5 and s["playlist_deadline"] == 0.0 and s["segment_deadline"] == 0.0
    with Engine(log_level="off", max_playlist_bytes=65536, max_segment_bytes=8 << 20, max_redirects=0,
                playlist_deadline=2.0, segment_deadline=6.0) as e:
        s = e.settings
        assert (s["max_playlist_bytes"], s["max_segment_bytes"], s["max_redirects"]) == (65536, 8 << 20, 0)
        assert (s["playlist_deadline"], s["segment_deadline"]) == (2.0, 6.0)

        c = e.add_channel("Capped", url="http://example.invalid/c.m3u8", max_segment_bytes=1 << 20,
                          max_redirects=2, segment_deadline=7.5)
        assert c["max_segment_bytes"] == 1 << 20 and c["max_redirects"] == 2 and c["segment_deadline"] == 7.5
        assert "max_playlist_bytes" not in c and "playlist_deadline" not in c
        c = e.update_channel("capped", max_playlist_bytes=4096, max_redirects=None)
        assert c["max_playlist_bytes"] == 4096 and "max_redirects" not in c
        assert e.channel("capped", include_sources=True)["segment_deadline"] == 7.5
        with pytest.raises(InvalidArgument, match="max_segment_bytes 1000 is outside"):
            e.update_channel("capped", max_segment_bytes=1000)
        with pytest.raises(InvalidArgument, match="playlist_deadline"):
            e.add_channel("Bad", url="http://example.invalid/b.m3u8", playlist_deadline=0.1)
        with pytest.raises(TypeError):
            e.add_channel("Bad", url="http://example.invalid/b.m3u8", max_redirects="many")
    with pytest.raises(InvalidArgument, match="max_segment_bytes"):
        Engine(max_segment_bytes=1)
    with pytest.raises(InvalidArgument, match="max_redirects"):
        Engine(max_redirects=-1)
    with pytest.raises(InvalidArgument, match="segment_deadline"):
        Engine(segment_deadline=-2.0)


def test_load_reports_issues_with_line_numbers(engine):
    result = engine.load(M3U)
    assert result["channels"] == ["news", "sports"]
    assert len(result["issues"]) == 1
    issue = result["issues"][0]
    assert issue["line"] == 4 and "not a URL" in issue["message"]

    bad_json = '[{"name": "A", "url": "http://x.invalid/a.m3u8"}, {"url": "http://x.invalid/b"}, 42]'
    result = engine.load(bad_json)
    assert result["channels"] == ["a"]
    assert [i["line"] for i in result["issues"]] == [2, 3]
    assert "name" in result["issues"][0]["message"]

    result = engine.load(b'[{"name": "bytes too", "url": "http://x.invalid/c"}]')
    assert result["channels"] == ["bytes_too"]


def test_load_file(engine, tmp_path):
    path = tmp_path / "channels.m3u"
    path.write_text(M3U)
    assert engine.load_file(path)["channels"] == ["news", "sports"]
    with pytest.raises(EngineError) as info:
        engine.load_file(tmp_path / "missing.m3u")
    assert not isinstance(info.value, (ChannelNotFound, InvalidArgument))


def test_add_update_remove(engine):
    c = engine.add_channel("News HD", url="http://user:pw@example.invalid/a.m3u8", headers={"user-agent": "UA/1"},
                           logo="http://logo/a.png", group="News", segment_duration=1.0, max_segments=3)
    assert c["id"] == "news_hd" and c["name"] == "News HD"
    assert c["urls"] == ["http://***@example.invalid/a.m3u8"]  # no credentials
    assert c["headers"] == {"User-Agent": None}
    assert c["segment_duration"] == 1.0 and c["max_segments"] == 3 and c["loop"] is False
    assert engine.add_channel("News HD", ["http://example.invalid/b.m3u8"])["id"] == "news_hd_2"

    full = engine.channel("news_hd", include_sources=True)
    assert full["urls"] == ["http://user:pw@example.invalid/a.m3u8"] and full["headers"] == {"User-Agent": "UA/1"}
    assert [x["id"] for x in engine.channels()] == ["news_hd", "news_hd_2"]
    assert "pw" not in str(engine.channels())

    u = engine.update_channel("News HD", max_segments=4, loop=True, segment_duration=None)
    assert u["max_segments"] == 4 and u["loop"] is True and "segment_duration" not in u
    assert u["group"] == "News" and u["name"] == "News HD"  # untouched fields stay
    u = engine.update_channel("news_hd", urls=["http://example.invalid/c.m3u8", "http://example.invalid/d.m3u8"])
    assert len(u["urls"]) == 2

    engine.remove_channel("news_hd")
    assert [x["id"] for x in engine.channels()] == ["news_hd_2"]
    with pytest.raises(ChannelNotFound):
        engine.channel("news_hd")


def test_argument_errors(engine):
    with pytest.raises(InvalidArgument):
        engine.add_channel("No source")
    with pytest.raises(InvalidArgument, match="not both"):
        engine.add_channel("Both", ["http://x.invalid/a"], url="http://x.invalid/b")
    with pytest.raises(TypeError):
        engine.add_channel("Str urls", "http://x.invalid/a")  # a str is not a list of URLs
    with pytest.raises(InvalidArgument, match="segment_duration"):
        engine.add_channel("Short", url="http://x.invalid/a", segment_duration=0.01)
    with pytest.raises(InvalidArgument, match="variant"):
        engine.add_channel("Variant", url="http://x.invalid/a", variant="best")
    with pytest.raises(InvalidArgument, match="id"):
        engine.add_channel("Bad id", url="http://x.invalid/a", id="Not Safe!")
    with pytest.raises(TypeError):
        engine.add_channel("Kw", url="http://x.invalid/a", colour="red")
    engine.add_channel("Ok", url="http://x.invalid/a", variant=800000)
    with pytest.raises(TypeError, match="colour"):
        engine.update_channel("ok", colour="red")
    with pytest.raises(InvalidArgument, match="id"):
        engine.update_channel("ok", id="other")
    with pytest.raises(ChannelNotFound):
        engine.update_channel("missing", loop=True)
    with pytest.raises(ChannelNotFound):
        engine.remove_channel("missing")
    for call in (engine.start, engine.stop, engine.status, engine.running):
        with pytest.raises(ChannelNotFound):
            call("missing")
    assert engine.read("missing", "index.m3u8") is None
    assert engine.read("ok", "index.m3u8") is None  # not running
    with pytest.raises(TypeError):
        engine.subscribe(42)


def test_status_dicts(engine):
    engine.add_channel("Idle", url="http://example.invalid/idle.m3u8", max_segments=3)
    s = engine.status("idle")
    assert list(s)[:9] == ["channel_name", "stream_id", "process_status", "cleanup_running", "segment_count",
                           "max_segments", "master_playlist_exists", "hls_url", "estimated_buffer_seconds"]
    assert s["channel_name"] == "Idle" and s["process_status"] == "stopped" and s["state"] == "idle"
    assert s["max_segments"] == 3 and s["hls_url"] == "/hls_streams/idle/master.m3u8"
    assert s["last_error"] is None and s["resolution"] is None and s["notes"] == []
    assert engine.statuses() == [s]
    assert engine.running("idle") is False


def test_api_endpoints(engine):
    engine.add_channel("Idle", url="http://example.invalid/idle.m3u8")
    status, body = engine.api("channels")
    assert status == 200 and body["channels"][0]["hls_url"] == "/hls_streams/idle/master.m3u8"
    assert body["channels"][0]["running"] is False
    status, body = engine.api("stream-status", "Idle")
    assert status == 200 and body == engine.status("idle")
    status, body = engine.api("streams_status")  # underscores work too
    assert status == 200 and list(body) == ["total_channels", "running_streams", "active_cleanup_threads",
                                            "hls_config", "streams"]
    assert body["hls_config"] == {"segment_duration": 1, "max_segments": 5, "cleanup_interval": 5,
                                  "container": "ts", "renditions": "all",
                                  "low_latency": False, "part_duration": 1 / 3}
    status, text = engine.api("static-hls-m3u", base_url="http://tv.example:8080")
    assert status == 200 and text.startswith('#EXTM3U url-tvg="http://tv.example:8080/epg.xml"')
    assert "http://tv.example:8080/hls_streams/idle/master.m3u8" in text
    assert engine.api_reply("static-hls-m3u")[1] == "audio/x-mpegurl"
    assert engine.api_reply("channels")[1] == "application/json"
    for endpoint in ("start-stream", "stop-stream", "stream-status"):
        assert engine.api(endpoint, "nope") == (404, {"detail": "Channel not found"})
    with pytest.raises(InvalidArgument, match="needs a channel"):
        engine.api("start-stream")
    with pytest.raises(InvalidArgument, match="unknown endpoint"):
        engine.api("reboot")


@pytest.mark.deadline(60)
def test_read_playlists_and_segments(live_engine):
    e = live_engine
    started = e.start("Test Channel")
    assert started["id"] == "test" and e.running("test")
    names = wait_for_segments(e, "test", 2)

    master = e.read("test", "master.m3u8")
    assert master.content_type == "application/vnd.apple.mpegurl" and not master.immutable
    assert bytes(master).startswith(b"#EXTM3U") and b"index.m3u8" in bytes(master)
    assert b"RESOLUTION=320x240" in bytes(master)

    seg = e.read("test", names[-1])
    assert seg.content_type == "video/mp2t" and seg.immutable
    view = memoryview(seg)
    assert view.readonly and view.format == "B" and view.ndim == 1 and view.nbytes == len(seg) > 0
    assert view.nbytes % 188 == 0 and view[0] == 0x47  # MPEG-TS packets
    with pytest.raises(TypeError):
        view[0] = 0
    assert bytes(seg) == view.tobytes() == seg.tobytes()
    assert "video/mp2t" in repr(seg)

    status = e.status("test")
    assert status["process_status"] == "running" and status["segment_count"] >= 2
    assert status["master_playlist_exists"] and status["video_codec"] == "h264"
    assert status["resolution"] == "320x240" and status["audio_codecs"] == ["aac"]

    # The view keeps the bytes alive after the channel stops and the engine closes.
    e.stop("test")
    assert not e.running("test") and e.read("test", names[-1]) is None
    assert e.status("test")["process_status"] == "stopped"
    e.close()
    del seg
    gc.collect()
    assert view[0] == 0x47 and view.nbytes % 188 == 0


def test_close_is_idempotent_and_final(media):
    e = Engine(segment_duration=1.0, log_level="error")
    e.add_channel("T", url=media, loop=True)
    e.start("t")
    e.close()
    e.close()
    assert e.closed and "closed" in repr(e)
    with pytest.raises(EngineError, match="closed"):
        e.status("t")
    with pytest.raises(EngineError, match="closed"):
        e.api("channels")
    with Engine() as e2:
        assert not e2.closed
    assert e2.closed


def test_engine_dropped_without_close_stops_its_channels(media):
    e = Engine(segment_duration=1.0, log_level="error")
    e.add_channel("T", url=media, loop=True)
    events = []
    e.subscribe(events.append)
    e.start("t")
    wait_for(lambda: any(ev["type"] == "segment" for ev in events), 20, what="a segment")
    ref = weakref.ref(e)
    del e
    gc.collect()
    assert ref() is None  # destroyed, worker joined, no deadlock
    assert events[-1] == {"type": "state", "channel": "t", "state": "stopped", "message": None,
                          "sequence": None, "duration": None, "part": None, "rendition": None}


def test_container_and_renditions_settings():
    with Engine(log_level="error") as e:
        assert e.settings["container"] == "ts" and e.settings["renditions"] == "all"
    with Engine(log_level="error", container="fmp4", renditions=["1080p", "360p"]) as e:
        assert e.settings["container"] == "fmp4" and e.settings["renditions"] == "1080p,360p"
        status, body = e.api("streams-status")
        assert body["hls_config"]["container"] == "fmp4" and body["hls_config"]["renditions"] == "1080p,360p"
    with pytest.raises(InvalidArgument, match="container 'mp4' is not ts or fmp4"):
        Engine(container="mp4")
    with pytest.raises(InvalidArgument, match="renditions must be"):
        Engine(renditions="best")


def test_channel_container_renditions_and_legacy_variant(engine):
    c = engine.add_channel("Ladder", url="http://x.invalid/a", container="fmp4", renditions=["720p", "480p"])
    assert c["container"] == "fmp4" and c["renditions"] == "720p,480p" and "variant" not in c
    with pytest.raises(InvalidArgument, match="renditions must be"):
        engine.add_channel("Bad", url="http://x.invalid/b", renditions="max-height=tall")
    with pytest.raises(InvalidArgument, match="container"):
        engine.add_channel("Bad", url="http://x.invalid/b", container="webm")
    with pytest.raises(TypeError, match="renditions"):
        engine.add_channel("Bad", url="http://x.invalid/b", renditions=720)
    # update: None resets to the engine's; a list is joined.
    c = engine.update_channel("ladder", container=None, renditions="max-bandwidth=3000000")
    assert "container" not in c and c["renditions"] == "max-bandwidth=3000000"
    # A legacy variant is kept as written; what runs is one variant (the engine's settings for it).
    c = engine.add_channel("Legacy", url="http://x.invalid/c", variant="lowest")
    assert c["variant"] == "lowest" and "renditions" not in c
    status, body = engine.api("start-stream", "legacy")
    assert status == 200 and body["config"]["renditions"] == "lowest"
    engine.stop("legacy")
    assert "variant" not in engine.update_channel("legacy", variant=None)
    report = engine.load('[{"name": "J", "url": "http://x.invalid/j", "container": "fmp4", "renditions": ["1080p"]}]')
    assert report["channels"] == ["j"] and report["issues"] == []
    assert engine.channel("j")["renditions"] == "1080p"


@pytest.mark.deadline(60)
def test_provider_connection_limit(media):
    """A provider's limit: the start past it raises Unavailable naming the holder; providers() shows it."""
    with pytest.raises(InvalidArgument, match="NAME=MAX"):
        Engine(providers=["acme"])
    with Engine(segment_duration=1.0, log_level="error", providers=["acme=1", "other=0@example.net"]) as e:
        e.add_channel("A", url=media, id="a", loop=True, provider="acme")
        e.add_channel("B", url=media, id="b", loop=True, provider="acme")
        assert e.status("a")["provider"] == "acme"
        e.start("a", on_demand=True)
        with pytest.raises(hlsrelay.Unavailable, match="provider acme: 1 of 1 connections in use by a"):
            e.start("b")
        acme = e.providers()[0]
        assert acme["name"] == "acme" and acme["holders"] == ["a"] and acme["on_demand"] == ["a"]
        assert acme["refused"] == 1 and acme["channels"] == 2
        assert e.providers()[1]["max_connections"] is None  # 0: no limit
        status, body = e.api("providers")
        assert status == 200 and body["providers"][0]["in_use"] == 1
        e.stop("a")
        e.start("b")
        assert e.running("b")


def test_channel_management_through_engine_api(media, tmp_path):
    """Engine.api takes the management endpoints by name with a body (str, bytes or dict)."""
    state = tmp_path / "state.json"
    with hlsrelay.Engine(log_level="error", state_file=str(state)) as e:
        status, body = e.api("channel-add", body={"id": "a", "name": "A", "url": media, "loop": True})
        assert status == 201 and body["id"] == "a"
        status, body = e.api("channel-add", body=b'{"name": "B", "url": "http://127.0.0.1:1/b.m3u8"}')
        assert status == 201 and body["id"] == "b"
        assert e.api("channel-add", body='{"name": "A", "id": "a", "url": "http://127.0.0.1:1/a"}')[0] == 409
        assert e.api("channel-add", body="[")[0] == 400
        assert e.api("channel-add")[0] == 400  # no body
        assert e.api("channel-add", body="{" + " " * (64 * 1024) + "}")[0] == 413
        with pytest.raises(TypeError):
            e.api("channel-add", body=3)
        status, body = e.api("channel-update", "a", body={"logo": "http://l/a.png"})
        assert status == 200 and body["logo"] == "http://l/a.png"
        status, body = e.api("channel-disable", "a")
        assert status == 200 and body["enabled"] is False
        assert e.api("start-stream", "a")[0] == 409
        assert e.status("a")["enabled"] is False
        assert e.api("channel-enable", "a")[1]["enabled"] is True
        assert e.api("channel-remove", "b") == (200, {"removed": "b"})
        assert e.api("channel-remove", "b")[0] == 404
        e.set_enabled("a", False)
    assert state.exists()
    with hlsrelay.Engine(log_level="error", state_file=str(state)) as e:
        assert [c["id"] for c in e.channels()] == ["a"]
        assert e.channel("a")["logo"] == "http://l/a.png" and e.channel("a")["enabled"] is False
    state.write_text("{not a state file")
    with pytest.raises(hlsrelay.InvalidArgument, match="corrupt"):
        hlsrelay.Engine(state_file=str(state))
