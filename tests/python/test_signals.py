"""wait_ready, the new status fields, bytes delivered vs published, and the state names."""
import threading

import pytest

import hlsrelay
from hlsrelay import ChannelNotFound, Engine, InvalidArgument

# Longer than any test may run (the deadline fixture kills a test at 60 s): a wait that should end at
# once and does not fails the test.
FOREVER = 3600.0


def test_wait_ready_then_both_playlists_read_at_once(live_engine):
    assert live_engine.wait_ready("test", timeout=FOREVER) is False  # not started: at once
    live_engine.start("test")
    assert live_engine.wait_ready("Test Channel", timeout=30) is True
    master = live_engine.read("test", "master.m3u8")
    media = live_engine.read("test", "index.m3u8")
    assert master is not None and bytes(master).startswith(b"#EXTM3U")
    assert media is not None and b"#EXTINF:" in bytes(media)
    assert live_engine.wait_ready("test", 0) is True
    live_engine.stop("test")
    assert live_engine.wait_ready("test", FOREVER) is False


def test_wait_ready_errors(live_engine):
    with pytest.raises(ChannelNotFound):
        live_engine.wait_ready("nope", 1)
    with pytest.raises(InvalidArgument):
        live_engine.wait_ready("test", -1)
    with pytest.raises(InvalidArgument):
        live_engine.wait_ready("test", float("nan"))


def test_wait_ready_ends_when_the_channel_fails_or_stops(engine):
    engine.add_channel("Never", url="concat:/nonexistent/a.ts|/nonexistent/b.ts", id="never")
    engine.start("never")
    assert engine.wait_ready("never", FOREVER) is False
    assert engine.status("never")["state"] == "failed"

    # Refused connections: it keeps reconnecting, so only the timeout or a stop ends the wait.
    engine.add_channel("Refused", url="http://127.0.0.1:9/live/index.m3u8", id="refused")
    engine.start("refused")
    assert engine.wait_ready("refused", 0.3) is False
    result = {}
    waiter = threading.Thread(target=lambda: result.setdefault("ready", engine.wait_ready("refused", FOREVER)))
    waiter.start()
    engine.stop("refused")
    waiter.join(timeout=30)
    assert not waiter.is_alive() and result["ready"] is False


def test_wait_ready_releases_the_gil(live_engine):
    # Another Python thread runs while the main thread waits.
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.01)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        live_engine.start("test")
        assert live_engine.wait_ready("test", 30)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 1


def test_wait_ready_refused_inside_a_callback(live_engine):
    seen = []

    def callback(event):
        if not seen:
            try:
                live_engine.wait_ready("test", 0)
                seen.append("allowed")
            except InvalidArgument as e:
                seen.append(str(e))

    live_engine.subscribe(callback)
    live_engine.start("test")
    assert live_engine.wait_ready("test", 30)
    assert seen and "event callback" in seen[0]


def test_status_fields_and_bytes(live_engine):
    live_engine.start("test")
    assert live_engine.wait_ready("test", 30)
    s = live_engine.status("test")
    for key in ("reconnects", "reconnect_attempts", "last_error_age_seconds", "previous_error",
                "previous_error_at", "bytes_out", "bytes_published"):
        assert key in s, key
    assert s["reconnect_attempts"] == 0 and s["previous_error"] is None and s["last_error_age_seconds"] is None
    assert s["bytes_out"] == 0 and s["bytes_published"] > 0
    media = live_engine.read("test", "index.m3u8")
    assert live_engine.status("test")["bytes_out"] == len(media)
    live_engine.read("test", "index.m3u8", headers_only=True)  # a HEAD: nothing delivered
    assert live_engine.status("test")["bytes_out"] == len(media)


def test_channel_states():
    assert hlsrelay.CHANNEL_STATES == ("idle", "starting", "running", "reconnecting", "stopped", "failed", "stalled")
    with Engine(log_level="off") as e:
        e.add_channel("x", url="http://127.0.0.1:9/x.m3u8")
        assert e.status("x")["state"] in hlsrelay.CHANNEL_STATES
