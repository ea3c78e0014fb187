"""Fakes for unit tests: a clock that never sleeps, and a driver whose reads misbehave."""

from __future__ import annotations

from dataclasses import dataclass, field

from argosy.artifacts.drivers.local import LocalDriver


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
            return BreakingStream(stream, self.break_after.pop(0),
                                  TransientError("connection reset"))
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
