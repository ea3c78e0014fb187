"""What every handler shares: the request's context, errors mapped to statuses, the
path check, the caller, and serving one object with HTTP's rules (`http.py`) from a
verified stream (`stream.py`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from argosy.argo.kube import KubeUnavailable
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    NotFound,
    TransientError,
)
from argosy.artifacts.protocol import Driver, ObjectInfo
from argosy.server import http
from argosy.server.auth import Caller, Forbidden, Unauthenticated, authenticate, bearer
from argosy.server.context import CAUSE, CONTEXT, Context, blocking
from argosy.server.resolve import Offloaded, Resolved
from argosy.server.settings import WRITE
from argosy.server.stream import (
    checksum_header,
    covered,
    pump,
    read_whole,
    record_of,
    span_source,
)

log = logging.getLogger("argosy.server")
NO_ARCHIVE = "no workflow archive is configured: Argosy serves live workflows only\n"


class BadPath(InvalidSpec):
    """A URL path that could reach outside the artifact: 400."""


def _status(error: BaseException) -> int:
    if isinstance(error, Unauthenticated):
        return 401
    if isinstance(error, BadPath):
        return 400
    if isinstance(error, Offloaded):
        return 501
    if isinstance(error, (Forbidden, AccessDenied)):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, (KubeUnavailable, TransientError)):
        return 503
    if isinstance(error, IntegrityError):
        return 502
    return 500


def cause(error: BaseException) -> str:
    return {
        401: "unauthenticated",
        400: "bad_path",
        403: "forbidden",
        404: "not_found",
        503: "unavailable",
        502: "integrity",
        501: "offloaded",
    }.get(_status(error), "failed")


@web.middleware
async def errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except StreamEnded as ended:
        return ended.response
    except ArtifactError as error:
        status = _status(error)
        request[CAUSE] = cause(error)
        if status >= 500:
            log.warning("%s %s: %s", request.method, request.path, error)
        headers = {"WWW-Authenticate": 'Bearer realm="argosy"'} if status == 401 else None
        return web.Response(status=status, text=f"{str(error).splitlines()[0]}\n", headers=headers)


def safe_segments(request: web.Request, tail: str) -> list[str]:
    """The path under an artifact, as segments: `..`, encoded slashes and backslashes,
    NUL and control characters are refused (400) before anything is read."""
    raw = request.raw_path.split("?", 1)[0].lower()
    if any(bad in raw for bad in ("%2f", "%5c", "%00", "\\")):
        raise BadPath("encoded slashes, backslashes and NUL are not allowed in a path")
    parts = []
    for segment in tail.split("/"):
        if segment in ("", "."):
            continue
        if segment == ".." or any(ord(c) < 32 or c == "\x7f" for c in segment):
            raise BadPath(f"path segment {segment!r} is not allowed")
        parts.append(segment)
    return parts


async def caller_of(request: web.Request, namespace: str) -> Caller:
    ctx = request.app[CONTEXT]
    if ctx.settings.namespaces and namespace not in ctx.settings.namespaces:
        raise NotFound(f"namespace {namespace} is not served here")
    token = bearer(request.headers.get("Authorization"), request.cookies.get("authorization"))
    return await blocking(authenticate, ctx.kube, ctx.settings.auth, token, namespace)  # type: ignore[no-any-return]


async def _resolved(
    request: web.Request, namespace: str, workflow: str, node: str, name: str, *, inputs: bool
) -> Resolved:
    ctx = request.app[CONTEXT]
    caller = await caller_of(request, namespace)
    return await blocking(  # type: ignore[no-any-return]
        ctx.resolver.resolve, caller, namespace, workflow, node, name, inputs=inputs
    )


async def _stat(driver: Driver, key: str) -> ObjectInfo | None:
    try:
        return await blocking(driver.stat, key)  # type: ignore[no-any-return]
    except NotFound:
        return None


# -- serving one object -----------------------------------------------------------------


def object_headers(
    ctx: Context, info: ObjectInfo, name: str, request: web.Request, *, etag: str | None = None
) -> tuple[http.ObjectMeta, dict[str, str]]:
    meta = http.ObjectMeta(info.size, http.quoted(etag or info.etag), info.modified)
    headers = {
        **http.security_headers(ctx.settings.content_security_policy, ctx.settings.x_frame_options),
        "ETag": meta.etag,
        "Last-Modified": meta.last_modified,
        "Accept-Ranges": "bytes",
        "Content-Type": http.content_type(name),
        "Content-Disposition": http.disposition(name, request.query.get("mode")),
    }
    checksum = checksum_header(record_of(info))
    if checksum:
        headers["X-Argosy-Checksum"] = checksum
    return meta, headers


async def abort(request: web.Request) -> None:
    """After the headers: nothing left to say but a broken connection."""
    transport = request.transport
    if transport is not None:
        transport.abort()


async def serve_object(
    request: web.Request, driver: Driver, info: ObjectInfo, name: str
) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    meta, headers = object_headers(ctx, info, name, request)
    if http.not_modified(request.headers, meta):
        return web.Response(status=304, headers=http.not_modified_headers(headers))
    ranges = None
    if http.range_applies(request.headers, meta):
        try:
            ranges = http.parse_ranges(request.headers.get("Range"), info.size)
        except http.Unsatisfiable:
            return web.Response(status=416, headers=http.unsatisfiable_headers(headers, info.size))
    record = record_of(info)
    head = request.method == "HEAD"
    if ranges is None:
        headers["X-Argosy-Verified"] = "full" if record is not None else "none"
        response = web.StreamResponse(status=200, headers=headers)
        response.content_length = info.size
        await response.prepare(request)
        if not head and info.size:
            with ctx.budget.lease(ctx.settings.read_ahead + 1) as window:
                source = read_whole(driver, info, window=window, settings=ctx.transfer)
                await _send(request, response, source, size=info.size)
        await response.write_eof()
        return response
    verified = all(covered(record, s, e, info.size) for s, e in ranges)
    headers["X-Argosy-Verified"] = "full" if verified else "partial"
    if len(ranges) == 1:
        start, end = ranges[0]
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        response = web.StreamResponse(status=206, headers=headers)
        response.content_length = end - start + 1
        await response.prepare(request)
        if not head:
            with ctx.budget.lease(1):
                source = span_source(driver, info, start, end)
                await _send(request, response, source, size=end - start + 1)
        await response.write_eof()
        return response
    boundary = "argosy" + info.etag.strip('"')[:16] + "x" + str(info.size)
    kind = headers["Content-Type"]
    heads = [
        (
            f"\r\n--{boundary}\r\nContent-Type: {kind}\r\n"
            f"Content-Range: bytes {s}-{e}/{info.size}\r\n\r\n"
        ).encode()
        for s, e in ranges
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    headers["Content-Type"] = f"multipart/byteranges; boundary={boundary}"
    response = web.StreamResponse(status=206, headers=headers)
    response.content_length = (
        sum(len(h) for h in heads) + sum(e - s + 1 for s, e in ranges) + len(tail)
    )
    await response.prepare(request)
    if not head:
        with ctx.budget.lease(1):
            for (start, end), part_head in zip(ranges, heads, strict=True):
                await response.write(part_head)
                source = span_source(driver, info, start, end)
                await _send(request, response, source, size=end - start + 1)
            await response.write(tail)
    await response.write_eof()
    return response


class StreamEnded(Exception):
    """A stream that ended after its headers (its client left, or it was aborted): the
    handler stops, and the response already begun is what the request answered."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("the stream ended early")
        self.response = response


def _client_alive(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


class Out:
    """Writes to a response that return only once the transport holds nothing of what
    they were given, so the caller may reuse its buffer. While the body streams, the
    transport's write buffer limits are as low as they go (its protocol pauses while
    anything is buffered: above 0 bytes for a plain transport, from 1 byte for a TLS one,
    whose check is `>=`), so aiohttp's drain after each write of more than 64 KiB waits
    until all of it is sent; a piece of 64 KiB or less, which does not drain, is sent as a
    copy, and a buffer still not empty after a write is waited for."""

    SMALL = 64 << 10  # aiohttp's drain limit: a larger write always drains

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.request, self.response = request, response
        self._limits: tuple[int, int] | None = None

    def __enter__(self) -> Out:
        transport = self.request.transport
        if transport is not None:
            low, high = transport.get_write_buffer_limits()
            self._limits = (high, low)
            tls = transport.get_extra_info("ssl_object") is not None
            transport.set_write_buffer_limits(high=1 if tls else 0, low=0)
        return self

    def __exit__(self, *exc: object) -> None:
        transport = self.request.transport
        if transport is not None and self._limits is not None and not transport.is_closing():
            high, low = self._limits
            transport.set_write_buffer_limits(high=high, low=low)

    async def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        length = len(view)
        if length <= self.SMALL:
            await self.response.write(data if type(data) is bytes else bytes(view))
            return
        # pieces of about WRITE, none of them SMALL or less
        count = max(1, length // WRITE)
        step = -(-length // count)
        for at in range(0, length, step):
            await self.response.write(view[at : at + step])
            await self._empty()

    async def _empty(self) -> None:
        """Until the transport's write buffer is empty (it is, unless a pause threshold
        let a byte through); a closing transport is a client gone."""
        transport = self.request.transport
        while transport is None or transport.get_write_buffer_size():
            if transport is None or transport.is_closing():
                raise ConnectionResetError("the client left")
            await asyncio.sleep(0.001)


async def _send(
    request: web.Request, response: web.StreamResponse, source: Any, *, size: int | None = None
) -> None:
    ctx = request.app[CONTEXT]
    try:
        with Out(request, response) as out:
            await pump(
                source,
                out.write,
                sent=ctx.metrics.sent,
                alive=lambda: _client_alive(request),
                size=size,
            )
    except asyncio.CancelledError:
        request[CAUSE] = "client_gone"
        raise
    except ConnectionError:
        request[CAUSE] = "client_gone"
        raise StreamEnded(response) from None
    except ArtifactError as error:
        request[CAUSE] = cause(error)
        log.warning("%s %s: aborted after the headers: %s", request.method, request.path, error)
        await abort(request)
        raise StreamEnded(response) from None
