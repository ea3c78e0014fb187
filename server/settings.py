"""The server's settings, built once by `argosy serve` from its flags.

Memory: every stream in flight holds part buffers from one shared budget
(`memory_budget`, in parts of `part_size`). A stream always gets one part at once (no
request waits for memory); a full GET takes up to `read_ahead` extra parts, only from
free ones, to fetch ahead in parallel; a stream that arrives when every part is taken
revokes one extra part from the stream holding the most, which fetches one part fewer
from its next part on. The parts held are therefore

    parts = max(memory_budget / part_size, streams_in_flight)
    peak  = parts x part_size + streams_in_flight x (CHUNK + WRITE + socket buffers)

(a revoked part's buffer lives on until its fetch ends), where the second term is the
stream's held-back end (CHUNK, copied) and what the connection's write buffer may copy
of one piece handed to it (at most WRITE). A stream with one part reads sequentially
into one buffer of READ bytes, not a whole part. Part buffers are anonymous maps, reused
across streams while the budget has free parts and unmapped otherwise. Archive browsing
and folder downloads take one part each from the same budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from argosy.artifacts.errors import InvalidSpec

MiB = 1 << 20
AuthMode = Literal["client", "server", "none"]
# Argo Server's defaults (its artifact server's setSecurityHeaders): HTML artifacts render
# in a sandbox with no scripts, images and styles only from the server itself.
DEFAULT_CSP = (
    "sandbox; base-uri 'none'; default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'"
)
DEFAULT_X_FRAME_OPTIONS = "SAMEORIGIN"
CHUNK = 256 << 10  # the end of a stream held back until its checksum is checked
READ = 1 << 20  # what a sequential stream reads at a time, into one buffer of its own
WRITE = 1 << 20  # what a stream hands the socket at a time (a view of its buffer)


@dataclass(frozen=True)
class ServerSettings:
    """host / port: where to listen (127.0.0.1:2746, Argo Server's port, by default).
    auth: client (every Kubernetes call with the caller's token, Argo's default),
        server (the server's own credentials after a TokenReview and a
        SubjectAccessReview of the caller), none (no check: only on loopback).
    namespaces: the namespaces served (empty: every namespace).
    memory_budget: bytes of part buffers shared by all streams (192 MiB: 24 parts, so a
        few streams read ahead in full, and many share it one part each).
    part_size: bytes per buffer part and ranged GET (8 MiB: half the engine's stream
        part, so a busy server still reads ahead with the budget split many ways).
    read_ahead: parts fetched ahead by one full GET when the budget allows (4).
    max_upload_bytes: largest upload (1 GiB, Argo's ARGO_SERVER_MAX_ARTIFACT_UPLOAD_BYTES).
    content_security_policy: sent with every artifact (Argo's sandbox; overridable as
        Argo's ARGO_ARTIFACT_CONTENT_SECURITY_POLICY is).
    x_frame_options: sent with every artifact (SAMEORIGIN; overridable as Argo's
        ARGO_ARTIFACT_X_FRAME_OPTIONS is).
    listing_page: entries per page of a JSON listing (1000).
    shutdown_grace: seconds streams in flight get to finish after SIGTERM (25: inside
        Kubernetes' default 30 s termination grace).
    log_format: text or json access log lines.
    default_repository: the Argo controller's default repository entry, for workflows
        that used it and for uploads in a namespace with no `artifact-repositories`.
    """

    host: str = "127.0.0.1"
    port: int = 2746
    auth: AuthMode = "client"
    namespaces: tuple[str, ...] = ()
    memory_budget: int = 192 * MiB
    part_size: int = 8 * MiB
    read_ahead: int = 4
    max_upload_bytes: int = 1 << 30
    content_security_policy: str = DEFAULT_CSP
    x_frame_options: str = DEFAULT_X_FRAME_OPTIONS
    listing_page: int = 1000
    shutdown_grace: float = 25.0
    log_format: Literal["text", "json"] = "text"
    local_root: str | None = None
    default_repository: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.auth not in ("client", "server", "none"):
            raise InvalidSpec(f"--auth must be client, server or none, not {self.auth!r}")
        if self.auth == "none" and not is_loopback(self.host):
            raise InvalidSpec(
                f"--auth none serves artifacts to anyone: refused on {self.host}, "
                "allowed only on a loopback address (127.0.0.1, ::1, localhost)"
            )
        if self.memory_budget < self.part_size:
            raise InvalidSpec(
                f"--memory-budget must hold at least one part ({self.part_size // MiB} MiB)"
            )
        if self.max_upload_bytes < 1:
            raise InvalidSpec("--max-upload-bytes must be at least 1")
        if self.read_ahead < 1:
            raise InvalidSpec("read ahead must be at least 1 part")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
