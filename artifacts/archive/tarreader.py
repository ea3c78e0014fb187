"""Parse a tar stream (an iterator of bytes chunks) into members, one pass, bounded memory.

Our own parser rather than `tarfile`'s: Python 3.11.7's tarfile predates the fixes
for CVE-2025-4517 and friends, buffers whole pax headers whatever they declare, and
raises a zoo of exceptions on garbage. This one holds at most one chunk plus one
header in memory, caps pax headers and long names (`ExtractLimits.max_header_bytes`),
and raises only IntegrityError (malformed or truncated input) or InvalidSpec (a
member type Argosy does not handle; a compressed stream expanding past
`ExtractLimits.max_expansion`, as ExpansionRefused, checked by the decompressor as it
goes). It decides nothing about safety: paths and link targets come out exactly as
stored, for the extractor to judge.

A stream must end with tar's end-of-archive block (a truncated archive must not look
complete); whatever follows that block is read and dropped, so a compressed stream
is decompressed to its end and checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from argosy.artifacts.archive import tarformat as tf
from argosy.artifacts.archive.codecs import Codec, decompress, detect, peek
from argosy.artifacts.archive.entry import Entry, EntryType, Member
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.archive.pipeline import background
from argosy.artifacts.errors import IntegrityError, InvalidSpec

_TYPES = {
    tf.REGULAR: EntryType.FILE,
    b"\x00": EntryType.FILE,
    tf.CONTIGUOUS: EntryType.FILE,
    tf.HARDLINK: EntryType.HARDLINK,
    tf.SYMLINK: EntryType.SYMLINK,
    tf.CHARDEV: EntryType.CHARDEV,
    tf.BLOCKDEV: EntryType.BLOCKDEV,
    tf.DIRECTORY: EntryType.DIR,
    b"D": EntryType.DIR,
    tf.FIFO: EntryType.FIFO,
}
_UNSUPPORTED = {
    b"S": "a GNU sparse file",
    b"M": "a multi-volume continuation",
    b"V": "a volume label",
    b"N": "an old GNU long-name record",
}
_MAX_META_IN_A_ROW = 16  # pax/long-name headers before a real member


class _Input:
    """A read cursor over the chunks; keeps only the current chunk."""

    __slots__ = ("_chunks", "_buf", "_pos", "offset")

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = b""
        self._pos = 0
        self.offset = 0  # bytes consumed so far

    def _fill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buf, self._pos = chunk, 0
                return True
        self._buf, self._pos = b"", 0
        return False

    def read(self, n: int) -> bytes:
        """n bytes, or fewer at the end of the stream: always `bytes`, whatever the
        chunks are (a download hands out its pooled bytearrays), because headers and
        pax records are parsed and used as dict keys from what this returns."""
        if self._pos + n <= len(self._buf):
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            self.offset += n
            return out if type(out) is bytes else bytes(out)
        parts = []
        while n:
            if self._pos >= len(self._buf) and not self._fill():
                break
            part = self._buf[self._pos : self._pos + n]
            self._pos += len(part)
            self.offset += len(part)
            n -= len(part)
            parts.append(part)
        return b"".join(parts)

    def take(self, n: int) -> bytes:
        """Up to n bytes from the current chunk (no joining); b'' at the end."""
        if self._pos >= len(self._buf) and not self._fill():
            return b""
        if self._pos == 0 and len(self._buf) <= n:
            part = self._buf
        else:
            part = self._buf[self._pos : self._pos + n]
        self._pos += len(part)
        self.offset += len(part)
        return part

    def skip(self, n: int) -> int:
        """Pass over n bytes (fewer at the end of the stream); how many were passed."""
        if self._pos + n <= len(self._buf):
            self._pos += n
            self.offset += n
            return n
        return len(self.read(n))

    def close(self) -> None:
        """Stop the upstream at once (a background stage, a download) when we stop early."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def drain(self) -> None:
        self._buf, self._pos = b"", 0
        for chunk in self._chunks:
            self.offset += len(chunk)


class _Data:
    """One member's data: an iterator the reader can finish on the consumer's behalf."""

    __slots__ = ("_source", "left", "_name", "_padding")

    def __init__(self, source: _Input, size: int, name: str) -> None:
        self._source = source
        self.left = size
        self._name = name
        self._padding = -size % tf.BLOCK

    def __iter__(self) -> Iterator[bytes]:
        # a generator: a `for` loop over it ends without a StopIteration being made
        while self.left:
            yield self.__next__()

    def __next__(self) -> bytes:
        if not self.left:
            raise StopIteration
        piece = self._source.take(self.left)
        if piece:
            self.left -= len(piece)
            return piece
        raise IntegrityError(
            f"tar archive truncated inside member {self._name!r} ({self.left} bytes missing)"
        )

    def finish(self) -> None:
        while self.left:
            next(self)
        padding = self._padding
        if padding:
            if self._source.skip(padding) != padding:
                raise IntegrityError(f"tar archive truncated after member {self._name!r}")
            self._padding = 0


def read_tar(
    chunks: Iterable[bytes],
    *,
    compression: Codec | Literal["auto"] = "auto",
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> Iterator[Member]:
    """Yield the members of a tar stream, in order; `auto` recognises zstd and gzip."""
    if compression == "auto":
        head, chunks = peek(chunks, 512)
        found = detect(head)
        if found == "zip":
            raise InvalidSpec(
                "this is a zip archive, not a tar stream: read it with the zip reader"
            )
        if found in ("xz", "bzip2"):
            raise InvalidSpec(f"{found}-compressed archives are not supported (zstd, gzip)")
        compression = "zstd" if found == "zstd" else "gzip" if found == "gzip" else "none"
    if compression == "none":  # nothing to expand: every byte read is a byte of the tar
        return _members(_Input(decompress(chunks, "none")), limits)

    def watch(made: int, read: int) -> None:
        limits.check_expansion(made=made, read=read, what="archive")

    stream = decompress(chunks, compression, watch=watch if limits.max_expansion else None)
    # decompress on one core while we extract on the other; a refusal of the watch
    # there is raised here
    return _members(_Input(background(stream)), limits)


def _members(source: _Input, limits: ExtractLimits) -> Iterator[Member]:
    try:
        yield from _parse(source, limits)
    finally:
        source.close()


def _parse(source: _Input, limits: ExtractLimits) -> Iterator[Member]:
    local: dict[bytes, bytes] = {}
    global_: dict[bytes, bytes] = {}
    meta_in_a_row = 0
    data: _Data | None = None
    block_size, zero_block, decode_header = tf.BLOCK, tf.ZERO_BLOCK, tf.decode_header
    meta_types = (tf.PAX_LOCAL, tf.PAX_GLOBAL, tf.GNU_LONGNAME, tf.GNU_LONGLINK)
    while True:
        if data is not None:
            data.finish()
        at = source.offset
        block = source.read(block_size)
        if len(block) < block_size:
            raise IntegrityError(
                "tar archive truncated: it ends without its end-of-archive marker"
                if not block
                else f"tar archive truncated inside a header at byte {at}"
            )
        if block == zero_block:
            source.drain()
            return
        try:
            raw = decode_header(block)
        except IntegrityError as e:
            raise IntegrityError(f"{e} (header at byte {at})") from None
        if raw.typeflag in meta_types:
            meta_in_a_row += 1
            if meta_in_a_row > _MAX_META_IN_A_ROW:
                raise IntegrityError(
                    f"tar archive has {meta_in_a_row} extended headers in a"
                    f" row at byte {at}: corrupt"
                )
            payload = _read_meta(source, raw, limits)
            if raw.typeflag == tf.PAX_LOCAL:
                local.update(tf.parse_pax(payload))
            elif raw.typeflag == tf.PAX_GLOBAL:
                global_.update(tf.parse_pax(payload))
                if sum(len(k) + len(v) for k, v in global_.items()) > limits.max_header_bytes:
                    raise InvalidSpec(
                        "tar archive's global pax records exceed the cap of"
                        f" {limits.max_header_bytes} bytes"
                    )
            else:
                key = b"path" if raw.typeflag == tf.GNU_LONGNAME else b"linkpath"
                local[key] = payload.split(b"\x00", 1)[0]
            continue
        meta_in_a_row = 0
        records = {**global_, **local} if global_ else local
        if local:
            local = {}
        entry = _entry(raw, records)
        data = _Data(
            source,
            entry.size if entry.type is EntryType.FILE else raw.size if raw.typeflag == b"D" else 0,
            entry.path,
        )
        yield Member(entry, data)


def _read_meta(source: _Input, raw: tf.RawHeader, limits: ExtractLimits) -> bytes:
    if raw.size > limits.max_header_bytes:
        raise InvalidSpec(
            f"tar archive has an extended header of {raw.size} bytes, above"
            f" the cap of {limits.max_header_bytes}"
        )
    payload = source.read(raw.size + (-raw.size % tf.BLOCK))
    if len(payload) < raw.size:
        raise IntegrityError("tar archive truncated inside an extended header")
    return payload[: raw.size]


def _entry(raw: tf.RawHeader, pax: dict[bytes, bytes]) -> Entry:
    name = pax.get(b"path", raw.name).decode("utf-8", "surrogateescape")
    if pax and any(key.startswith(b"GNU.sparse.") for key in pax):
        raise InvalidSpec(f"tar member {name!r} is a GNU sparse file: not supported")
    kind = _TYPES.get(raw.typeflag)
    if kind is None:
        what = _UNSUPPORTED.get(raw.typeflag, f"of unknown type {raw.typeflag!r}")
        raise InvalidSpec(f"tar member {name!r} is {what}: not supported")
    if kind is EntryType.FILE and raw.typeflag == b"\x00" and name.endswith("/"):
        kind = EntryType.DIR  # pre-POSIX tars mark folders by the trailing slash only
    size = tf.pax_int(pax[b"size"], "size") if b"size" in pax else raw.size
    if size < 0:
        raise IntegrityError(f"tar member {name!r} declares a negative size")
    mtime = tf.pax_int(pax[b"mtime"], "mtime") if b"mtime" in pax else raw.mtime
    link = pax.get(b"linkpath", raw.linkname).decode("utf-8", "surrogateescape")
    return Entry(name, kind, size if kind is EntryType.FILE else 0, raw.mode, mtime, link)
