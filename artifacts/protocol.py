"""The driver protocol: the few primitives a storage backend implements.

Everything else (chunking, parallelism, retries, checksums, archives) is written once
above this protocol, in the transfer engine. The contract every driver keeps:

- A driver never retries. It makes one request and maps any failure onto
  `argosy.artifacts.errors` through its one error table; no SDK exception escapes it.
- `read` returns a stream that the caller reads once. If it breaks half-way the caller
  decides what to do (it re-requests the remaining range pinned by ETag, never the
  whole thing blindly).
- Keys are plain strings relative to the driver's bucket; `list` returns keys in
  lexicographic order, paged by an opaque token.
- `metadata` is the object's user metadata with lower-case names and no SDK prefix
  (`argosy-checksum`, not `x-amz-meta-argosy-checksum`).

Optional primitives: a driver whose service does something cheaper than the primitives
above also implements the matching protocol below `Driver`; the transfer engine checks
for it with `isinstance` and otherwise uses the primitives.

- `DescribingDriver.read_described`: a ranged read whose answer also describes the
  object (S3's GET carries Content-Range, ETag and the user metadata), so a download
  starts with its first range instead of a stat.
- `BucketDriver.create_bucket` and `.list_buckets`: buckets themselves (`argosy mb`,
  `argosy ls s3://`). Nothing above the drivers needs them to move artifacts; a driver
  without them cannot make or list buckets, and the command says so.
- `BatchingDriver.batch`: whole small objects got and put many at once from one thread
  (S3 on a static route: non-blocking sockets and one selector), for trees of many small
  files; each exchange that fails there is done again through the primitives above.
- `ConfirmingDriver.made_of`: whether a stored object is the one completing given parts
  makes, by the service's own checksum of it (OSS's CRC64), where the engine's generic
  check (size and S3's multipart ETag formula) would rest on an ETag formula the
  service does not promise.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Protocol, runtime_checkable

from argosy.artifacts.errors import IntegrityError

Buffer = bytes | bytearray | memoryview


class SizedReader(Protocol):
    """A body that knows its length and reads itself (e.g. a window onto a file)."""

    def read(self, amount: int = -1) -> bytes: ...

    def __len__(self) -> int: ...


Body = Buffer | SizedReader | BinaryIO


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # unquoted
    modified: datetime  # aware, UTC
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListPage:
    objects: Sequence[ObjectInfo]
    prefixes: Sequence[str]
    next_token: str | None


@dataclass(frozen=True)
class Part:
    number: int  # 1-based
    etag: str
    size: int


@dataclass(frozen=True)
class UploadInfo:
    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True)
class DeleteFailure:
    key: str
    code: str
    message: str


class ReadStream(Protocol):
    """Bytes of one ranged read; `start`/`end` (inclusive) and `total` come from the
    server's answer (Content-Range), not from what was asked, so the caller can check."""

    start: int
    end: int
    total: int
    etag: str

    def readinto(self, buffer: memoryview) -> int: ...

    def close(self) -> None: ...


class PartSource(Protocol):
    """A part's body: a buffer, or a readable that knows its length."""

    def __len__(self) -> int: ...


@runtime_checkable
class Driver(Protocol):
    """One bucket of one storage service."""

    scheme: str
    bucket: str
    copy_limit: int
    """The largest object `replace_metadata` copies in one request (S3 5 GiB, OSS 1 GB);
    the metadata of a larger one is replaced by a multipart copy (`copy_part`)."""

    def url(self, key: str) -> str: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Bytes `start..end` inclusive (`end=None`: to the end of the object)."""
        ...

    def put(self, key: str, body: Body, *, size: int, metadata: Mapping[str, str]) -> str:
        """Write a whole object at once; returns its ETag."""
        ...

    def create_upload(self, key: str, *, metadata: Mapping[str, str]) -> str: ...

    def upload_part(
        self, key: str, upload_id: str, number: int, body: Body, *, size: int
    ) -> Part: ...

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str: ...

    def abort_upload(self, key: str, upload_id: str) -> None: ...

    def list_parts(self, key: str, upload_id: str) -> list[Part]: ...

    def list(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage: ...

    def list_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]: ...

    def delete(self, keys: Sequence[str]) -> builtins.list[DeleteFailure]:
        """Delete up to 1000 keys; a missing key counts as deleted."""
        ...

    def replace_metadata(self, key: str, metadata: Mapping[str, str], *, if_match: str) -> str:
        """Set the user metadata of an existing object of at most `copy_limit` bytes in
        place; returns the new ETag. Fails with PreconditionFailed when the object is no
        longer `if_match`."""
        ...

    def copy_part(
        self, key: str, upload_id: str, number: int, *, start: int, end: int, if_match: str
    ) -> Part:
        """Copy bytes `start..end` (inclusive) of the object `key` itself, on the server,
        into part `number` of the multipart upload `upload_id` of the same key. Fails
        with PreconditionFailed when the object is no longer `if_match`."""
        ...


@runtime_checkable
class DescribingDriver(Protocol):
    """An optional driver primitive: a ranged read whose answer also describes the
    object (its size, ETag and user metadata), so a download needs no stat first."""

    def read_described(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, ReadStream]:
        """Bytes `start..end` inclusive as `Driver.read` gives them (unpinned: the
        object's ETag is not known yet), with the object the answer describes. A range of
        an empty object fails as `read` does (IntegrityError, code InvalidRange or 416):
        the caller then falls back to a stat."""
        ...


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime | None  # aware, UTC; None when the service does not say


@runtime_checkable
class BucketDriver(Protocol):
    """Optional driver primitives on buckets. A driver opened for the service alone (its
    bucket "", as `argosy ls s3://` opens one) answers `list_buckets` and nothing else."""

    def create_bucket(self) -> bool:
        """Create the driver's bucket. True when made now; False when it already exists
        and these credentials reach it, which is not an error. A name taken by someone
        else fails (Conflict), as does a bucket these credentials may not create
        (AccessDenied) or an invalid name (InvalidSpec)."""
        ...

    def list_buckets(self) -> builtins.list[BucketInfo]:
        """The buckets these credentials own on the driver's service, sorted by name."""
        ...


def answered_range(content_range: str | None, length: int, *, where: str) -> tuple[int, int, int]:
    """(first, last, total) of a GET's answer, from its Content-Range header (none: the
    whole object, `length` bytes) checked against its Content-Length. The HTTP drivers
    share it; the transfer engine then checks the range is the one it asked for."""
    if not content_range:
        return 0, length - 1, length
    try:
        unit, _, spec = content_range.partition(" ")
        span, _, total = spec.partition("/")
        first, _, last = span.partition("-")
        answer = int(first), int(last), int(total)
    except ValueError:
        answer = None
    if answer is None or unit != "bytes" or (length and answer[1] - answer[0] + 1 != length):
        raise IntegrityError(
            f"{where}: Content-Range {content_range} disagrees with Content-Length {length}"
        )
    return answer


@runtime_checkable
class ConfirmingDriver(Protocol):
    """An optional driver primitive: whether the object stored under a key is the one a
    multipart upload of `parts` made, by what the service records of its bytes. The
    engine asks when a retried Complete is refused as if the first had succeeded (its
    answer lost on the way)."""

    def made_of(self, key: str, parts: Sequence[Part]) -> bool | None:
        """True if the object under `key` is what completing `parts` makes, False if it
        is another object; None when the parts or the object carry nothing to tell by.
        Raises NotFound when there is no object."""
        ...


@dataclass(eq=False)
class Exchange:
    """One whole-object request of a batch and, once it is over, its outcome. `body`
    None asks for the object (a GET); bytes store them under `key` with `metadata`."""

    key: str
    body: bytes | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    size: int = 0  # a GET's: the bytes it expects (a PUT's are its body's)
    tag: Any = None  # the caller's: what the exchange is for
    info: ObjectInfo | None = None  # a GET's answer: the object it describes
    data: Buffer = b""  # a GET's answer: the object's bytes
    etag: str = ""  # a PUT's answer: the stored object's ETag
    failed: str = ""  # why it did not complete ("": it did)


class Batch(Protocol):
    """Many exchanges in flight at once, from the calling thread alone."""

    def run(
        self,
        exchanges: Iterator[Exchange],
        finished: Callable[[Exchange], None],
        stop: threading.Event,
        budget: Callable[[], float | None],
    ) -> None:
        """Send every exchange `exchanges` yields (taken as room frees up) and call
        `finished` with each once it is over, done or `failed`: refused, broken, timed out,
        or answered in a way the batch does not handle (the caller then does it through
        the driver's primitives, whose retries and errors apply). `budget` says how long
        one wait may last (None: the batch's own timeout). Returns when all are over; once
        `stop` is set nothing new starts, and those in flight are seen to their end. A
        failure to reach the server ends the run early: the exchange it hit, and those in
        flight, are failed, and the rest of `exchanges` is left untaken."""
        ...

    def close(self) -> None:
        """Close its connections; closing again does nothing."""
        ...


@runtime_checkable
class BatchingDriver(Protocol):
    """An optional driver primitive: a batch for whole small objects, or None where
    this driver's connection to its service cannot batch (S3: botocore's route)."""

    batch_limit: int
    """The largest object a batch moves (bytes): larger ones go through the primitives."""

    def batch(self, connections: int, memory: int) -> Batch | None:
        """A batch of at most `connections` exchanges in flight, holding at most `memory`
        bytes of their bodies (past one exchange, which may hold up to `batch_limit`)."""
        ...
