"""Codecs: zstd and gzip round trips over any chunking, bounded output, and truncated
or corrupt input refused with IntegrityError instead of ending early."""

from __future__ import annotations

import gzip
import os
import subprocess
import tracemalloc

import pytest
import zstandard

from argosy.artifacts.archive import compress, decompress, detect
from argosy.artifacts.archive.codecs import ZSTD_PIECE
from argosy.artifacts.archive.seekwriter import compress_seekable
from argosy.artifacts.errors import IntegrityError, InvalidSpec
from tests.archive.helpers import chunks, pooled

DATA = os.urandom(300_000) + b"text compresses well " * 50_000 + bytes(2_000_000)


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("size", [4093, 1 << 20])
def test_a_stream_round_trips_whatever_its_chunking(codec: str, size: int) -> None:
    packed = b"".join(compress(chunks(DATA, 1 << 20), codec))  # type: ignore[arg-type]
    assert b"".join(decompress(chunks(packed, size), "auto")) == DATA


@pytest.mark.parametrize("size", [131_137, 200_003, 700_001])
def test_blocks_and_frames_cut_by_large_chunks_decode_the_same(size: int) -> None:
    """Chunks a little over one block, as downloaded parts are: a block, frame header or
    checksum cut at a chunk's end is completed from the start of the next one. The
    chunks are one reused buffer, as a download's pool hands them out."""
    data = os.urandom(1_500_000) + DATA
    packed = b"".join(compress_seekable(chunks(data, 1 << 20), frame_size=700_000))
    assert b"".join(decompress(pooled(packed, size), "zstd")) == data


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_a_stream_fed_one_byte_at_a_time_decodes_the_same(codec: str) -> None:
    data = DATA[:20_000] + DATA[-20_000:]
    packed = b"".join(compress([data], codec))  # type: ignore[arg-type]
    assert b"".join(decompress(chunks(packed, 1), codec)) == data  # type: ignore[arg-type]


def test_the_command_line_tools_read_what_we_compress(tmp_path) -> None:
    zst = tmp_path / "a.zst"
    zst.write_bytes(b"".join(compress(chunks(DATA), "zstd", level=5)))
    gz = tmp_path / "a.gz"
    gz.write_bytes(b"".join(compress(chunks(DATA), "gzip", level=6)))
    assert gzip.decompress(gz.read_bytes()) == DATA
    assert subprocess.run(["gzip", "-t", str(gz)]).returncode == 0
    assert zstandard.ZstdDecompressor().decompressobj().decompress(zst.read_bytes()) == DATA


def test_decompressed_chunks_stay_bounded_even_for_a_bomb() -> None:
    bomb = zstandard.ZstdCompressor(level=19).compress(bytes(256 << 20))
    assert len(bomb) < 64 * 1024
    biggest = max(len(c) for c in decompress([bomb], "zstd"))
    assert biggest <= ZSTD_PIECE + 128 * 1024
    gz_bomb = gzip.compress(bytes(64 << 20), compresslevel=9)
    assert max(len(c) for c in decompress([gz_bomb], "gzip")) <= 1 << 20


def test_a_frame_of_our_own_archives_is_decompressed_whole_in_one_piece() -> None:
    """Not in the decompressor's 128 KiB pieces: each one takes the GIL back."""
    lines = (
        b"%08d a log line %d of %x\n" % (i, i * 7919 % 1_000_003, i * i) for i in range(300_000)
    )
    data = b"".join(lines)[: 2 * ZSTD_PIECE]
    packed = b"".join(compress_seekable(chunks(data, 1 << 20)))
    pieces = list(decompress([packed], "zstd"))
    assert [len(p) for p in pieces] == [ZSTD_PIECE, ZSTD_PIECE]
    assert b"".join(pieces) == data


def test_a_chunk_of_a_million_tiny_zstd_blocks_is_walked_as_it_is_decompressed() -> None:
    """Frames of 16 MiB of zeros are 128 RLE blocks of 4 bytes each: 12,000 of them in
    one 6 MiB chunk, as a download hands over a part, are 1.5 million blocks."""
    frame = zstandard.ZstdCompressor().compress(bytes(16 << 20))
    stream = decompress([frame * 12_000], "zstd")
    tracemalloc.start()
    try:
        first = next(stream)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        stream.close()  # type: ignore[attr-defined]
    assert len(first) >= 1 << 20
    assert peak < 3 * ZSTD_PIECE  # a list of every block took ~210 MiB


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
@pytest.mark.parametrize("cut", [1, 10, 0.5, -1])
def test_a_truncated_stream_is_an_integrity_error(codec: str, cut: float) -> None:
    packed = b"".join(compress(chunks(DATA), codec))  # type: ignore[arg-type]
    end = int(len(packed) * cut) if isinstance(cut, float) else cut % len(packed)
    with pytest.raises(IntegrityError, match="truncated"):
        b"".join(decompress(chunks(packed[:end]), codec))  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_a_flipped_byte_is_an_integrity_error(codec: str) -> None:
    packed = bytearray(b"".join(compress(chunks(DATA), codec)))  # type: ignore[arg-type]
    packed[len(packed) // 2] ^= 0x40
    with pytest.raises(IntegrityError, match="corrupt"):
        b"".join(decompress([bytes(packed)], codec))  # type: ignore[arg-type]


def test_empty_input_is_not_a_valid_compressed_stream() -> None:
    for codec in ("zstd", "gzip"):
        with pytest.raises(IntegrityError):
            list(decompress([], codec))


def test_concatenated_frames_and_members_and_skippable_frames_are_read() -> None:
    one = zstandard.ZstdCompressor().compress(b"abc")
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"skip"
    assert b"".join(decompress([skippable, one, one], "auto")) == b"abcabc"
    member = gzip.compress(b"xyz")
    assert b"".join(decompress([member + member + bytes(512)], "auto")) == b"xyzxyz"


def test_garbage_after_a_gzip_padding_is_refused() -> None:
    member = gzip.compress(b"xyz")
    with pytest.raises(IntegrityError, match="after its trailing padding"):
        list(decompress([member + bytes(8) + member], "gzip"))


def test_formats_are_detected_by_their_magic_bytes() -> None:
    assert detect(gzip.compress(b"")) == "gzip"
    assert detect(zstandard.ZstdCompressor().compress(b"")) == "zstd"
    assert detect(b"PK\x03\x04rest") == "zip"
    assert detect(b"\xfd7zXZ\x00") == "xz"
    assert detect(bytes(257) + b"ustar\x0000" + bytes(250)) == "tar"
    assert detect(b"just some text") is None


def test_xz_in_auto_mode_is_refused_by_name() -> None:
    with pytest.raises(InvalidSpec, match="xz-compressed"):
        list(decompress([b"\xfd7zXZ\x00" + bytes(600)], "auto"))


def test_levels_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidSpec):
        compress([], "gzip", level=12)
    with pytest.raises(InvalidSpec):
        compress([], "zstd", level=40)
