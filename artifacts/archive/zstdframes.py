"""Walk the structure of a zstd stream without decompressing it.

python-zstandard's streaming decompressors either return everything one input
chunk expands to (a 1 KiB chunk of RLE blocks became 32 MiB here: a zip bomb in
memory) or bound their output but report a truncated frame as a clean end of
stream. Walking frame and block headers (RFC 8878) fixes both: the decompressor is
fed whole blocks, at most `MAX_BLOCK` bytes of output each, and we know whether the
input stopped at a frame boundary. The walk costs a few microseconds per block.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import NamedTuple

from argosy.artifacts.errors import IntegrityError

MAGIC = b"\x28\xb5\x2f\xfd"
MAX_BLOCK = 128 * 1024  # the most one block can decompress to
_DICT_ID_SIZE = (0, 1, 2, 4)
_FCS_SIZE = (0, 2, 4, 8)


class Unit(Enum):
    START = "start"  # a frame header: begin a new frame
    DATA = "data"  # a block inside a frame
    END = "end"  # the last piece of a frame (last block or checksum)
    SKIP = "skip"  # (part of) a skippable frame: no output, not fed to the decompressor


class Piece(NamedTuple):
    end: int  # offset in the buffer just past this unit
    max_out: int  # the most output it can produce
    unit: Unit


def is_skippable(head: bytes) -> bool:
    return len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50


class FrameWalker:
    """Feed buffers in; get back the whole units they hold, in order."""

    def __init__(self) -> None:
        self._state = "frame"  # frame | block | checksum | skip
        self._checksum = False
        self._skip_left = 0
        self.offset = 0  # stream position of the next unit, for error messages

    @property
    def at_frame_boundary(self) -> bool:
        return self._state == "frame"

    def _corrupt(self, why: str) -> IntegrityError:
        return IntegrityError(f"zstd stream corrupt at byte {self.offset}: {why}")

    def units(self, buf: bytes | bytearray | memoryview, start: int) -> Iterator[Piece]:
        """The whole units in buf[start:] (a skippable frame may come in parts), one at
        a time: a 16 MiB chunk can hold four million 4-byte blocks, and a list of them
        took ~550 MiB (and seconds) before the first byte came out."""
        pos = start
        size = len(buf)
        while pos < size:
            piece = self._next(buf, pos, size)
            if piece is None:
                break
            self.offset += piece.end - pos
            pos = piece.end
            yield piece

    def _next(self, buf: bytes | bytearray | memoryview, pos: int, size: int) -> Piece | None:
        if self._state == "skip":
            end = min(size, pos + self._skip_left)
            self._skip_left -= end - pos
            if not self._skip_left:
                self._state = "frame"
            return Piece(end, 0, Unit.SKIP)
        if self._state == "block":
            if size - pos < 3:
                return None
            header = int.from_bytes(buf[pos : pos + 3], "little")
            last, kind, block_size = header & 1, (header >> 1) & 3, header >> 3
            if kind == 3:
                raise self._corrupt("reserved block type")
            if block_size > MAX_BLOCK:
                raise self._corrupt("block larger than 128 KiB")
            end = pos + 3 + (1 if kind == 1 else block_size)
            if end > size:
                return None
            max_out = MAX_BLOCK if kind == 2 else block_size
            if not last:
                return Piece(end, max_out, Unit.DATA)
            if self._checksum:
                self._state = "checksum"
                return Piece(end, max_out, Unit.DATA)
            self._state = "frame"
            return Piece(end, max_out, Unit.END)
        if self._state == "checksum":
            if size - pos < 4:
                return None
            self._state = "frame"
            return Piece(pos + 4, 0, Unit.END)
        if size - pos < 4:
            return None
        head = bytes(buf[pos : pos + 4])
        if is_skippable(head):
            if size - pos < 8:
                return None
            self._skip_left = int.from_bytes(buf[pos + 4 : pos + 8], "little")
            self._state = "skip" if self._skip_left else "frame"
            return Piece(pos + 8, 0, Unit.SKIP)
        if head != MAGIC:
            raise self._corrupt("not a zstd frame")
        if size - pos < 5:
            return None
        descriptor = buf[pos + 4]
        if descriptor & 0x08:
            raise self._corrupt("reserved header bit set")
        single_segment = descriptor & 0x20
        fcs_flag = descriptor >> 6
        fcs = _FCS_SIZE[fcs_flag] if fcs_flag or not single_segment else 1
        end = pos + 5 + (0 if single_segment else 1) + _DICT_ID_SIZE[descriptor & 3] + fcs
        if end > size:
            return None
        self._checksum = bool(descriptor & 0x04)
        self._state = "block"
        return Piece(end, 0, Unit.START)
