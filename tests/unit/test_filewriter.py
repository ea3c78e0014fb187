"""The download file writer: aligned blocks through O_DIRECT, a padded tail cut back to
size, and the page cache whenever O_DIRECT cannot be used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from argosy.artifacts.filewriter import ALIGN, BLOCK, FileWriter, aligned_buffer


def _write_all(writer: FileWriter, data: bytes) -> None:
    buffer = aligned_buffer()
    for offset in range(0, len(data), BLOCK):
        chunk = data[offset : offset + BLOCK]
        buffer[: len(chunk)] = chunk
        writer.write(offset, buffer, len(chunk))


@pytest.mark.parametrize("size", [1, ALIGN - 1, ALIGN, BLOCK, 3 * BLOCK + 7])
@pytest.mark.parametrize("direct", [True, False])
def test_blocks_written_at_offsets_make_exactly_the_file(
    tmp_path: Path, size: int, direct: bool
) -> None:
    data = os.urandom(size)
    writer = FileWriter(tmp_path / "f.tmp", size, target=tmp_path / "f", direct=direct)
    _write_all(writer, data)
    writer.finish(fsync=False)
    assert (tmp_path / "f.tmp").read_bytes() == data


def test_o_direct_is_used_where_the_filesystem_allows_it(tmp_path: Path) -> None:
    writer = FileWriter(tmp_path / "f.tmp", 2 * BLOCK, target=tmp_path / "f")
    assert writer._direct_fd >= 0
    writer.abort()
    assert not (tmp_path / "f.tmp").exists()


def test_an_unaligned_block_goes_through_the_page_cache(tmp_path: Path) -> None:
    data = os.urandom(3 * ALIGN)
    writer = FileWriter(tmp_path / "f.tmp", len(data), target=tmp_path / "f")
    buffer = aligned_buffer()
    buffer[:100] = data[:100]
    writer.write(0, buffer, 100)
    buffer[: len(data) - 100] = data[100:]
    writer.write(100, buffer, len(data) - 100)
    writer.finish(fsync=True)
    assert (tmp_path / "f.tmp").read_bytes() == data


def test_the_page_cache_gets_writes_of_at_most_a_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argosy.artifacts import filewriter

    sizes: list[int] = []
    real = os.pwrite

    def counted(fd: int, data: memoryview, offset: int) -> int:
        sizes.append(len(data))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", counted)  # the os module filewriter writes through
    data = os.urandom(2 * BLOCK + 5)
    writer = FileWriter(tmp_path / "f.tmp", len(data), target=tmp_path / "f", direct=False)
    _write_all(writer, data)
    writer.finish(fsync=False)
    assert (tmp_path / "f.tmp").read_bytes() == data
    assert max(sizes) == filewriter.PIECE and sum(sizes) == len(data)
