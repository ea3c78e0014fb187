"""One error tree for everything that can go wrong when moving artifacts.

Every driver maps its SDK's exceptions onto this tree through one table, so callers
(the transfer engine, the CLI, the sidecar, the GC) decide what to do from the class
alone: retry a `TransientError`, report a `PermanentError` at once.

    ArtifactError
    ├── TransientError          may succeed if tried again (5xx, throttling, resets, timeouts)
    │   └── ThrottledError      the server asked us to slow down
    └── PermanentError          trying again will not help
        ├── NotFound            no such key, bucket or upload
        ├── AccessDenied        bad or missing credentials, or not allowed
        ├── IntegrityError      bytes do not match their checksum, size or range
        ├── PreconditionFailed  the object changed while we were reading it
        ├── InvalidSpec         bad input: a URL, a setting, a repository file
        ├── SourceChanged       a local source changed or vanished while we read it
        └── LocalIOError        the local filesystem failed us (full disk, permissions)

Messages never contain secrets: they name the bucket and key and the server's code.
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


class PermanentError(ArtifactError):
    """A failure that repeating the same request will not fix."""


class NotFound(PermanentError):
    exit_code = 3


class AccessDenied(PermanentError):
    exit_code = 5


class IntegrityError(PermanentError):
    exit_code = 4


class PreconditionFailed(PermanentError):
    """The object's ETag changed during a multi-request read."""


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
