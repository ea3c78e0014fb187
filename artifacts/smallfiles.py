"""One small file of a tree in the batch lane (`lane.py`): read whole to go up, written
whole once it came down. Each step answers None or raises where the file is not the
lane's (too large, unreadable, changing), and the pool then moves it by the usual path,
which reports what is wrong."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from argosy.artifacts.checksum import ALGORITHM, crc32c, to_hex
from argosy.artifacts.download import chosen_record
from argosy.artifacts.errors import IntegrityError
from argosy.artifacts.protocol import Buffer, Exchange, ObjectInfo
from argosy.artifacts.record import Record, read_record


def put_exchange(
    path: str | os.PathLike[str], key: str, metadata: Mapping[str, str], limit: int
) -> Exchange | None:
    """A PUT of the file's bytes with its checksum record, as `upload_file` sends a small
    file; None for a file that is not a plain file below `limit` bytes, cannot be read,
    or changed while it was read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or before.st_size >= limit:
            return None
        data = os.pread(fd, before.st_size, 0)
        after = os.fstat(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) != before.st_size or after.st_nlink == 0:
        return None
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        return None
    record = Record.whole(crc32c(data), len(data))
    return Exchange(key, body=data, metadata={**metadata, **record.to_metadata()})


def put_record(exchange: Exchange) -> Record | None:
    """The checksum record a finished PUT carried."""
    return read_record(exchange.metadata, size=len(exchange.body or b"")).record


def check_got(
    exchange: Exchange, url: str, expect: Record | None, pinned: ObjectInfo | None
) -> tuple[str, Record | None, str]:
    """(checksum, record, why unverified) of a finished GET, verified as `download_file`
    verifies one (`chosen_record`: `expect`, a tree manifest's, or the object's own). An
    object that is not the one listed (`pinned`: another ETag or size) or whose bytes
    disagree with the record raises."""
    info = exchange.info
    assert info is not None
    if pinned is not None and (pinned.size, pinned.etag or info.etag) != (info.size, info.etag):
        raise IntegrityError(f"{url}: changed since it was listed")
    record, reason = chosen_record(info, expect)
    checksum = f"{ALGORITHM}:{to_hex(crc := crc32c(exchange.data))}"
    if record is not None and record.crc != crc:
        raise IntegrityError(f"{url}: recorded {record.checksum}, the bytes have {checksum}")
    return checksum, record, reason


def write_new(path: str | os.PathLike[str], data: Buffer, mode: int) -> None:
    """Create `path` (it must not exist; no link is followed) holding `data`, with `mode`
    less the umask. A failed write leaves no file behind."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
