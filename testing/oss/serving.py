"""The lifecycle the in-process test servers share: an http.server on a daemon thread,
started once, stopped with its open connections cut, usable as a context manager."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self


class BackgroundServer:
    """Subclasses set `host` and `port` (0: any free port) and build their server in
    `_make_server`; `start()` returns the endpoint."""

    host: str
    port: int
    thread_name = "test-server"
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def start(self) -> str:
        if self._httpd is None:
            self._httpd = self._make_server()
            self.port = self._httpd.server_address[1]
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.thread_name}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        close_connections = getattr(httpd, "close_connections", None)
        if close_connections is not None:
            close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"
