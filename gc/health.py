"""`/metrics` (Prometheus), `/healthz` (the workers are alive) and `/readyz` (the caches
are synced) on one small HTTP server, from the standard library: the controller needs
three GET routes, not a web framework.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from argosy.gc.metrics import Metrics


class HealthServer:
    def __init__(
        self,
        metrics: Metrics,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        host: str = "0.0.0.0",
        port: int = 0,
    ) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(
                        200, owner.metrics.render(), "text/plain; version=0.0.4; charset=utf-8"
                    )
                elif path in ("/healthz", "/livez"):
                    ok = owner.alive()
                    self._send(200 if ok else 503, "ok\n" if ok else "workers stalled\n")
                elif path == "/readyz":
                    ok = owner.ready()
                    self._send(200 if ok else 503, "ok\n" if ok else "not synced\n")
                else:
                    self._send(404, "not found\n")

            def _send(self, status: int, body: str, kind: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the controller's own log

        self.metrics, self.alive, self.ready = metrics, alive, ready
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="argosy-gc-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
