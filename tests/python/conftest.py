# Shared fixtures for the Python suite: where hlsrelay comes from, test media, engines, time guards.
import faulthandler
import os
import shutil
import subprocess
import sys
import time

import pytest

# ctest points HLSRELAY_PYTHONPATH at the build tree's package dir; otherwise hlsrelay must already be
# importable (installed in a venv, or on PYTHONPATH).
_extra = os.environ.get("HLSRELAY_PYTHONPATH")
if _extra:
    for _p in reversed(_extra.split(os.pathsep)):
        if _p and _p not in sys.path:
            sys.path.insert(0, _p)

try:
    import hlsrelay  # noqa: E402
except ImportError as e:  # pragma: no cover - a setup problem, not a test failure
    raise pytest.UsageError(
        f"cannot import hlsrelay ({e}); build the _core target and set HLSRELAY_PYTHONPATH to the dir "
        "holding hlsrelay/, or install the package (pip install --no-build-isolation .)"
    )

DEFAULT_DEADLINE = 60.0


def pytest_configure(config):
    config.addinivalue_line("markers", "deadline(seconds): hard time limit for one test (default 60 s)")


@pytest.fixture(scope="session")
def _real_stderr(request):
    """The terminal's stderr, not pytest's capture file: what a hung run dumps must be seen."""
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        fd = os.dup(2)
    else:
        with capman.global_and_fixture_disabled():
            fd = os.dup(2)
    with os.fdopen(fd, "w") as f:
        yield f


@pytest.fixture(autouse=True)
def deadline(request, _real_stderr):
    """A hang must not stall the suite: past the limit, dump every thread's stack and exit. This is
    faulthandler's C watchdog thread, so it fires even when a deadlock holds the GIL."""
    marker = request.node.get_closest_marker("deadline")
    seconds = marker.args[0] if marker else DEFAULT_DEADLINE
    faulthandler.dump_traceback_later(seconds, exit=True, file=_real_stderr)
    yield
    faulthandler.cancel_dump_traceback_later()


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns something truthy; returns that or fails after timeout."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def package_root():
    """The directory holding the hlsrelay package (for subprocesses' PYTHONPATH)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(hlsrelay.__file__)))


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """A 6 s MPEG-TS file (testsrc2 320x240@25 + sine, H.264 keyframe every second, AAC)."""
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        pytest.skip("ffmpeg is not installed")
    path = tmp_path_factory.mktemp("media") / "source.ts"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-f", "mpegts", str(path)],
        check=True, timeout=60,
    )
    return str(path)


@pytest.fixture
def engine():
    e = hlsrelay.Engine(segment_duration=1.0, max_segments=5, log_level="error")
    yield e
    e.close()


@pytest.fixture
def live_engine(engine, media):
    """An engine with channel "Test Channel" (id "test") looping the test media, not started."""
    engine.add_channel("Test Channel", url=media, id="test", loop=True)
    return engine


def wait_for_segments(engine, channel, count, timeout=20.0):
    """Waits until the channel's media playlist lists `count` segments; returns their names."""

    def listed():
        res = engine.read(channel, "index.m3u8")
        if res is None:
            return None
        names = [line for line in bytes(res).decode().splitlines() if line.endswith(".ts")]
        return names if len(names) >= count else None

    return wait_for(listed, timeout, what=f"{count} segments of {channel}")
