"""grpcio's own rate on this machine: a tiny ArtifactService whose OpenStream sends 2 MiB
frames from memory, for bench/plugin.py.

    python -m bench.plugin_raw SOCKET

Why it exists: the plugin's OpenStream cannot be faster than grpcio moves 2 MiB messages
over a unix socket from one Python process to another; if that ceiling is not well above
`argosy cat`'s rate, comparing the plugin with `argosy cat` measures grpcio, not the
plugin. This server has no storage behind it: OpenStream answers the artifact whose key
is a number of bytes with that many bytes, in frames of one prebuilt 2 MiB message (the
plugin's frame size), then `is_end`. The server is built as the plugin's is (a thread
pool, the same message size limits), listens on `unix://SOCKET`, prints `{"ready": true}`
on stdout and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from argosy.plugin import artifact_pb2 as pb
from argosy.plugin import artifact_pb2_grpc as rpc
from argosy.plugin.server import MAX_MESSAGE
from argosy.plugin.service import FRAME


class RawStreams(rpc.ArtifactServiceServicer):
    def __init__(self) -> None:
        self.frame = pb.OpenStreamResponse(data=os.urandom(FRAME))

    def OpenStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        size = int(request.artifact.plugin.key)
        for _ in range(size // FRAME):
            yield self.frame
        if size % FRAME:
            yield pb.OpenStreamResponse(data=bytes(size % FRAME))
        yield pb.OpenStreamResponse(is_end=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    server = grpc.server(
        ThreadPoolExecutor(4),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    rpc.add_ArtifactServiceServicer_to_server(RawStreams(), server)  # type: ignore[no-untyped-call]
    if not server.add_insecure_port(f"unix://{argv[0]}"):
        print(f"cannot listen on {argv[0]}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(json.dumps({"ready": True}), flush=True)
    while not stop.wait(0.2):  # a plain wait() may never see a signal gRPC's threads took
        pass
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
