"""A TCP proxy on 127.0.0.1 that passes the server's answers at a capped rate per
connection, so that a test can kill a download half-way through, reliably."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

CHUNK = 64 << 10


class ThrottleProxy:
    """`with ThrottleProxy(upstream_url, bytes_per_second=N) as endpoint:` serves at
    `endpoint` (an http:// URL) until the block ends."""

    def __init__(self, upstream: str, *, bytes_per_second: int) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate = bytes_per_second
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> str:
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __exit__(self, *_: object) -> None:
        self._closing.set()
        self._listener.close()
        for sock in list(self._sockets):
            sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, 0), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(server, client, self.rate), daemon=True
            ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, rate: int) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
