"""Fakes for unit tests: a clock that never sleeps, and a driver whose reads misbehave."""

from __future__ import annotations

import builtins
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import NotFound
from argosy.artifacts.protocol import (
    Body,
    DeleteFailure,
    ListPage,
    ObjectInfo,
    Part,
    UploadInfo,
)


@dataclass
class FakeClock:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class BreakingStream:
    """Delivers `limit` bytes of the real stream, then fails like a reset connection."""

    def __init__(self, inner, limit: int, error: Exception) -> None:
        self.inner, self.limit, self.error = inner, limit, error
        self.start, self.end = inner.start, inner.end
        self.total, self.etag = inner.total, inner.etag

    def readinto(self, buffer: memoryview) -> int:
        if self.limit <= 0:
            raise self.error
        n = self.inner.readinto(buffer[: self.limit])
        self.limit -= n
        return n

    def close(self) -> None:
        self.inner.close()


class MisbehavingDriver(LocalDriver):
    """A local driver whose reads can break mid-stream, lie about their range, or end early."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[int, int | None, str | None]] = []
        self.break_after: list[int] = []  # per read: bytes before a reset
        self.shift_range = False

    def read(self, key, *, start=0, end=None, if_match=None):
        from argosy.artifacts.errors import TransientError

        self.reads.append((start, end, if_match))
        stream = super().read(key, start=start, end=end, if_match=if_match)
        if self.shift_range:
            stream.start += 1
        if self.break_after:
            return BreakingStream(
                stream, self.break_after.pop(0), TransientError("connection reset")
            )
        return stream


class DescribingDriver(MisbehavingDriver):
    """Answers a ranged read with a description of the object, as S3's GET does with its
    headers (and, like S3, refuses a range of an empty object); counts stats."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats = 0

    def stat(self, key):
        self.stats += 1
        return super().stat(key)

    def read_described(self, key, *, start=0, end=None):
        from argosy.artifacts.errors import IntegrityError

        info = LocalDriver.stat(self, key)  # the GET's own headers: not a stat
        if info.size == 0:
            raise IntegrityError("range of an empty object", code="InvalidRange")
        return info, self.read(key, start=start, end=end)


class MemoryStream:
    """A ranged read of bytes held in memory."""

    def __init__(self, data: bytes, *, start: int, end: int, total: int, etag: str) -> None:
        self._body = io.BytesIO(data)
        self.start, self.end, self.total, self.etag = start, end, total, etag

    def readinto(self, buffer: memoryview) -> int:
        return self._body.readinto(buffer)

    def close(self) -> None:
        pass


class MemoryDriver:
    """A bucket in a dict that takes any key a hostile writer could store ('a/../b',
    'a' beside 'a/b', '/abs'): what a filesystem-backed driver cannot even hold. It
    serves what a tree download uses: list, stat, ranged read; every write is refused."""

    scheme, bucket, copy_limit = "mem", "b", 1 << 30

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)

    def url(self, key: str) -> str:
        return f"mem://b/{key}"

    def stat(self, key: str) -> ObjectInfo:
        if key not in self.objects:
            raise NotFound(f"no such key: {self.url(key)}")
        data = self.objects[key]
        return ObjectInfo(
            key, len(data), hashlib.md5(data).hexdigest(), datetime(2026, 1, 1, tzinfo=UTC)
        )

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> MemoryStream:
        info = self.stat(key)
        last = info.size - 1 if end is None else min(end, info.size - 1)
        return MemoryStream(
            self.objects[key][start : last + 1],
            start=start,
            end=last,
            total=info.size,
            etag=info.etag,
        )

    def list(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        keys = sorted(k for k in self.objects if k.startswith(prefix))
        return ListPage([self.stat(k) for k in keys], [], None)

    # the rest of the Driver protocol: a read-only bucket

    def _refuse(self, what: str) -> NoReturn:
        raise NotImplementedError(f"{self.url('')}: {what} on a read-only memory bucket")

    def put(self, key: str, body: Body, *, size: int, metadata: Mapping[str, str]) -> str:
        self._refuse("put")

    def create_upload(self, key: str, *, metadata: Mapping[str, str]) -> str:
        self._refuse("create_upload")

    def upload_part(self, key: str, upload_id: str, number: int, body: Body, *, size: int) -> Part:
        self._refuse("upload_part")

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str:
        self._refuse("complete_upload")

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._refuse("abort_upload")

    def list_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        self._refuse("list_parts")

    def list_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        self._refuse("list_uploads")

    def delete(self, keys: Sequence[str]) -> builtins.list[DeleteFailure]:
        self._refuse("delete")

    def replace_metadata(self, key: str, metadata: Mapping[str, str], *, if_match: str) -> str:
        self._refuse("replace_metadata")

    def copy_part(
        self, key: str, upload_id: str, number: int, *, start: int, end: int, if_match: str
    ) -> Part:
        self._refuse("copy_part")


class DescribingMemoryDriver(MemoryDriver):
    """A MemoryDriver whose ranged reads describe the object, as S3's GET does (a tree
    with a manifest is then downloaded from the manifest's list of files)."""

    def read_described(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, MemoryStream]:
        from argosy.artifacts.errors import IntegrityError

        info = self.stat(key)
        if info.size == 0:
            raise IntegrityError("range of an empty object", code="InvalidRange")
        return info, self.read(key, start=start, end=end)
