"""HTTP/1.1 front end of the OSS test server: a threaded ``http.server`` with keep-alive.

One thread per connection (``ThreadingHTTPServer``) lets several UploadPart
requests stream at once, which is exactly what the server's concurrency
statistics need to observe.  For each request the handler splits the
path-style URL (``/bucket/key``, as oss2 builds it for an IP endpoint), names
the OSS operation, authenticates it, applies any injected fault, runs the
operation and writes the reply: OSS headers (``x-oss-request-id``, ``Server:
AliyunOSS``), error documents (base64 in ``x-oss-err`` for HEAD, as OSS does),
and file-backed bodies through ``sendfile``.  A body left unread by an error is
drained so the keep-alive connection can carry the next request.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from .auth import SigningInput
from .buckets import OPERATIONS
from .ops import route
from .wire import BodyReader, OssRequest, Reply
from .xml import OssError, error_xml, head_error_header, new_request_id

if TYPE_CHECKING:
    from .server import OssTestServer

logger = logging.getLogger(__name__)
_SEND_CHUNK = 1 << 20


def split_path(raw_path: str) -> tuple[str | None, str]:
    """``/bucket/some%2Fkey`` -> ``("bucket", "some/key")``; ``/`` -> ``(None, "")``."""
    stripped = raw_path.lstrip("/")
    if not stripped:
        return None, ""
    bucket, _, key = stripped.partition("/")
    return unquote(bucket), unquote(key)


class OssHTTPServer(ThreadingHTTPServer):
    """Threaded server that remembers its open connections so ``stop`` can cut them."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: OssTestServer) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, OssRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping keep-alive connections is normal; only log real failures."""
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class OssRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    sys_version = ""
    disable_nagle_algorithm = True
    server: OssHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        app = self.server.app
        request_id = new_request_id()
        raw_path, _, query_string = self.path.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        bucket, key = split_path(raw_path)
        operation = route(self.command, bucket, key, query, headers)
        host = headers.get("host", "")
        body: BodyReader | None = None
        reply: Reply | None = None
        app.stats.begin(operation)
        try:
            body = BodyReader(self.rfile, headers)
            req = OssRequest(
                self.command,
                raw_path,
                bucket,
                key,
                query,
                headers,
                body,
                request_id,
                operation,
                host,
                standard_ranges=app.standard_ranges,
            )
            reply = self._process(app, req)
        except OssError as err:
            reply = self._error_reply(err, request_id, bucket, host)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a server bug: answer 500 like OSS's InternalError
            logger.exception("OSS test server failed on %s %s", self.command, self.path)
            reply = self._error_reply(
                OssError("InternalError", str(exc), status=500), request_id, bucket, host
            )
        if body is None:  # the body's framing is unknown: the connection cannot be reused
            self.close_connection = True
        if reply is not None:
            self._drain(body)
        # Book-keeping happens before the answer leaves, so a client that has its answer
        # always finds its request in ``server.requests`` and ``server.stats``.
        app.stats.end(
            operation,
            reply.status if reply else 0,
            body.received if body is not None else 0,
            reply.content_length if reply else 0,
        )
        app.record(
            self.command, raw_path, query, operation, reply.status if reply else 0, request_id
        )
        if reply is not None:
            self._send(reply, request_id)

    def _process(self, app: OssTestServer, req: OssRequest) -> Reply | None:
        req.access_key_id = app.authenticator.authenticate(
            SigningInput(req.method, req.bucket, req.key, req.query, req.headers)
        )
        fault = app.faults.take(req.operation, req.bucket, req.key)
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.kind == "error":
                raise OssError(fault.code, fault.message, status=fault.status)
            if fault.kind == "disconnect":
                req.body.drain()
                self.close_connection = True
                return None
            req.corrupt_body = fault.kind == "corrupt"
        operation = OPERATIONS.get(req.operation)
        if operation is None:
            raise OssError(
                "NotImplemented",
                f"{req.method} {self.path} is not supported by the OSS test server.",
            )
        if req.bucket is not None and req.key and len(req.key.encode("utf-8")) > 1023:
            raise OssError("InvalidObjectName", extra={"Key": req.key[:64]})
        reply = operation(app.store, req)
        if fault is not None and fault.kind == "lost":  # applied; its answer never leaves
            if reply.file is not None:
                reply.file.close()
            self.close_connection = True
            return None
        return reply

    def _error_reply(self, err: OssError, request_id: str, bucket: str | None, host: str) -> Reply:
        if err.status == 304:
            return Reply(304, dict(err.headers))
        document = error_xml(err, request_id, f"{bucket}.{host}" if bucket else host)
        headers = {"Content-Type": "application/xml", **err.headers}
        if self.command == "HEAD":
            headers["x-oss-err"] = head_error_header(document)
            return Reply(err.status, headers)
        return Reply(err.status, headers, document)

    def _drain(self, body: BodyReader | None) -> None:
        if body is None or body.finished:
            return
        try:
            body.drain()
        except (OssError, ConnectionError, TimeoutError):
            self.close_connection = True

    def _send(self, reply: Reply, request_id: str) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("x-oss-request-id", request_id)
            for name, value in reply.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            if reply.status not in (204, 304):
                length = (
                    reply.headers.get("Content-Length", "0")
                    if self.command == "HEAD"
                    else str(reply.content_length)
                )
                self.send_header("Content-Length", length)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and reply.status not in (204, 304):
                self._send_body(reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            if reply.file is not None:
                reply.file.close()

    def _send_body(self, reply: Reply) -> None:
        if reply.file is None:
            self.wfile.write(reply.body)
            return
        if reply.length <= 0:
            return
        if not reply.corrupt:
            self.connection.sendfile(reply.file, reply.offset, reply.length)
            return
        reply.file.seek(reply.offset)
        remaining = reply.length
        first = True
        while remaining > 0:
            chunk = reply.file.read(min(_SEND_CHUNK, remaining))
            if not chunk:
                break
            if first:  # flip the first byte: same length, wrong content, wrong CRC
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                first = False
            self.wfile.write(chunk)
            remaining -= len(chunk)
