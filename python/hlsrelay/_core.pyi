# Type stubs for hlsrelay._core, the compiled engine binding (python/src/module.cpp).
from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union

__version__: str

# A channel's state (status "state" and "process_status", event "state"), in the engine's order.
ChannelState = Literal["idle", "starting", "running", "reconnecting", "stopped", "failed", "stalled"]
CHANNEL_STATES: Tuple[ChannelState, ...]

class EngineError(Exception):
    """Base class of the engine's errors (also raised for I/O errors and a closed engine)."""

class ChannelNotFound(EngineError):
    """No channel has that stream id or name."""

class InvalidArgument(EngineError):
    """A setting, channel or argument the engine refuses."""

class Unavailable(EngineError):
    """Not now: a provider's connections are all in use (HTTP 503)."""

class LoadIssue(TypedDict):
    line: int  # 1-based; for JSON the entry number; 0 when no line applies
    message: str

class LoadResult(TypedDict):
    channels: List[str]  # stream ids of the channels added, in file order
    issues: List[LoadIssue]

class Event(TypedDict):
    type: Literal["state", "segment", "error", "part"]
    channel: str  # stream id
    state: Optional[ChannelState]  # "state" (and "segment": running)
    message: Optional[str]  # "error": what went wrong, credentials redacted
    sequence: Optional[int]  # "segment": its media sequence number; "part": its segment's
    duration: Optional[float]  # "segment", "part": its duration in seconds
    part: Optional[int]  # "part" (low latency): its index in segment `sequence`
    rendition: Optional[str]  # "part" in a presentation: "v1", "a0" (that rendition's playlist); None: the top level

class EngineSettings(TypedDict):
    segment_duration: float
    max_segments: int
    cleanup_interval: float
    container: Container
    renditions: str
    low_latency: bool
    part_duration: float
    hls_dir: Optional[str]
    read_timeout: float
    reconnect_min: float
    reconnect_max: float
    log_level: str
    stall_timeout: float
    live_start_segments: int
    max_playlist_bytes: int
    max_segment_bytes: int
    max_redirects: int
    playlist_deadline: float
    segment_deadline: float
    channel_lists: List[str]  # redacted
    list_refresh_interval: float
    max_list_bytes: int
    push_url: Optional[str]  # redacted

# A channel as JSON: id, name, urls, optional logo, group and headers, loop, optional realtime,
# optional variant (legacy: without renditions it keeps that one variant), optional segment_duration,
# max_segments, cleanup_interval, container ("ts" | "fmp4"), renditions, and the fetch limits
# max_playlist_bytes, max_segment_bytes, max_redirects, playlist_deadline, segment_deadline (each
# present only when the channel overrides the engine's). Without include_sources the
# URLs are redacted and header values are None.
ChannelDict = Dict[str, Any]
# A channel's status: the replaced API's fields (channel_name, stream_id, process_status,
# cleanup_running, segment_count, max_segments, master_playlist_exists, hls_url,
# estimated_buffer_seconds) then the engine's (state, last_error, last_error_age_seconds,
# previous_error, reconnects, reconnect_attempts, bytes_out, bytes_published, bitrates, codecs, ...):
# docs/http-api.md describes each.
StatusDict = Dict[str, Any]
# A JSON reply of the replaced API, or the M3U text of static-hls-m3u.
ApiBody = Union[Dict[str, Any], str]
# Endpoints: "start-stream", "stop-stream", "stream-status" (these three need a channel),
# "streams-status", "static-hls-m3u", "channels" (or "list-channels"); "_" may stand for "-".
ApiEndpoint = str
StrPath = Union[str, "os.PathLike[str]"]
Variant = Union[Literal["highest", "lowest"], str, int]
Container = Literal["ts", "fmp4"]
# "all", "highest", "lowest", "max-height=<px>", "max-bandwidth=<bits/s>", "1080p,360p" or ["1080p", "360p"].
Renditions = Union[str, Sequence[str]]

class Resource:
    """A playlist or segment, sharing the engine's bytes.

    ``memoryview(res)`` is a read-only view that copies nothing; ``bytes(res)`` copies once.
    """

    @property
    def content_type(self) -> str: ...  # "application/vnd.apple.mpegurl" or "video/mp2t"
    @property
    def immutable(self) -> bool: ...  # segments never change; playlists do
    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...
    def __buffer__(self, flags: int) -> memoryview: ...
    def tobytes(self) -> bytes: ...

class Engine:
    """Restreams channels into rolling in-memory HLS windows on its own threads.

    Every method releases the GIL while the engine works. Event callbacks run on engine threads and
    must not call stop(), stop_all(), remove_channel(), update_channel() or close() (they raise
    InvalidArgument there). close() (or ``with Engine() as e:``) stops everything.
    """

    def __init__(
        self,
        segment_duration: float = 2.0,
        max_segments: int = 5,
        cleanup_interval: float = 5.0,
        hls_dir: Optional[StrPath] = None,
        read_timeout: float = 10.0,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        log_level: Literal["debug", "info", "warn", "warning", "error", "off"] = "warn",
        *,
        stall_timeout: float = 0.0,
        live_start_segments: int = 3,
        # Caps and deadlines of every upstream fetch (docs/security.md); deadlines 0: automatic.
        max_playlist_bytes: int = 4194304,
        max_segment_bytes: int = 67108864,
        max_redirects: int = 5,
        playlist_deadline: float = 0.0,
        segment_deadline: float = 0.0,
        # Output packaging and which renditions of a multivariant source run (channels may override).
        container: Container = "ts",
        renditions: Renditions = "all",
        low_latency: bool = False,
        part_duration: float = 1 / 3,
        # XMLTV guides for guide() / GET /epg.xml (besides each loaded list's url-tvg).
        guide_urls: Sequence[str] = (),
        guide_refresh_interval: float = 43200.0,
        # The HDHomeRun tuner (discover.json).
        tuner_name: str = "hlsrelay",
        tuner_count: int = 0,
        device_id: str = "",
        tuner_seed: str = "",
        providers: list[str] = ...,  # "NAME=MAX[@HOST[,HOST...]]", as hlsrelay-server --provider
        # Channel lists by http(s) URL, fetched in the background and reconciled on each good fetch
        # (api("lists"), api("lists-refresh")).
        channel_lists: Sequence[str] = (),
        list_refresh_interval: float = 21600.0,
        max_list_bytes: int = 67108864,
        # Runtime channel changes (add/update/remove/enable/disable) kept across restarts.
        state_file: Optional[StrPath] = None,
        # PUT segments and playlists to {push_url}/{id}/ (an http(s) origin with WebDAV PUT/DELETE).
        push_url: Optional[str] = None,
    ) -> None: ...

    # Registry.
    def load(self, text: Union[str, bytes]) -> LoadResult: ...
    def load_file(self, path: StrPath) -> LoadResult: ...
    def add_channel(
        self,
        name: str,
        urls: Optional[Sequence[str]] = None,
        *,
        url: Optional[str] = None,
        id: Optional[str] = None,
        logo: str = "",
        group: str = "",
        headers: Optional[Mapping[str, str]] = None,
        loop: bool = False,
        realtime: Optional[bool] = None,
        variant: Optional[Variant] = None,
        segment_duration: Optional[float] = None,
        max_segments: Optional[int] = None,
        cleanup_interval: Optional[float] = None,
        container: Optional[Container] = None,
        renditions: Optional[Renditions] = None,
        low_latency: Optional[bool] = None,
        part_duration: Optional[float] = None,
        max_playlist_bytes: Optional[int] = None,
        max_segment_bytes: Optional[int] = None,
        max_redirects: Optional[int] = None,
        playlist_deadline: Optional[float] = None,
        segment_deadline: Optional[float] = None,
        tvg_id: str = "",
        tvg_name: str = "",
        chno: str = "",
        tvg_shift: float = 0,
        attributes: Optional[Mapping[str, str]] = None,
        provider: str = "",  # the provider (Engine(providers=...)) whose connections it uses
        enabled: bool = True,
    ) -> ChannelDict: ...
    def update_channel(
        self,
        channel: str,
        *,
        name: str = ...,
        urls: Sequence[str] = ...,
        url: str = ...,
        id: str = ...,
        logo: str = ...,
        group: str = ...,
        headers: Optional[Mapping[str, str]] = ...,
        loop: bool = ...,
        realtime: Optional[bool] = ...,
        variant: Optional[Variant] = ...,
        segment_duration: Optional[float] = ...,
        max_segments: Optional[int] = ...,
        cleanup_interval: Optional[float] = ...,
        container: Optional[Container] = ...,
        renditions: Optional[Renditions] = ...,
        low_latency: Optional[bool] = ...,
        part_duration: Optional[float] = ...,
        max_playlist_bytes: Optional[int] = ...,
        max_segment_bytes: Optional[int] = ...,
        max_redirects: Optional[int] = ...,
        playlist_deadline: Optional[float] = ...,
        segment_deadline: Optional[float] = ...,
        enabled: bool = ...,
    ) -> ChannelDict:
        """Changes only the fields given (None resets an optional one); restarts it if running."""
    def remove_channel(self, channel: str) -> None: ...
    def set_enabled(self, channel: str, enabled: bool) -> ChannelDict:
        """Enables or disables a channel; disabling stops it, and a disabled channel cannot start."""
    def channels(self, *, include_sources: bool = False) -> List[ChannelDict]: ...
    def channel(self, channel: str, *, include_sources: bool = False) -> ChannelDict: ...

    # Control.
    def start(self, channel: str, *, on_demand: bool = False) -> ChannelDict: ...
    def providers(self) -> list[dict[str, Any]]: ...
    def stop(self, channel: str) -> None: ...
    def stop_all(self) -> None: ...
    def running(self, channel: str) -> bool: ...

    # Status and reads.
    def status(self, channel: str) -> StatusDict: ...
    def statuses(self) -> List[StatusDict]: ...
    def read(self, channel: str, name: str, *, headers_only: bool = False) -> Optional[Resource]: ...
    # True once master.m3u8 and index.m3u8 can be read; False on timeout, or at once when stopped/failed.
    def wait_ready(self, channel: str, timeout: float) -> bool: ...
    def hls_playlist(
        self, channel: str, name: str, msn: Optional[str] = None, part: Optional[str] = None, skip: Optional[str] = None
    ) -> Dict[str, Any]: ...
    # The tuner (include/hlsrelay/ts_stream.hpp, tuner.hpp).
    def ts_stream_refusal(self, channel: str) -> Optional[Tuple[int, Dict[str, Any]]]: ...
    def channel_for_guide_number(self, number: str) -> Optional[str]: ...
    def open_ts_stream(self, channel: str) -> TsStream: ...
    # An HLS file request as every transport answers it (include/hlsrelay/api.hpp hls_file).
    def hls_file(
        self,
        channel: str,
        name: str,
        *,
        head: bool = False,
        range: Optional[str] = None,
        msn: Optional[str] = None,
        part: Optional[str] = None,
        skip: Optional[str] = None,
    ) -> HlsFileAnswer: ...
    def wait_playlist(
        self, channel: str, msn: int, part: int = -1, timeout: float = 10.0, playlist: str = "index.m3u8"
    ) -> bool: ...

    # The replaced HTTP API: one definition shared with the C++ demo server.
    # hide_sources: status replies show "source": None and "<url hidden>" for URLs in errors.
    def api(
        self,
        endpoint: ApiEndpoint,
        channel: Optional[str] = None,
        base_url: str = "",
        *,
        hide_sources: bool = False,
        body: Union[str, bytes, Mapping[str, Any], None] = None,
    ) -> Tuple[int, ApiBody]: ...
    def api_reply(
        self,
        endpoint: ApiEndpoint,
        channel: Optional[str] = None,
        base_url: str = "",
        *,
        hide_sources: bool = False,
        body: Union[str, bytes, Mapping[str, Any], None] = None,
    ) -> Tuple[int, str, ApiBody]: ...

    # Events.
    def subscribe(self, callback: Callable[[Event], object]) -> int: ...
    def unsubscribe(self, id: int) -> None: ...

    # Lifetime.
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def hls_dir(self) -> Optional[str]: ...
    @property
    def settings(self) -> EngineSettings: ...
    def __enter__(self) -> Engine: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Literal[False]: ...

# The HTTP rules shared with the demo server (include/hlsrelay/api.hpp).
class RequestVerdict(TypedDict):
    status: Optional[int]  # the refusal's status (401, 403, 421), None to serve the request
    body: Optional[Dict[str, Any]]  # the refusal's JSON body: {"detail": ...}
    headers: Dict[str, str]  # the refusal's extra headers (WWW-Authenticate)
    authenticated: bool  # no token is set, or the request carries it
    hide_sources: bool  # status replies must be made with hide_sources=True
    cors: bool  # send Access-Control-Allow-Origin: * (media only)

EndpointKind = Literal["media", "health", "status", "registry", "control"]

# A row of the HTTP API's endpoint table (include/hlsrelay/endpoints.hpp).
class EndpointRow(TypedDict):
    name: str  # what Engine.api() takes
    method: Literal["GET", "POST"]
    path: str  # "{channel_name}" captures
    access: EndpointKind
    changes_state: bool
    needs_base_url: bool
    needs_channel: bool

class HlsFileAnswer(TypedDict):
    kind: Literal["resource", "reply", "wait"]
    status: int  # 200 or 206 for a resource, the error's for a reply, 0 for wait
    headers: List[Tuple[str, str]]
    resource: Optional[Resource]  # the bytes to send (the range's)
    body: Optional[Dict[str, Any]]  # the error reply's JSON
    wait_seconds: float  # wait: answer blocking_timeout() this long after the request

class TsStream:
    """A channel's continuous MPEG-TS (Engine.open_ts_stream)."""
    def next(self) -> Optional[Resource]: ...
    def wait_next(self, timeout: float) -> Optional[Resource]: ...
    @property
    def ended(self) -> bool: ...
    @property
    def channel(self) -> str: ...
    @property
    def sent(self) -> int: ...
    @property
    def skipped(self) -> int: ...

IMMUTABLE_CACHE_CONTROL: str
PLAYLIST_CACHE_CONTROL: str
PROVIDER_RETRY_AFTER: int  # seconds: Retry-After of a start refused for a provider's connections
MAX_API_BODY_BYTES: int  # request bodies of channel-add and channel-update; more is 413
ON_DEMAND_WAIT: float  # seconds a viewer's first request waits for the first segment of a channel it starts

def endpoints() -> List[EndpointRow]: ...
def blocking_timeout() -> Tuple[int, Dict[str, Any], List[Tuple[str, str]]]: ...

def redact_url(url: str) -> str: ...
def scrub_urls(text: str, hide: bool = False) -> str: ...
def check_request(
    endpoint: EndpointKind,
    *,
    host: Optional[str] = None,
    origin: Optional[str] = None,
    sec_fetch_site: Optional[str] = None,
    authorization: Optional[str] = None,
    query_token: Optional[str] = None,
    api_token: str = "",
    allowed_hosts: Sequence[str] = (),
) -> RequestVerdict: ...
