"""Seekable tar.zst member indexes, kept by a server between its requests."""

from __future__ import annotations

import threading

from argosy.artifacts.archive import seekable
from argosy.artifacts.protocol import Driver, ObjectInfo


class IndexCache:
    """Seekable tar.zst member indexes one server read, kept per object version (URL and
    ETag) so listing an archive then serving its members reads the index once; the
    `kept` most recently read stay (the app holds one: nothing outlives its server)."""

    def __init__(self, kept: int = 64) -> None:
        self.kept = kept
        self._found: dict[tuple[str, str], seekable.SeekableIndex | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._found)

    def get(self, driver: Driver, info: ObjectInfo) -> seekable.SeekableIndex | None:
        """A tar.zst's member index (Argosy's seekable layout), or None for any other
        archive (blocking)."""
        if not info.key.lower().endswith((".tar.zst", ".tzst")):
            return None
        cached = (driver.url(info.key), info.etag)
        with self._lock:
            if cached in self._found:
                return self._found[cached]
        index = seekable.read_index(driver, info.key, info=info)
        with self._lock:
            self._found[cached] = index
            while len(self._found) > self.kept:
                self._found.pop(next(iter(self._found)))
        return index
