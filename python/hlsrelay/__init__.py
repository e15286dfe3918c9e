"""hlsrelay: restream live TV channels into low-latency HLS, in-process (FFmpeg's libav* via C++).

    from hlsrelay import Engine

    with Engine(segment_duration=1.0) as engine:
        engine.load_file("channels.m3u")
        engine.start("news")
        if engine.wait_ready("news", timeout=15):       # the first playlist is there
            playlist = engine.read("news", "index.m3u8")   # a Resource: memoryview(playlist), bytes(playlist)

A FastAPI layer reproducing the replaced HTTP API lives in :mod:`hlsrelay.fastapi`.
"""

from ._core import (
    CHANNEL_STATES,
    ChannelNotFound,
    Engine,
    EngineError,
    InvalidArgument,
    Unavailable,
    Resource,
    __version__,
)

__all__ = [
    "CHANNEL_STATES",
    "ChannelNotFound",
    "Engine",
    "EngineError",
    "InvalidArgument",
    "Unavailable",
    "Resource",
    "__version__",
]
