"""Streaming compression for archives: zstd, gzip, or none, over chunk iterators.

Measured here on a 321 MiB tar of ~20k real text files (bench/archive_local.py, quiet
machine; MiB/s of input, compress / decompress, ratio):

    zstd -3, 2 workers (2 cores)    ~690 / ~1300   7.1   Argosy's default for tar.zst
    zstd -3, one thread             ~350 / ~1380   7.1
    gzip ISA-L level 1 (isal)       ~650 / ~1100   4.7   Argosy's default for tar.gz
    gzip ISA-L level 3              ~280 / ~1170   5.0
    gzip zlib-ng level 6            ~50            5.6
    gzip zlib level 6               ~26-45         5.7   Argo's default (Go, one core)

so gzip goes through ISA-L (python-isal), never through `tarfile`'s 'w|gz' (level 9,
~4 MiB/s). gzip levels use zlib's 1-9 scale, as Argo's `compressionLevel` does, mapped
onto ISA-L's four levels (0 -> 0, 1-2 -> 1, 3-5 -> 2, 6-9 -> 3).

Decompression keeps memory bounded whatever the input: every call yields at most
about 1 MiB of gzip or 4 MiB of zstd (a few KiB of hostile zstd or gzip can expand to
gigabytes), zstd windows
above 128 MiB are refused, and a stream that is truncated or corrupt raises
IntegrityError instead of ending early. How far it may expand is the caller's to
decide: `decompress(watch=...)` hands it the bytes made and read before each piece.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Literal, cast

import zstandard
from isal import isal_zlib

from argosy.artifacts.archive.zstdframes import MAGIC as ZSTD_MAGIC
from argosy.artifacts.archive.zstdframes import MAX_BLOCK, FrameWalker, Unit, is_skippable
from argosy.artifacts.errors import IntegrityError, InvalidSpec

Codec = Literal["zstd", "gzip", "none"]
Detected = Literal["zstd", "gzip", "zip", "tar", "xz", "bzip2"]

CHUNK = 1 << 20
DEFAULT_LEVEL: dict[str, int] = {"zstd": 3, "gzip": 1}
_ISAL_LEVEL = (0, 1, 1, 2, 2, 2, 3, 3, 3, 3)
GZIP_MAGIC = b"\x1f\x8b"
ISAL_ERROR = cast("type[Exception]", isal_zlib.error)  # isal's stub types it as an instance


MAX_THREADS = 4  # zstd workers; each holds about ZSTD_JOB_SIZE x 3 in flight
ZSTD_JOB_SIZE = 4 << 20  # 3% faster tar.zst uploads here than 2 MiB jobs; 8 MiB no faster
# zstd is decompressed this much at a time, into one buffer: a frame of ours in one call
# that holds the GIL once. The decompressor's default (128 KiB pieces, then joined)
# took the GIL back every 128 KiB, each time waiting on the extracting thread, and
# copied every byte once more: extraction from memory ran ~8% slower (hand-timed).
ZSTD_PIECE = ZSTD_JOB_SIZE


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (in
    a pod, `os.cpu_count()` is the whole node's)."""
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_threads() -> int:
    """zstd worker threads: one per usable CPU up to MAX_THREADS when there is more than
    one, else none (compression in the calling thread)."""
    cpus = usable_cpus()
    return min(cpus, MAX_THREADS) if cpus > 1 else 0


def isal_level(level: int | None) -> int:
    """ISA-L's level (0-3) for a zlib-scale level (0-9; None: the gzip default)."""
    lvl = DEFAULT_LEVEL["gzip"] if level is None else level
    if not 0 <= lvl <= 9:
        raise InvalidSpec(f"gzip/deflate level must be between 0 and 9, not {lvl}")
    return _ISAL_LEVEL[lvl]


def zstd_level(level: int | None) -> int:
    """zstd's level for `level` (None: the default), checked."""
    lvl = DEFAULT_LEVEL["zstd"] if level is None else level
    if not -7 <= lvl <= 22:
        raise InvalidSpec(f"zstd level must be between -7 and 22, not {lvl}")
    return lvl


def compress(
    chunks: Iterable[bytes], codec: Codec, *, level: int | None = None, threads: int | None = None
) -> Iterator[bytes]:
    """Compress a stream of chunks; `threads` applies to zstd only (default: all cores).
    This is one zstd frame; tar.zst archives are written as seekable frames instead
    (seekwriter.py)."""
    if codec == "none":
        return (c for c in chunks if c)
    if codec == "zstd":
        lvl = zstd_level(level)
        workers = default_threads() if threads is None else threads
        params = zstandard.ZstdCompressionParameters.from_level(
            lvl, threads=workers, job_size=ZSTD_JOB_SIZE if workers > 0 else 0, write_checksum=1
        )
        cctx = zstandard.ZstdCompressor(compression_params=params)
        return _run(chunks, cctx.compressobj())
    if codec == "gzip":
        return _run(chunks, isal_zlib.compressobj(isal_level(level), isal_zlib.DEFLATED, 31))
    raise InvalidSpec(f"unknown compression {codec!r} (zstd, gzip or none)")


def _run(
    chunks: Iterable[bytes],
    engine: zstandard.ZstdCompressionObj | isal_zlib.Compress,
) -> Iterator[bytes]:
    for chunk in chunks:
        out = engine.compress(chunk)
        if out:
            yield out
    out = engine.flush()
    if out:
        yield out


def detect(head: bytes) -> Detected | None:
    """What a stream is, from its first bytes (give at least 512 to recognise tar)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or is_skippable(head[:4]):
        return "zstd"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head[257:262] == b"ustar" or (len(head) >= 512 and _v7_checksum_ok(head[:512])):
        return "tar"
    return None


def _v7_checksum_ok(block: bytes) -> bool:
    field = block[148:156].split(b"\x00", 1)[0].strip(b" ")
    if not field or field.strip(b"01234567"):
        return False
    return int(field, 8) == sum(block[:148]) + 256 + sum(block[156:])


def peek(chunks: Iterable[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first `size` bytes of a stream (fewer if it is shorter), and the whole stream."""
    it = iter(chunks)
    head: list[bytes] = []
    have = 0
    for chunk in it:
        have += len(chunk)
        if have >= size:
            head.append(chunk)
            break
        # a chunk's buffer may be reused once the next is asked for: keep a copy
        head.append(bytes(chunk))
    return b"".join(head)[:size], itertools.chain(head, it)


Watch = Callable[[int, int], None]


def decompress(
    chunks: Iterable[bytes], codec: Codec | Literal["auto"], *, watch: Watch | None = None
) -> Iterator[bytes]:
    """Decompress a stream; `auto` recognises zstd and gzip by their magic bytes and
    passes anything else through unchanged.

    `watch(made, read)` is called before each piece of output is yielded, with the bytes
    made so far and the compressed bytes consumed to make them (both counted here, in the
    decompressor's own thread, so they always agree); it may raise to stop a bomb."""
    if codec == "auto":
        head, stream = peek(chunks, 512)
        found = detect(head)
        if found in ("xz", "bzip2"):
            raise InvalidSpec(f"{found}-compressed archives are not supported (zstd, gzip)")
        codec = "zstd" if found == "zstd" else "gzip" if found == "gzip" else "none"
        chunks = stream
    if codec == "none":
        return (c for c in chunks if c)
    if codec == "zstd":
        return _unzstd(chunks, watch)
    if codec == "gzip":
        return _gunzip(chunks, watch)
    raise InvalidSpec(f"unknown compression {codec!r} (zstd, gzip, none or auto)")


def _unzstd(chunks: Iterable[bytes], watch: Watch | None) -> Iterator[bytes]:
    unzstd = _Unzstd(watch)
    try:
        for chunk in chunks:
            yield from unzstd.feed(chunk)
    except zstandard.ZstdError as e:
        raise IntegrityError(f"zstd stream corrupt: {e}") from None
    unzstd.check_end()


# a unit cut by a chunk boundary is completed from at most this much of the next chunk
# (a block is 3 + 128 KiB at most), rather than by joining the whole chunk to its start
_BRIDGE = MAX_BLOCK + 64


class _Unzstd:
    """Decompress a zstd stream fed in chunks, whole blocks at a time (see zstdframes)."""

    def __init__(self, watch: Watch | None) -> None:
        self.dctx = zstandard.ZstdDecompressor()  # refuses windows above 128 MiB
        self.walker = FrameWalker()
        self.dobj: zstandard.ZstdDecompressionObj | None = None
        self.left = b""  # the start of a unit the last chunk cut
        self.frames = 0
        self.watch = watch
        self.made = self.read = 0  # for `watch`

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        begin = 0
        if self.left and len(chunk) > _BRIDGE:
            bridge = self.left + chunk[:_BRIDGE]
            used = yield from self._units(bridge, 0)
            begin = used - len(self.left)  # > 0: the cut unit ends inside the bridge
        elif self.left:
            chunk = self.left + chunk
        pos = yield from self._units(chunk, begin)
        self.left = bytes(memoryview(chunk)[pos:]) if pos < len(chunk) else b""

    def _units(self, data: bytes, start: int) -> Generator[bytes, None, int]:
        """Decompress the whole units of data[start:]; returns where the last one ends."""
        view = memoryview(data)
        pos = start  # start: first byte not yet fed to the decompressor
        budget = 0
        for piece in self.walker.units(data, start):
            if piece.unit is Unit.SKIP:
                self.read += piece.end - start
                start = piece.end
            elif piece.unit is Unit.START:
                self.dobj = self.dctx.decompressobj(write_size=ZSTD_PIECE + MAX_BLOCK)
                self.frames += 1
                budget = 0
            else:
                budget += piece.max_out
                if budget >= ZSTD_PIECE or piece.unit is Unit.END:
                    out = self._decompress(view[start : piece.end])
                    if out:
                        yield out
                    start, budget = piece.end, 0
                    if piece.unit is Unit.END:
                        assert self.dobj is not None
                        if not self.dobj.eof:
                            raise IntegrityError(
                                f"zstd frame {self.frames} did not end where its last block"
                                " did: corrupt stream"
                            )
                        self.dobj = None
            pos = piece.end
        if start < pos and self.dobj is not None:
            out = self._decompress(view[start:pos])
            if out:
                yield out
        view.release()
        return pos

    def _decompress(self, data: memoryview) -> bytes:
        assert self.dobj is not None
        out: bytes = self.dobj.decompress(data)
        if self.watch is not None:
            self.made, self.read = self.made + len(out), self.read + len(data)
            self.watch(self.made, self.read)
        return out

    def check_end(self) -> None:
        if self.left or not self.walker.at_frame_boundary:
            raise IntegrityError(
                "zstd stream truncated: it ends inside a frame at byte"
                f" {self.walker.offset + len(self.left)}"
            )
        if not self.frames:
            raise IntegrityError("zstd stream holds no frame: empty or not zstd")


def _slices(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Chunks of at most CHUNK bytes: the gzip decompressor copies its unconsumed tail on
    every call, so a large chunk would be copied over and over."""
    for chunk in chunks:
        if len(chunk) <= CHUNK:
            yield chunk
        else:
            for i in range(0, len(chunk), CHUNK):
                yield chunk[i : i + CHUNK]


def _gunzip(chunks: Iterable[bytes], watch: Watch | None) -> Iterator[bytes]:
    dobj = isal_zlib.decompressobj(wbits=31)
    seen = 0  # compressed bytes seen, for messages
    made = 0  # for `watch`
    in_member = False
    padding = False  # only zeros may follow once a zero byte followed a member
    try:
        for chunk in _slices(chunks):
            seen += len(chunk)
            pending = chunk
            while True:
                if not in_member:
                    stripped = pending.lstrip(b"\x00")
                    padding = padding or len(stripped) != len(pending)
                    if not stripped:
                        break
                    if padding:
                        raise IntegrityError("gzip stream has data after its trailing padding")
                    dobj = isal_zlib.decompressobj(wbits=31)
                    in_member = True
                    pending = stripped
                out = dobj.decompress(pending, CHUNK)
                if watch is not None:
                    made += len(out)
                    watch(made, seen - len(dobj.unused_data if dobj.eof else dobj.unconsumed_tail))
                if out:
                    yield out
                if dobj.eof:
                    in_member = False
                    pending = dobj.unused_data
                    continue
                pending = dobj.unconsumed_tail
                if not pending and not out:
                    break  # all input taken and no output left: needs the next chunk
    except ISAL_ERROR as e:
        raise IntegrityError(f"gzip stream corrupt near byte {seen}: {e}") from None
    if in_member:
        raise IntegrityError(f"gzip stream truncated: it ends inside a member after {seen} bytes")
    if not seen:
        raise IntegrityError("gzip stream is empty")
