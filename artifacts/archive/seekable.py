"""Read one member of a seekable tar.zst through ranged reads, without the rest.

    index = read_index(driver, key)              # None: not seekable, stream it instead
    if index is not None and (member := index.member("logs/main.log")):
        for chunk in iter_member(driver, key, index, member.path):
            ...

`read_index` reads the object's tail (one ranged read for most archives: the seek
table and the member index both sit in its last 64 KiB), a second one when they do
not fit there, after a stat unless the caller passes the object's `ObjectInfo`.
`index` may be kept and shared between threads (keyed by the object's ETag, say): it is
never changed. `iter_member` then reads only the frames holding the member's header and data, in
ranged reads of up to 8 MiB, every one pinned to the ETag the index was read from (a
replaced object fails with PreconditionFailed, never mixes two versions).

What is read is checked, so an object that lies cannot make the reader serve other
bytes or allocate what it claims: the seek table must tile the object and stay within
its caps (seekformat.py), the index must list members in order inside the tar, every
frame read must decompress to exactly the size the table gives it (and match its
checksum), and the tar header found at the member's offset must name the member, its
type and size. Any of these failing is IntegrityError; the archive may still be
extracted whole by streaming it, which checks it again its own way.

Old tar.zst objects (one zstd frame, no trailing frames) and seekable zstd written by
other tools (no Argosy member index) give None: stream them as before.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from argosy.artifacts.archive import seekformat as sf
from argosy.artifacts.archive import tarformat as tf
from argosy.artifacts.archive.codecs import decompress
from argosy.artifacts.archive.entry import EntryType
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.archive.seekformat import FrameTable, IndexedMember
from argosy.artifacts.archive.zstdframes import MAGIC as ZSTD_MAGIC
from argosy.artifacts.errors import IntegrityError, NotFound
from argosy.artifacts.protocol import Driver, ObjectInfo
from argosy.artifacts.retry import Retrier

TAIL = 64 << 10
"""Bytes read from the end first: the seek table of a 1 GiB archive (256 frames, ~3 KiB)
and the index of ~3,000 members fit."""
WINDOW = 8 << 20
"""The most compressed bytes one ranged read of a member's frames asks for."""
MAX_SEEK_TABLE = 16 << 20  # ~1.4 million frames: a 5.6 TiB archive at 4 MiB a frame
_TYPEFLAGS = {
    EntryType.FILE: tf.REGULAR,
    EntryType.DIR: tf.DIRECTORY,
    EntryType.SYMLINK: tf.SYMLINK,
}

__all__ = [
    "IndexedMember",
    "SeekableIndex",
    "iter_member",
    "iter_member_range",
    "read_index",
]


@dataclass(frozen=True)
class SeekableIndex:
    """What `read_index` found: the object's version (`etag`, `size`), its frames and
    its members. `members` are in archive order; a member's `path` is the name stored
    in the tar ('out/a.txt', a folder without its trailing '/'), not made safe: a caller
    serving paths resolves them with the archive rules of `paths.py` first."""

    key: str
    etag: str
    size: int
    frames: FrameTable
    members: tuple[IndexedMember, ...]
    by_path: Mapping[str, IndexedMember]
    requests: int  # the ranged reads it took (a stat not included)

    def member(self, path: str) -> IndexedMember | None:
        """The member stored under `path` (a trailing '/' is ignored), or None."""
        return self.by_path.get(path[:-1] if path.endswith("/") and path != "/" else path)

    def frames_for(self, member: IndexedMember) -> range:
        """The frames holding `member`'s header and data."""
        return _frames_covering(self.frames, member.header, member.data + member.size)


def read_index(
    driver: Driver,
    key: str,
    *,
    info: ObjectInfo | None = None,
    retrier: Retrier | None = None,
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> SeekableIndex | None:
    """The seek table and member index of the tar.zst at `key`, or None when it has
    none (an older Argosy's tar.zst, any other object). `info`: the object's stat when
    the caller has it (saves one request). `limits.max_members` and
    `limits.max_header_bytes` bound the index as they bound an extraction.

    Raises IntegrityError when the trailing frames are there but inconsistent (see the
    module's docstring), NotFound / AccessDenied / PreconditionFailed as a read does."""
    retrier = retrier or Retrier()
    if info is None:
        info = retrier.call(lambda: driver.stat(key), what=f"stat {driver.url(key)}")
    try:
        return _read_index(_Reader(driver, key, info.etag, retrier), info, limits)
    except IntegrityError as e:
        where = driver.url(key)
        if e.message.startswith(where):
            raise
        raise IntegrityError(f"{where}: {e.message}", code=e.code) from None


def _read_index(reader: _Reader, info: ObjectInfo, limits: ExtractLimits) -> SeekableIndex | None:
    size = info.size
    if size < sf.FOOTER.size + sf.SKIPPABLE_HEAD.size:
        return None
    tail_start = max(0, size - TAIL)
    tail = reader.read(tail_start, size)

    def span(start: int, end: int) -> bytes:
        """Bytes [start, end) of the object: what the tail holds of them from the tail."""
        if start >= tail_start:
            return tail[start - tail_start : end - tail_start]
        if end <= tail_start:
            return reader.read(start, end)
        return reader.read(start, tail_start) + tail[: end - tail_start]

    footer = sf.decode_footer(tail, size)
    if footer is None:
        return None
    if footer.table_size > MAX_SEEK_TABLE:
        raise IntegrityError(
            f"seek table of {footer.table_size} bytes is above the cap of {MAX_SEEK_TABLE}"
        )
    frames = sf.decode_seek_table(span(size - footer.table_size, size), footer, size)
    if not frames.count or frames.data[-1] != frames.data[-2]:
        return None  # the last frame holds data: no member index before the table
    start, end = frames.packed[-2], frames.packed[-1]
    if end - start > sf.MAX_INDEX_FRAME + sf.SKIPPABLE_HEAD.size + sf.INDEX_HEADER.size:
        head = span(start, start + sf.SKIPPABLE_HEAD.size + sf.INDEX_HEADER.size)
        if sf.is_index_frame(head):
            raise IntegrityError(
                f"member index frame of {end - start} bytes is above the cap of"
                f" {sf.MAX_INDEX_FRAME}"
            )
        return None
    frame = span(start, end)
    header = sf.decode_index_header(frame, max_members=limits.max_members)
    if header is None:
        return None
    body = _index_body(frame[sf.SKIPPABLE_HEAD.size + sf.INDEX_HEADER.size :], header.body_size)
    members = sf.decode_index_body(
        body, header, tar_size=frames.tar_size, max_header_bytes=limits.max_header_bytes
    )
    by_path: dict[str, IndexedMember] = {}
    for member in members:
        if by_path.setdefault(member.path, member) is not member:
            raise IntegrityError(f"member index lists {member.path!r} twice")
    return SeekableIndex(
        reader.key, info.etag, size, frames, tuple(members), by_path, reader.requests
    )


def iter_member(
    driver: Driver,
    key: str,
    index: SeekableIndex,
    path: str,
    *,
    retrier: Retrier | None = None,
) -> Iterator[bytes]:
    """The data of the member stored under `path` (nothing for a folder or a symlink,
    whose target is `index.member(path).linkname`), read from only the frames that hold
    its header and data, in ranged reads pinned to `index.etag`. The member's tar
    header is checked against every field of its index entry before its first byte is
    yielded. Raises NotFound for a path the index does not list (before any read),
    IntegrityError when the frames or the member's tar header disagree with the index
    (possibly after some data was yielded: a caller streaming the bytes must then abort
    its response), PreconditionFailed when the object is no longer `index.etag`."""
    member = _listed(driver, key, index, path)
    return _member_data(_Reader(driver, key, index.etag, retrier or Retrier()), index, member)


def iter_member_range(
    driver: Driver,
    key: str,
    index: SeekableIndex,
    path: str,
    start: int,
    end: int,
    *,
    retrier: Retrier | None = None,
) -> Iterator[bytes]:
    """Bytes `start..end` (inclusive, within the member) of the member stored under
    `path`, read from only the frames that hold them (each checked against the seek
    table as `iter_member` checks it). The member's tar header is not read: a range of
    a member is answered without its header check."""
    member = _listed(driver, key, index, path)
    if not 0 <= start <= end < member.size:
        raise NotFound(f"{driver.url(key)}: bytes {start}-{end} are not in member {path!r}")
    reader = _Reader(driver, key, index.etag, retrier or Retrier())
    frames = index.frames
    lo_at, hi_at = member.data + start, member.data + end + 1
    for number, data in _frame_data(reader, frames, _frames_covering(frames, lo_at, hi_at)):
        at = frames.data[number]
        lo, hi = max(lo_at, at), min(hi_at, at + len(data))
        if lo < hi:
            yield data[lo - at : hi - at]


def _listed(driver: Driver, key: str, index: SeekableIndex, path: str) -> IndexedMember:
    member = index.member(path)
    if member is None:
        raise NotFound(f"{driver.url(key)}: the archive holds no member {path!r}")
    return member


def _member_data(reader: _Reader, index: SeekableIndex, member: IndexedMember) -> Iterator[bytes]:
    frames = index.frames
    start, end = member.header, member.data + member.size
    header = bytearray()
    for number, data in _frame_data(reader, frames, index.frames_for(member)):
        at = frames.data[number]
        lo, hi = max(start, at), min(end, at + len(data))
        if lo >= hi:
            continue
        if lo < member.data:
            cut = min(hi, member.data)
            header += data[lo - at : cut - at]
            if cut < member.data:
                continue
            _check_header(bytes(header), member, where=reader.where)
            lo = cut
        if lo < hi:
            yield data[lo - at : hi - at]
    if len(header) != member.data - member.header:
        raise IntegrityError(f"{reader.where}: the frames end before member {member.path!r}")


def _frames_covering(frames: FrameTable, start: int, end: int) -> range:
    first = bisect_right(frames.data, start) - 1
    stop = bisect_left(frames.data, end)
    return range(max(first, 0), max(stop, first + 1))


def _frame_data(reader: _Reader, frames: FrameTable, wanted: range) -> Iterator[tuple[int, bytes]]:
    """(frame number, its tar bytes) for each wanted frame, in windows of whole frames."""
    number = wanted.start
    while number < wanted.stop:
        last = number + 1
        while last < wanted.stop and frames.packed[last + 1] - frames.packed[number] <= WINDOW:
            last += 1
        base = frames.packed[number]
        window = reader.read(base, frames.packed[last])
        for k in range(number, last):
            packed = window[frames.packed[k] - base : frames.packed[k + 1] - base]
            yield k, _frame(packed, k, frames, where=reader.where)
        number = last


def _frame(packed: bytes, number: int, frames: FrameTable, *, where: str) -> bytes:
    """One frame's tar bytes, which must be exactly what the seek table says."""
    expected = frames.data[number + 1] - frames.data[number]

    def bounded(made: int, read: int) -> None:
        if made > expected:
            raise IntegrityError(
                f"{where}: frame {number} decompresses past the {expected} bytes its seek"
                " table entry gives"
            )

    if not packed.startswith(ZSTD_MAGIC):
        raise IntegrityError(f"{where}: seek table frame {number} is not a zstd frame")
    data = b"".join(decompress([packed], "zstd", watch=bounded))
    if len(data) != expected:
        raise IntegrityError(
            f"{where}: frame {number} holds {len(data)} bytes; its seek table entry says {expected}"
        )
    has_checksum = len(packed) > 4 and packed[4] & 0x04
    if frames.checksums is not None and has_checksum:
        if int.from_bytes(packed[-4:], "little") != frames.checksums[number]:
            raise IntegrityError(
                f"{where}: frame {number}'s checksum disagrees with its seek table entry"
            )
    return data


def _check_header(raw: bytes, member: IndexedMember, *, where: str) -> None:
    """The tar header(s) at the member's offset must be the member's, every field the
    index records included."""
    try:
        head = tf.decode_header(raw[: tf.BLOCK])
        records: dict[bytes, bytes] = {}
        at = tf.BLOCK
        if head.typeflag == tf.PAX_LOCAL:
            records = tf.parse_pax(raw[at : at + head.size])
            at += head.size + len(tf.padding(head.size))
            head = tf.decode_header(raw[at : at + tf.BLOCK])
            at += tf.BLOCK
        name = records.get(b"path", head.name)
        size = tf.pax_int(records[b"size"], "size") if b"size" in records else head.size
        mtime = tf.pax_int(records[b"mtime"], "mtime") if b"mtime" in records else head.mtime
        link = records.get(b"linkpath", head.linkname)
    except IntegrityError as e:
        raise IntegrityError(
            f"{where}: no tar header where the index puts member {member.path!r}: {e}"
        ) from None
    want = member.path.encode("utf-8", "surrogateescape")
    if member.type is EntryType.DIR:
        want += b"/"
    if (
        at != len(raw)
        or name != want
        or head.typeflag != _TYPEFLAGS[member.type]
        or size != member.size
        or head.mode != member.mode
        or mtime != member.mtime
        or link != member.linkname.encode("utf-8", "surrogateescape")
    ):
        raise IntegrityError(
            f"{where}: the tar header at {member.header} is not member {member.path!r}'s"
            " as the index records it"
        )


def _index_body(packed: bytes, size: int) -> bytearray:
    body = bytearray()

    def bounded(made: int, read: int) -> None:
        if made > size:
            raise IntegrityError(f"member index body decompresses past its {size} bytes")

    for piece in decompress([packed], "zstd", watch=bounded):
        body += piece
    if len(body) != size:
        raise IntegrityError(f"member index body holds {len(body)} bytes, not {size}")
    return body


class _Reader:
    """Exact ranged reads of one version of one object, retried."""

    def __init__(self, driver: Driver, key: str, etag: str, retrier: Retrier) -> None:
        self.driver, self.key, self.etag, self.retrier = driver, key, etag, retrier
        self.where = driver.url(key)
        self.requests = 0

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end)."""
        if end <= start:
            return b""

        def once() -> bytes:
            stream = self.driver.read(self.key, start=start, end=end - 1, if_match=self.etag)
            try:
                if (stream.start, stream.end) != (start, end - 1):
                    raise IntegrityError(
                        f"{self.where}: asked for bytes {start}-{end - 1}, got"
                        f" {stream.start}-{stream.end}"
                    )
                buffer = bytearray(end - start)
                view = memoryview(buffer)
                got = 0
                while got < len(buffer):
                    n = stream.readinto(view[got:])
                    if not n:
                        raise IntegrityError(
                            f"{self.where}: bytes {start}-{end - 1} ended after {got}"
                        )
                    got += n
                return bytes(buffer)
            finally:
                stream.close()

        self.requests += 1
        return self.retrier.call(once, what=f"read {self.where} {start}-{end - 1}")
