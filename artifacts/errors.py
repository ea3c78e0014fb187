"""One error tree for everything that can go wrong when moving artifacts.

Every driver maps its SDK's exceptions onto this tree through one table, so callers
(the transfer engine, the CLI, the sidecar, the GC) decide what to do from the class
alone: retry a `TransientError`, report a `PermanentError` at once.

    ArtifactError
    ├── TransientError          may succeed if tried again (5xx, throttling, resets, timeouts)
    │   ├── ThrottledError      the server asked us to slow down
    │   └── RequestStalled      one request waited its socket timeout without a byte
    └── PermanentError          trying again will not help
        ├── Stalled             a transfer moved no byte for its stall timeout, or ran
        │                       past its deadline (`stall.py`)
        ├── NotFound            no such key, bucket or upload
        ├── AccessDenied        bad or missing credentials, or not allowed
        ├── IntegrityError      bytes do not match their checksum, size or range
        ├── PreconditionFailed  the object changed while we were reading it
        ├── Conflict            someone else changed it first (HTTP 409): read again, retry
        ├── Gone                what was asked for is no longer kept (HTTP 410): start over
        ├── InvalidSpec         bad input: a URL, a setting, a repository file
        ├── SourceChanged       a local source changed or vanished while we read it
        └── LocalIOError        the local filesystem failed us (full disk, permissions)

Messages never contain secrets: they name the bucket and key and the server's code, and
a URL only as `redact_url` shows it.
"""

from __future__ import annotations


class ArtifactError(Exception):
    """Root of every error Argosy raises about artifacts."""

    exit_code = 1

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class TransientError(ArtifactError):
    """A failure that may pass: the retry layer tries again after `delay` (or its backoff)."""

    def __init__(self, message: str, *, code: str | None = None, delay: float | None = None):
        super().__init__(message, code=code)
        self.delay = delay


class ThrottledError(TransientError):
    """The server asked us to slow down (SlowDown, 503, 429)."""


class RequestStalled(TransientError):
    """One request got no byte within its socket timeout: `where` it was going (the
    object's URL) and `waiting_for` what (`the answer to UploadPart 3 from
    http://host:9000`). Transient to the retrier only while the transfer as a whole has
    not stalled (`stall.Watchdog`)."""

    def __init__(self, where: str, waiting_for: str, *, code: str = "RequestStalled") -> None:
        super().__init__(f"{where}: timed out waiting for {waiting_for}", code=code)
        self.where, self.waiting_for = where, waiting_for

    @classmethod
    def at(cls, where: str, phase: str, *, request: str, endpoint: str) -> RequestStalled:
        """The stall of `request` (`UploadPart 3`) to `endpoint` in `phase`: `connect`,
        `send` (the server took no more of the body), `answer` (no answer's head) or
        `body` (the rest of the answer's body). The endpoint is shown redacted; a
        connection that timed out keeps the code of one refused, EndpointUnreachable."""
        server = redact_url(endpoint, endpoint=True) or "the endpoint"
        request = request or "the request"
        waiting_for = {
            "connect": f"a connection to {server} for {request}",
            "send": f"{server} to take the body of {request}",
            "body": f"the rest of the answer to {request} from {server}",
        }.get(phase, f"the answer to {request} from {server}")
        return cls(
            where,
            waiting_for,
            code="EndpointUnreachable" if phase == "connect" else "RequestStalled",
        )


class PermanentError(ArtifactError):
    """A failure that repeating the same request will not fix."""


class Stalled(PermanentError):
    """The transfer as a whole moved no byte for its stall timeout (code StallTimeout),
    or ran past its deadline (code DeadlinePassed); what it waited for is in the
    message."""


class NotFound(PermanentError):
    exit_code = 3


class AccessDenied(PermanentError):
    exit_code = 5


class IntegrityError(PermanentError):
    exit_code = 4


class PreconditionFailed(PermanentError):
    """The object's ETag changed during a multi-request read."""


class Conflict(PermanentError):
    """Someone else wrote first (HTTP 409): a stale update, a name already taken. The
    caller reads the current state and decides; repeating the same request never helps."""


class Gone(PermanentError):
    """What was asked for is no longer kept (HTTP 410): e.g. a Kubernetes watch from a
    resourceVersion the API server has compacted away; list again."""


class InvalidSpec(PermanentError):
    exit_code = 2


class SourceChanged(PermanentError):
    """A local file changed size or vanished while it was being uploaded."""


class LocalIOError(PermanentError):
    """The local side failed: a full disk, a missing folder, no permission."""


def exit_code_for(error: BaseException) -> int:
    """The CLI's exit code for an error (0 ok; 1 failed; 2 usage; 3 not found;
    4 integrity; 5 access denied)."""
    if isinstance(error, ArtifactError):
        return error.exit_code
    return 1


def redact_url(url: str, *, endpoint: bool = False) -> str:
    """`url` with its user info shown as `***` (`http://AK:SECRET@host:9000` becomes
    `http://***@host:9000`): every message naming a URL that came from outside goes
    through here, as such a URL can carry a password or a secret key. With `endpoint`,
    everything before the last '@' counts as user info: a storage endpoint has no '@' of
    its own (no path, no query), so one there can only end credentials."""
    span = _user_info(url, endpoint=endpoint)
    return url if span is None else f"{url[: span[0]]}***{url[span[1] :]}"


def carries_user_info(url: str, *, endpoint: bool = False) -> bool:
    return _user_info(url, endpoint=endpoint) is not None


def _user_info(url: str, *, endpoint: bool) -> tuple[int, int] | None:
    """Where the user info of `url` lies (from after `scheme://`, or from the start when
    there is no scheme, to its last '@'), or None. The authority ends at the first '/', '?'
    or '#', as URL parsers read it; but when that cuts it short of a HOST[:PORT] and an '@'
    follows (a password holding a raw '/'), everything up to the last '@' counts: such a
    URL cannot be used anyway, and whatever precedes the '@' may be the secret."""
    scheme_end = url.find("://")
    start = 0 if scheme_end < 0 else scheme_end + 3
    end = next((i for i in range(start, len(url)) if url[i] in "/?#"), len(url))
    at = url.rfind("@", start, end)
    if at < 0 and (endpoint or not _host_port(url[start:end])):
        at = url.rfind("@", start)
    return None if at < 0 else (start, at)


def _host_port(text: str) -> bool:
    """Whether `text` reads as HOST, HOST:PORT, [IPv6] or [IPv6]:PORT."""
    if text.endswith("]"):
        return text.startswith("[")
    host, colon, port = text.rpartition(":")
    return (
        not colon
        or (port.isdigit() or not port)
        and (":" not in host or host.startswith("[") and host.endswith("]"))
    )
