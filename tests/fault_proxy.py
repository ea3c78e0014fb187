"""A TCP front for a test server that fails answers the way networks do: it resets every
connection after so many bytes of answer (a connection reset in the middle of a body), or
answers every connection after the first few with a 500 of its own."""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_ERROR = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_ERROR), _ERROR)
)


class FaultProxy:
    """`cut`: bytes of answer each connection gets before it is reset (None: all);
    `fail_after`: connections served before every new one is answered with a 500."""

    def __init__(
        self, upstream: tuple[str, int], *, cut: int | None = None, fail_after: int | None = None
    ) -> None:
        self.upstream, self.cut, self.fail_after = upstream, cut, fail_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            failing = self.fail_after is not None and self.connections > self.fail_after
            threading.Thread(
                target=self._fail if failing else self._relay, args=(client,), daemon=True
            ).start()

    @staticmethod
    def _fail(client: socket.socket) -> None:
        with client:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(65536)
                if not chunk:
                    return
                request += chunk
            client.sendall(_500)

    def _relay(self, client: socket.socket) -> None:
        sent = 0
        with client, socket.create_connection(self.upstream) as server:
            try:
                while True:
                    ready, _, _ = select.select([client, server], [], [])
                    if client in ready:
                        data = client.recv(65536)
                        if not data:
                            return
                        server.sendall(data)
                    if server in ready:
                        data = server.recv(65536)
                        if not data:
                            return
                        if self.cut is not None and sent + len(data) > self.cut:
                            client.sendall(data[: self.cut - sent])
                            # close with a reset (RST), as a dropped connection reads
                            client.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                            )
                            return
                        client.sendall(data)
                        sent += len(data)
            except OSError:
                return


@contextmanager
def fault_proxy(endpoint: str, **faults: int | None) -> Iterator[FaultProxy]:
    """A FaultProxy in front of `endpoint` (`http://HOST:PORT`) while in the block."""
    host, _, port = endpoint.removeprefix("http://").rstrip("/").rpartition(":")
    proxy = FaultProxy((host, int(port)), **faults)
    try:
        yield proxy
    finally:
        proxy.close()
