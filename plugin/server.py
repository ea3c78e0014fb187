"""`argosy plugin SOCKET`: the gRPC server Argo starts beside a workflow's containers.

Argo runs the image's ENTRYPOINT with the socket path as its last argument, waits up to
120 s for the socket file and then up to the driver's connection timeout (5 s by
default) for the server to answer. So the server makes the socket's folder itself (Argo
does not), replaces a stale socket a previous run left (a socket nobody answers on;
anything else at that path is refused), listens on `unix://SOCKET` and says so on
stdout. SIGTERM or SIGINT stops it: no new call is taken, calls in flight get up to
`grace` seconds to finish, then are cancelled (their uploads aborted), and it exits 0
(an unclean exit fails Argo's GC pods).
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc

from argosy.artifacts.errors import InvalidSpec, LocalIOError
from argosy.plugin import artifact_pb2_grpc as rpc
from argosy.plugin import memory
from argosy.plugin.service import ArtifactService, Places

MAX_MESSAGE = 8 * 1024 * 1024  # a frame is at most 2 MiB of data; room for a client's
UNWIND = 10.0  # seconds cancelled calls get to abort their uploads before the exit


@dataclass(frozen=True)
class PluginSettings:
    """grace: seconds calls in flight get after SIGTERM before they are cancelled (20:
        well inside Kubernetes' default 30 s termination grace).
    workers: calls served at once (each moves one artifact with its own parts in flight).
    """

    grace: float = 20.0
    workers: int = 16


def _say(line: str) -> None:
    print(f"argosy plugin: {line}", flush=True)


def prepare_socket(path: str) -> None:
    """Make the socket's folder; remove a stale socket; refuse anything else there."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise LocalIOError(
            f"cannot create the socket's folder {folder}: {error.strerror}"
        ) from None
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise InvalidSpec(f"{path} exists and is not a socket: refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody answers: a previous run's
        return
    finally:
        probe.close()
    raise InvalidSpec(f"{path}: another server is listening on this socket")


def serve(
    path: str,
    places: Places,
    settings: PluginSettings = PluginSettings(),
    *,
    say: Callable[[str], None] = _say,
    ready: Callable[[], None] = lambda: None,
) -> int:
    """Serve until SIGTERM or SIGINT; 0 once stopped cleanly."""
    prepare_socket(path)
    memory.limit_arenas()
    server = grpc.server(
        ThreadPoolExecutor(settings.workers, thread_name_prefix="argosy-plugin"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    service = ArtifactService(places, say=say)
    rpc.add_ArtifactServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    if not server.add_insecure_port(f"unix://{path}"):
        raise LocalIOError(f"cannot listen on {path}")
    stop = threading.Event()
    caught: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        caught.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        say(f"serving Argo's ArtifactService on unix://{path} (pid {os.getpid()})")
        ready()
        # a signal may be delivered to one of gRPC's own threads, which leaves a main
        # thread blocked forever in a plain wait(): wake to run the handler
        while not stop.wait(0.2):
            pass
        started = time.monotonic()
        say(
            f"{caught[0] if caught else 'stop'}: finishing calls in flight "
            f"(up to {settings.grace:g} s)"
        )
        server.stop(settings.grace).wait()
        left = service.calls.cancel_all(wait=UNWIND)
        if left:
            say(f"{left} call(s) still unwinding after {UNWIND:g} s: leaving them")
        say(f"stopped in {time.monotonic() - started:.1f} s")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        try:
            os.unlink(path)
        except OSError:
            pass
    sys.stdout.flush()
    return 0
