"""hlsrelay's HTTP API for FastAPI: the replaced ``channels.py`` routes plus HLS served from memory.

Every status code and JSON body comes from the engine's ``api()`` (the same C++ definitions the demo
server uses); this module only routes. Mount it into an existing FastAPI app in two lines::

    from hlsrelay.fastapi import create_router
    app.include_router(create_router(engine))

Or run the ready-made app, which builds its engine on startup from the channel list (M3U or JSON)
named by ``HLSRELAY_CHANNELS`` and closes it on shutdown::

    HLSRELAY_CHANNELS=channels.m3u uvicorn hlsrelay.fastapi:app --port 8000

Optional environment for that app: ``HLSRELAY_SEGMENT_DURATION``, ``HLSRELAY_MAX_SEGMENTS``,
``HLSRELAY_CLEANUP_INTERVAL``, ``HLSRELAY_CONTAINER`` (``ts`` or ``fmp4``), ``HLSRELAY_RENDITIONS``
(``all``, ``highest``, ``lowest``, ``max-height=720``, ``max-bandwidth=N``, ``1080p,360p``),
``HLSRELAY_LOW_LATENCY`` (``yes``: LL-HLS), ``HLSRELAY_PART_DURATION``, ``HLSRELAY_HLS_DIR``, ``HLSRELAY_PUSH_URL``,
``HLSRELAY_LOG_LEVEL``, ``HLSRELAY_GUIDE_URLS`` (XMLTV guides for ``/epg.xml``, comma-separated, besides the
list's url-tvg), ``HLSRELAY_CHANNEL_LISTS`` (channel lists by http(s) URL, comma-separated, e.g. a
provider's ``get.php?...&type=m3u_plus``: fetched in the background and refreshed every
``HLSRELAY_LIST_REFRESH`` seconds, 6 h by default; ``HLSRELAY_CHANNELS`` may be such a URL too),
``HLSRELAY_TUNER_NAME``, ``HLSRELAY_TUNER_COUNT``, ``HLSRELAY_DEVICE_ID``,
``HLSRELAY_TUNER_SEED`` (the HDHomeRun tuner, see docs/http-api.md), ``HLSRELAY_PROVIDERS``
(space-separated ``NAME=MAX[@HOST[,HOST...]]``, as the demo server's ``--provider``). Run one worker process:
the engine and its HLS windows live in that process, and a second worker would have its own.

The demo server's HTTP rules apply (the same C++ code, ``hlsrelay._core.check_request``):

- ``api_token`` (default ``$HLSRELAY_API_TOKEN``): start, stop and the channel list need
  ``Authorization: Bearer <token>`` or ``?token=<token>`` (else 401); status replies show
  ``"source": null`` and hide URLs in errors to requests without it.
- ``allowed_hosts`` (default ``$HLSRELAY_ALLOWED_HOSTS``, comma-separated): names accepted in the
  ``Host`` header besides IP addresses and ``localhost``; other names get 421 on every route but HLS
  (DNS rebinding). ``"*"`` accepts any Host.
- start and stop refuse browser cross-site requests (``Sec-Fetch-Site: cross-site``/``same-site``,
  or an ``Origin`` that is not the request's own Host) with 403; curl-like clients are unaffected.
- only HLS responses carry ``Access-Control-Allow-Origin: *`` (errors included, from memory or
  from disk), and ``OPTIONS`` on an HLS path answers a CORS preflight (204), as the demo server does.

Routes:

- GET ``/api/v1/channels/start-stream/{channel_name}``, ``/stop-stream/{channel_name}``,
  ``/stream-status/{channel_name}``, ``/streams-status``, ``/static-hls-m3u``, ``/api/v1/channels``
- POST ``/api/v1/channels/{channel_name}/start`` and ``/stop`` (as the demo server)
- channel management (control: token, no cross-site): POST ``/api/v1/channels`` (add), PATCH and
  DELETE ``/api/v1/channels/{channel_name}``, POST ``/api/v1/channels/{channel_name}/enable`` and
  ``/disable``; bodies are JSON, at most 64 KiB (413 beyond). With ``HLSRELAY_STATE`` (the engine's
  ``state_file``) the changes survive a restart.
- ``/hls_streams/{stream_id}/{name}`` (GET, HEAD, OPTIONS): ``master.m3u8``, ``index.m3u8``, ``seg_<n>.ts``
  and (low latency) ``part_<n>.ts``/``.m4s`` from memory, as the demo server serves them, and
  ``/hls_streams/{stream_id}/{rendition}/{name}`` a presentation's renditions' (``v0/index.m3u8``): playlists
  ``Cache-Control: no-cache``, segments and parts ``public, max-age=86400, immutable`` with single byte
  ranges; 404 ``{"detail": ...}`` with "Channel not found", "Stream not running" or "Not found".
  A low-latency channel's playlist answers ``_HLS_msn``/``_HLS_part``/``_HLS_skip`` as the demo server
  does (``Engine.hls_playlist``): a blocking request waits on the event loop, woken by the channel's
  part and segment events (no thread per waiting request), 400 and 503 as documented in
  docs/http-api.md.

Engine calls block (stop waits for a worker), so every API route is a plain ``def``: FastAPI runs it in
its threadpool, and the engine releases the GIL while it waits. The HLS route is ``async``: it hands
reads to the threadpool and holds blocking playlist requests on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import typing
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from ._core import (
    IMMUTABLE_CACHE_CONTROL,
    MAX_API_BODY_BYTES,
    ON_DEMAND_WAIT,
    PLAYLIST_CACHE_CONTROL,
    PROVIDER_RETRY_AFTER,
    Engine,
    InvalidArgument,
    Unavailable,
    blocking_timeout,
    check_request,
    endpoints,
)

__all__ = ["create_router", "create_app", "engine_from_env", "app"]

log = logging.getLogger("hlsrelay")

SEGMENT_CACHE_CONTROL = IMMUTABLE_CACHE_CONTROL
TS_FIRST_SEGMENT_WAIT = ON_DEMAND_WAIT  # seconds a continuous TS request waits for its channel's first segment
PLAYLIST_MEDIA_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_MEDIA_TYPE = "video/mp2t"

# HLS delivery is readable cross-origin (players may be served from elsewhere); the demo server's
# headers (server/src/http.cpp, request_handler.cpp): on every HLS response, and on a preflight.
HLS_METHODS = "GET, HEAD, OPTIONS"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
}
PREFLIGHT_HEADERS = {
    "Allow": HLS_METHODS,
    "Access-Control-Allow-Methods": HLS_METHODS,
    "Access-Control-Allow-Headers": "Range",
    "Access-Control-Max-Age": "86400",
}

EngineGetter = typing.Callable[[], Engine]


def _with_cors(response: Response) -> Response:
    response.headers.update(CORS_HEADERS)
    return response


def _preflight() -> Response:
    return _with_cors(Response(status_code=204, headers=PREFLIGHT_HEADERS))


class _ResourceResponse(Response):
    """A playlist, segment or part from the engine's memory as ``Engine.hls_file`` answers it (status,
    headers, the bytes of the range).

    With ``zero_copy`` the ASGI body is a memoryview over the engine's bytes instead of a copy;
    uvicorn (h11 and httptools) and Starlette's TestClient accept that, but the ASGI spec says
    ``bytes``, so middleware that concatenates bodies could choke on it: off by default.
    """

    def __init__(self, answer: typing.Dict[str, typing.Any], zero_copy: bool = False) -> None:
        # Resource exports the buffer protocol (typing.cast: older type checkers lack PEP 688).
        view = memoryview(typing.cast(bytes, answer["resource"]))
        body: typing.Any = view if zero_copy else view.tobytes()
        super().__init__(content=body, status_code=answer["status"], headers=dict(answer["headers"]))

    def render(self, content: typing.Any) -> typing.Any:
        if isinstance(content, memoryview):
            return content
        return super().render(content)


def _file_response(answer: typing.Dict[str, typing.Any], zero_copy: bool) -> Response:
    if answer["kind"] == "resource":
        return _ResourceResponse(answer, zero_copy)
    return JSONResponse(answer["body"], status_code=answer["status"], headers=dict(answer["headers"]))


class _Publications:
    """LL-HLS blocking playlist reloads wait here, on the event loop, for their channel's next part or
    segment: one engine subscription whose callback (an engine thread) wakes the waiters of that
    channel through the loop; no thread waits per request."""

    def __init__(self, engine: Engine, loop: "asyncio.AbstractEventLoop") -> None:
        self._loop = loop
        self._waiting: typing.Dict[str, typing.Set["asyncio.Event"]] = {}
        self._subscription = engine.subscribe(self._on_event)

    def _on_event(self, event: typing.Any) -> None:
        if event["type"] in ("part", "segment", "state") and event["channel"] in self._waiting:
            self._loop.call_soon_threadsafe(self._wake, event["channel"])

    def _wake(self, channel: str) -> None:
        for waiter in self._waiting.pop(channel, ()):
            waiter.set()

    def waiter(self, channel: str) -> "asyncio.Event":
        event = asyncio.Event()
        self._waiting.setdefault(channel, set()).add(event)
        return event

    def forget(self, channel: str, event: "asyncio.Event") -> None:
        waiting = self._waiting.get(channel)
        if waiting is not None:
            waiting.discard(event)
            if not waiting:
                del self._waiting[channel]

    async def until(
        self, channel: str, look: typing.Callable[[], typing.Tuple[bool, typing.Any]], deadline: typing.Optional[float]
    ) -> typing.Tuple[bool, typing.Any]:
        """Calls ``look()`` -> (done, value) now and after each of the channel's publications until it is
        done or the loop's clock passes ``deadline`` (None: no deadline); returns the last (done, value).
        Parked before each look, so a publication between the look and the wait is not missed."""
        while True:
            waiter = self.waiter(channel)
            try:
                done, value = look()
                remaining = 30.0 if deadline is None else deadline - self._loop.time()
                if done or remaining <= 0:
                    return done, value
                try:
                    await asyncio.wait_for(waiter.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            finally:
                self.forget(channel, waiter)


class _HlsStaticFiles(StaticFiles):
    """The engine's disk mirror ({hls_dir}/{id}/...) with HLS media types, cache and CORS headers."""

    async def get_response(self, path: str, scope: typing.Any) -> Response:
        if scope["method"] == "OPTIONS":
            return _preflight()
        try:
            response = await super().get_response(path, scope)
        except HTTPException as e:
            response = _detail(e.status_code, "Not found" if e.status_code == 404 else str(e.detail))
        return _with_cors(response)

    def file_response(
        self, full_path: typing.Any, stat_result: os.stat_result, scope: typing.Any, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        path = str(full_path)
        if path.endswith(".m3u8"):
            response.headers["content-type"] = PLAYLIST_MEDIA_TYPE
            response.headers["cache-control"] = PLAYLIST_CACHE_CONTROL
        elif path.endswith(".ts"):
            response.headers["content-type"] = SEGMENT_MEDIA_TYPE
            response.headers["cache-control"] = SEGMENT_CACHE_CONTROL
        return response


class _Policy(typing.NamedTuple):
    api_token: str
    allowed_hosts: typing.List[str]


def _env_hosts() -> typing.List[str]:
    return [h for h in os.environ.get("HLSRELAY_ALLOWED_HOSTS", "").replace(",", " ").split() if h]


def _policy(api_token: typing.Optional[str], allowed_hosts: typing.Optional[typing.Iterable[str]]) -> _Policy:
    if isinstance(allowed_hosts, str):
        raise TypeError("allowed_hosts wants a list of names, not a string")
    token = os.environ.get("HLSRELAY_API_TOKEN", "") if api_token is None else api_token
    hosts = _env_hosts() if allowed_hosts is None else list(allowed_hosts)
    return _Policy(token, hosts)


def _guard(policy: _Policy, request: Request, kind: str) -> typing.Tuple[typing.Optional[Response], typing.Any]:
    """The refusal to send (401, 403, 421) or None, and the verdict (hide_sources, cors)."""
    h = request.headers
    verdict = check_request(
        kind,  # type: ignore[arg-type]
        host=h.get("host"),
        origin=h.get("origin"),
        sec_fetch_site=h.get("sec-fetch-site"),
        authorization=h.get("authorization"),
        query_token=request.query_params.get("token"),
        api_token=policy.api_token,
        allowed_hosts=policy.allowed_hosts,
    )
    if verdict["status"] is not None:
        return JSONResponse(verdict["body"], status_code=verdict["status"], headers=verdict["headers"]), verdict
    return None, verdict


def _reply(
    engine: Engine,
    endpoint: str,
    channel: typing.Optional[str] = None,
    base_url: str = "",
    hide_sources: bool = False,
    request_body: typing.Optional[bytes] = None,
) -> Response:
    status, content_type, body = engine.api_reply(endpoint, channel, base_url, hide_sources=hide_sources, body=request_body)
    if content_type == "application/json":
        return JSONResponse(body, status_code=status)
    if isinstance(body, bytes):  # binary (the gzipped guide): no charset
        return Response(body, status_code=status, media_type=content_type)
    return Response(body, status_code=status, media_type=content_type + "; charset=utf-8")


def _detail(status: int, detail: str) -> Response:
    # The shape of hlsrelay::api::error, for the HLS route's own errors.
    return JSONResponse({"detail": detail}, status_code=status)


def _base_url(request: Request) -> str:
    # "http://host:port" (plus the root path when mounted below one), from the request's Host.
    return str(request.base_url).rstrip("/")


async def _read_body(request: Request) -> bytes:
    """The request body, at most MAX_API_BODY_BYTES + 1 bytes (the engine answers 413 beyond the cap)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_API_BODY_BYTES:
            break
    return bytes(body[: MAX_API_BODY_BYTES + 1])


def _endpoint_handler(
    api: typing.Callable[..., Response], ep: typing.Dict[str, typing.Any], policy: _Policy
) -> typing.Callable[..., typing.Any]:
    """The route function of one endpoint table row: a plain ``def`` (FastAPI runs it in its
    threadpool; engine calls release the GIL), with a ``channel_name`` path parameter when the path has
    one. Rows that take a request body (every method but GET) are ``async``: they read the body (after
    the access rules passed) and call the engine in the threadpool."""
    kind, name, needs_base_url = ep["access"], ep["name"], ep["needs_base_url"]
    if ep["method"] != "GET":

        async def with_body(request: Request) -> Response:
            channel = request.path_params.get("channel_name") if ep["needs_channel"] else None
            base_url = _base_url(request) if needs_base_url else ""
            refusal, _ = _guard(policy, request, kind)  # before the body is read; api() checks again
            if refusal is not None:
                return refusal
            body = await _read_body(request)
            return await run_in_threadpool(api, request, kind, name, channel, base_url, body=body)

        return with_body
    if ep["needs_channel"]:

        def with_channel(channel_name: str, request: Request) -> Response:
            return api(request, kind, name, channel_name, _base_url(request) if needs_base_url else "")

        return with_channel

    def without_channel(request: Request) -> Response:
        return api(request, kind, name, None, _base_url(request) if needs_base_url else "")

    return without_channel


def _build_router(
    get_engine: EngineGetter, policy: _Policy, *, serve_hls: bool = True, zero_copy: bool = False
) -> APIRouter:
    router = APIRouter()

    def api(
        request: Request,
        kind: str,
        endpoint: str,
        channel: typing.Optional[str] = None,
        base_url: str = "",
        *,
        body: typing.Optional[bytes] = None,
    ) -> Response:
        refusal, verdict = _guard(policy, request, kind)
        if refusal is not None:
            return refusal
        return _reply(get_engine(), endpoint, channel, base_url, verdict["hide_sources"], body)

    # One route per row of the engine's endpoint table (hlsrelay/endpoints.hpp), as the demo server
    # and the C ABI serve them.
    for ep in endpoints():
        router.add_api_route(ep["path"], _endpoint_handler(api, ep, policy), methods=[ep["method"]],
                             name=f"{ep['name']} ({ep['method']})")

    if serve_hls:

        publications: typing.Dict[int, _Publications] = {}  # by id(engine): one subscription each

        def hub_of(engine: Engine) -> _Publications:
            hub = publications.get(id(engine))
            if hub is None:
                hub = publications[id(engine)] = _Publications(engine, asyncio.get_running_loop())
            return hub

        @router.api_route("/hls_streams/{stream_id}/{rendition}/{name}", methods=["GET", "HEAD", "OPTIONS"])
        async def hls_rendition_file(stream_id: str, rendition: str, name: str, request: Request) -> Response:
            # A presentation's rendition ("v0/index.m3u8", "a1/seg_3.m4s"): Engine.read checks the
            # directory name (one level, v/a/s and a number) and answers 404 for anything else.
            return await hls_file(stream_id, f"{rendition}/{name}", request)

        @router.api_route("/hls_streams/{stream_id}/{name}", methods=["GET", "HEAD", "OPTIONS"])
        async def hls_file(stream_id: str, name: str, request: Request) -> Response:
            cors = _guard(policy, request, "media")[1]["cors"]
            if request.method == "OPTIONS":
                return _preflight() if cors else Response(status_code=204, headers={"Allow": HLS_METHODS})
            response = await _hls_file(stream_id, name, request)
            return _with_cors(response) if cors else response

        async def _hls_file(stream_id: str, name: str, request: Request) -> Response:
            """Engine.hls_file answers (as for the demo server): the file, an error, or `wait` for an
            LL-HLS blocking playlist request or a preload hint's part, held on the event loop until
            the channel publishes what it names (503 after three target durations)."""
            engine = get_engine()
            q = request.query_params
            args = {"head": request.method == "HEAD", "range": request.headers.get("range"),
                    "msn": q.get("_HLS_msn"), "part": q.get("_HLS_part"), "skip": q.get("_HLS_skip")}
            answer = await run_in_threadpool(lambda: engine.hls_file(stream_id, name, **args))
            if answer["kind"] == "wait":
                def look() -> typing.Tuple[bool, typing.Any]:
                    a = engine.hls_file(stream_id, name, **args)
                    return a["kind"] != "wait", a

                done, answer = await hub_of(engine).until(stream_id, look, asyncio.get_running_loop().time() + answer["wait_seconds"])
                if not done:
                    status, body, headers = blocking_timeout()
                    return JSONResponse(body, status_code=status, headers=dict(headers))
            return _file_response(answer, zero_copy)

        @router.api_route("/stream/{stream_file}", methods=["GET", "HEAD"])
        async def ts_stream(stream_file: str, request: Request) -> Response:
            if not stream_file.endswith(".ts") or len(stream_file) <= 3:
                return _with_cors(_detail(404, "Not found"))
            return await _ts_stream(stream_file[:-3], request)

        @router.api_route("/auto/{number}", methods=["GET", "HEAD"])
        async def tuner_auto(number: str, request: Request) -> Response:
            # HDHomeRun clients tune /auto/v<GuideNumber>.
            channel = get_engine().channel_for_guide_number(number[1:]) if number.startswith("v") else None
            if channel is None:
                return _with_cors(_detail(404, f"No channel has GuideNumber {number[1:]}"))
            return await _ts_stream(channel, request)

        async def _ts_stream(channel: str, request: Request) -> Response:
            """A channel's continuous MPEG-TS, as the demo server streams it (Engine.open_ts_stream): the
            channel starts on demand, the response begins with its newest whole segment (a keyframe)
            once there is one (503 after TS_FIRST_SEGMENT_WAIT seconds), then each segment as it is
            published; waits are on the event loop, woken by the channel's segment events."""
            engine = get_engine()
            refusal = engine.ts_stream_refusal(channel)
            if refusal is not None:
                return _with_cors(JSONResponse(refusal[1], status_code=refusal[0]))
            if not engine.running(channel):
                try:
                    await run_in_threadpool(functools.partial(engine.start, channel, on_demand=True))
                except Unavailable as e:  # the provider's connections are all in use
                    return _with_cors(JSONResponse({"detail": str(e)}, status_code=503,
                                                   headers={"Retry-After": str(PROVIDER_RETRY_AFTER)}))
            hub = hub_of(engine)
            ts = engine.open_ts_stream(channel)

            def look() -> typing.Tuple[bool, typing.Any]:
                chunk = ts.next()
                return chunk is not None or ts.ended, chunk

            _, first = await hub.until(channel, look, asyncio.get_running_loop().time() + TS_FIRST_SEGMENT_WAIT)
            if first is None:
                return _with_cors(JSONResponse(
                    {"detail": f"Stream '{channel}' did not produce a segment in time; retry shortly"},
                    status_code=503, headers={"Retry-After": "2"}))
            refusal = engine.ts_stream_refusal(channel)  # checked again once running (removed meanwhile)
            if refusal is not None:
                return _with_cors(JSONResponse(refusal[1], status_code=refusal[0]))
            headers = {"Cache-Control": "no-store"}
            if request.method == "HEAD":
                return _with_cors(Response(status_code=200, media_type=SEGMENT_MEDIA_TYPE, headers=headers))

            async def body() -> typing.AsyncIterator[bytes]:
                chunk = first
                while chunk is not None:
                    yield bytes(chunk)
                    _, chunk = await hub.until(channel, look, None)

            return _with_cors(StreamingResponse(body(), media_type=SEGMENT_MEDIA_TYPE, headers=headers))

    return router


def create_router(
    engine: Engine,
    *,
    serve_hls: bool = True,
    zero_copy: bool = False,
    api_token: typing.Optional[str] = None,
    allowed_hosts: typing.Optional[typing.Iterable[str]] = None,
) -> APIRouter:
    """The API routes over ``engine`` and, unless ``serve_hls=False``, the HLS route from memory.

    ``api_token`` (default ``$HLSRELAY_API_TOKEN``; ``""`` for none) and ``allowed_hosts`` (default
    ``$HLSRELAY_ALLOWED_HOSTS``) as described in the module's documentation.
    The caller owns ``engine``: close it when the app shuts down.
    """
    if not isinstance(engine, Engine):
        raise TypeError(f"create_router() needs an hlsrelay.Engine, not {type(engine).__name__}")
    return _build_router(lambda: engine, _policy(api_token, allowed_hosts), serve_hls=serve_hls, zero_copy=zero_copy)


def _env_number(name: str, kind: typing.Callable[[str], typing.Any]) -> typing.Any:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a valid {kind.__name__}") from None


def engine_from_env(channels_file: typing.Optional[typing.Union[str, "os.PathLike[str]"]] = None) -> Engine:
    """An Engine configured from HLSRELAY_* variables, with ``channels_file`` (default:
    ``$HLSRELAY_CHANNELS``) loaded and the lists of ``$HLSRELAY_CHANNEL_LISTS`` (http(s) URLs,
    comma-separated; an http(s) ``$HLSRELAY_CHANNELS`` joins them) fetched and refreshed in the
    background every ``$HLSRELAY_LIST_REFRESH`` seconds. Raises RuntimeError with a clear message when
    there is no list at all."""
    path: typing.Optional[str] = None
    given = channels_file if channels_file is not None else os.environ.get("HLSRELAY_CHANNELS")
    lists = [u for u in os.environ.get("HLSRELAY_CHANNEL_LISTS", "").replace(",", " ").split() if u]
    if given:
        given = os.fspath(given)
        if given.lower().startswith(("http://", "https://")):
            lists.insert(0, given)
        else:
            path = given
    if not path and not lists:
        raise RuntimeError(
            "HLSRELAY_CHANNELS is not set: point it at an M3U or JSON channel list (a file or an http(s) URL), "
            "e.g. HLSRELAY_CHANNELS=channels.m3u uvicorn hlsrelay.fastapi:app, or set HLSRELAY_CHANNEL_LISTS"
        )
    if path and (not os.path.isfile(path) or not os.access(path, os.R_OK)):
        raise RuntimeError(f"the channel list {path!r} (HLSRELAY_CHANNELS) does not exist or is not readable")
    settings: typing.Dict[str, typing.Any] = {}
    if lists:
        settings["channel_lists"] = lists
    refresh = _env_number("HLSRELAY_LIST_REFRESH", float)
    if refresh is not None:
        settings["list_refresh_interval"] = refresh
    for key, env, kind in (
        ("segment_duration", "HLSRELAY_SEGMENT_DURATION", float),
        ("max_segments", "HLSRELAY_MAX_SEGMENTS", int),
        ("cleanup_interval", "HLSRELAY_CLEANUP_INTERVAL", float),
        ("part_duration", "HLSRELAY_PART_DURATION", float),
    ):
        value = _env_number(env, kind)
        if value is not None:
            settings[key] = value
    for key, env in (("container", "HLSRELAY_CONTAINER"), ("renditions", "HLSRELAY_RENDITIONS")):
        if os.environ.get(env):
            settings[key] = os.environ[env]
    low_latency = os.environ.get("HLSRELAY_LOW_LATENCY", "").strip().lower()
    if low_latency:
        if low_latency not in ("1", "0", "yes", "no", "true", "false", "on", "off"):
            raise RuntimeError(f"HLSRELAY_LOW_LATENCY={low_latency!r}: expected yes or no")
        settings["low_latency"] = low_latency in ("1", "yes", "true", "on")
    if os.environ.get("HLSRELAY_HLS_DIR"):
        settings["hls_dir"] = os.environ["HLSRELAY_HLS_DIR"]
    if os.environ.get("HLSRELAY_PUSH_URL"):
        settings["push_url"] = os.environ["HLSRELAY_PUSH_URL"]
    if os.environ.get("HLSRELAY_STATE"):
        settings["state_file"] = os.environ["HLSRELAY_STATE"]
    if os.environ.get("HLSRELAY_LOG_LEVEL"):
        settings["log_level"] = os.environ["HLSRELAY_LOG_LEVEL"]
    guides = [u for u in os.environ.get("HLSRELAY_GUIDE_URLS", "").replace(",", " ").split() if u]
    if guides:
        settings["guide_urls"] = guides
    for key, env in (("tuner_name", "HLSRELAY_TUNER_NAME"), ("device_id", "HLSRELAY_DEVICE_ID"),
                     ("tuner_seed", "HLSRELAY_TUNER_SEED")):
        if os.environ.get(env):
            settings[key] = os.environ[env]
    providers = [p for p in os.environ.get("HLSRELAY_PROVIDERS", "").split() if p]
    if providers:
        settings["providers"] = providers
    tuners = _env_number("HLSRELAY_TUNER_COUNT", int)
    if tuners is not None:
        settings["tuner_count"] = tuners
    try:
        engine = Engine(**settings)
    except InvalidArgument as e:
        raise RuntimeError(f"invalid HLSRELAY_* setting: {e}") from e
    if lists:
        log.info("%d channel list(s) by URL, fetched in the background", len(lists))
    if not path:
        return engine
    try:
        report = engine.load_file(path)
    except Exception as e:
        engine.close()
        raise RuntimeError(f"cannot load the channel list {path!r}: {e}") from e
    for issue in report["issues"]:
        log.warning("%s:%s: %s", path, issue["line"], issue["message"])
    if not report["channels"]:
        log.warning("%s: no channel loaded", path)
    else:
        log.info("%s: %d channels loaded", path, len(report["channels"]))
    return engine


def create_app(
    engine: typing.Optional[Engine] = None,
    channels_file: typing.Optional[typing.Union[str, "os.PathLike[str]"]] = None,
    *,
    serve_from_disk: bool = False,
    zero_copy: bool = False,
    api_token: typing.Optional[str] = None,
    allowed_hosts: typing.Optional[typing.Iterable[str]] = None,
) -> FastAPI:
    """A FastAPI app with the routes of :func:`create_router`.

    With ``engine``, the app uses it and leaves closing it to the caller (``channels_file``, if
    given, is loaded into it now). Without, the app builds its own engine on startup from
    ``channels_file`` or ``$HLSRELAY_CHANNELS`` (see :func:`engine_from_env`) and closes it on
    shutdown. ``serve_from_disk=True`` serves ``/hls_streams`` from the engine's ``hls_dir`` with
    StaticFiles instead of from memory (needs an engine given here that has an ``hls_dir``).
    ``api_token`` and ``allowed_hosts``: see :func:`create_router`.
    """
    if engine is not None and not isinstance(engine, Engine):
        raise TypeError(f"create_app() needs an hlsrelay.Engine, not {type(engine).__name__}")
    if serve_from_disk:
        if engine is None:
            raise ValueError("serve_from_disk=True needs an engine created with hls_dir=...")
        if engine.hls_dir is None:
            raise ValueError("serve_from_disk=True but the engine has no hls_dir")

    policy = _policy(api_token, allowed_hosts)
    app = FastAPI(title="hlsrelay")
    state: typing.Dict[str, typing.Optional[Engine]] = {"engine": engine}

    if engine is not None and channels_file is not None:
        report = engine.load_file(channels_file)
        for issue in report["issues"]:
            log.warning("%s:%s: %s", os.fspath(channels_file), issue["line"], issue["message"])

    def get_engine() -> Engine:
        current = state["engine"]
        if current is None:
            raise RuntimeError("the hlsrelay engine is not running (the app's startup has not run)")
        return current

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> typing.AsyncIterator[None]:
        owned: typing.Optional[Engine] = None
        if state["engine"] is None:
            owned = await run_in_threadpool(engine_from_env, channels_file)
            state["engine"] = owned
        app.state.engine = state["engine"]
        try:
            yield
        finally:
            if owned is not None:
                state["engine"] = None
                await run_in_threadpool(owned.close)

    # FastAPI < 0.93 has no lifespan= argument; its router takes one all the same.
    app.router.lifespan_context = lifespan
    app.state.engine = engine

    app.include_router(_build_router(get_engine, policy, serve_hls=not serve_from_disk, zero_copy=zero_copy))
    if serve_from_disk:
        assert engine is not None and engine.hls_dir is not None
        os.makedirs(engine.hls_dir, exist_ok=True)
        app.mount("/hls_streams", _HlsStaticFiles(directory=engine.hls_dir, check_dir=False), name="hls_streams")
    return app


# For `uvicorn hlsrelay.fastapi:app`: the engine is built on startup from $HLSRELAY_CHANNELS.
app = create_app()
