"""Decompression bombs: an archive that decompresses to more than `max_expansion` times
the bytes read (1000:1 by default, checked once 64 MiB is out) is refused, with nothing
left; ordinary compressible trees, and small archives of anything, pass.

The bombs are generated small: tar.zst of zeros (~30,000:1), tar.gz and zip of zeros
(~1,030:1, deflate's ceiling)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
import zstandard

from argosy.artifacts.archive import (
    ExpansionRefused,
    ExtractLimits,
    extract_tar,
    extract_zip,
    write_archive,
)
from argosy.artifacts.archive.tarformat import encode_header
from argosy.artifacts.errors import InvalidSpec
from tests.archive.helpers import (
    MiB,
    listing,
    log_text,
    pooled,
    tar_bomb,
    zeros_tar,
    zip_bomb,
)

GRACE = 64 * MiB


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    return tmp_path


def _from_zip(data: bytes, dest: Path, **kwargs: object) -> object:
    return extract_zip(lambda start, end: data[start:end], len(data), dest, **kwargs)  # type: ignore[arg-type]


def _refused(world: Path, extract: object) -> ExpansionRefused:
    before = listing(world)
    with pytest.raises(ExpansionRefused) as refused:
        extract(world / "a" / "dest")  # type: ignore[operator]
    assert listing(world) == before  # no destination, no staging folder
    return refused.value


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
def test_a_tar_bomb_is_refused_soon_after_64_mib_and_leaves_nothing(
    codec: str, world: Path
) -> None:
    bomb = tar_bomb(100 * MiB, codec)
    refused = _refused(world, lambda dest: extract_tar(pooled(bomb), dest))
    assert GRACE < refused.made < GRACE + 8 * MiB
    assert refused.made > 1000 * refused.read
    assert isinstance(refused, InvalidSpec)  # bad input: exit 2
    assert "archive expands past 1000:1" in str(refused)


def test_a_zip_member_that_is_a_bomb_is_refused_though_the_whole_zip_is_not(
    world: Path,
) -> None:
    """1 MiB of random bytes first: over the whole zip, 101 MiB from ~1.1 MiB (~90:1)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("noise.bin", os.urandom(MiB))
        with zf.open("zeros.bin", "w", force_zip64=True) as out:
            for _ in range(100):
                out.write(bytes(MiB))
    data = buffer.getvalue()
    refused = _refused(world, lambda dest: _from_zip(data, dest))
    assert refused.what == "zip member 'zeros.bin'"


def test_a_zip_of_many_small_bombs_is_refused_as_a_whole(world: Path) -> None:
    data = zip_bomb(*((f"z{i}.bin", 8 * MiB) for i in range(10)))  # each under 64 MiB
    refused = _refused(world, lambda dest: _from_zip(data, dest))
    assert refused.what == "zip archive"
    assert GRACE < refused.made < GRACE + 9 * MiB


def test_a_bomb_arriving_in_one_large_chunk_is_measured_by_what_was_decompressed(
    world: Path,
) -> None:
    """Over 4 MiB of zstd frames, each 16 MiB of zeros, handed over whole as a download
    part would be: counting the chunk as read would allow 4 GiB out before refusing."""
    frames = 12_000
    frame = zstandard.ZstdCompressor().compress(bytes(16 * MiB))
    head = encode_header(b"huge.bin", mode=0o644, size=frames * 16 * MiB, mtime=0, typeflag=b"0")
    bomb = zstandard.ZstdCompressor().compress(head) + frame * frames
    assert len(bomb) > 4 * MiB
    refused = _refused(world, lambda dest: extract_tar([bomb], dest))
    assert refused.made < GRACE + 8 * MiB


def test_ordinary_text_at_about_10_to_1_extracts_in_every_format(tmp_path: Path) -> None:
    tree = tmp_path / "logs"
    tree.mkdir()
    text = log_text(8 * MiB)
    for i in range(9):  # 72 MiB: past the point where the ratio is first checked
        (tree / f"day-{i}.log").write_bytes(text)
    for fmt in ("tar.zst", "tar.gz", "zip"):
        data = b"".join(write_archive(tree, fmt))
        assert 5 < 72 * MiB / len(data) < 20
        if fmt == "zip":
            _from_zip(data, tmp_path / fmt)
            with pytest.raises(ExpansionRefused):  # the check did look at this tree
                _from_zip(data, tmp_path / "low", limits=ExtractLimits(max_expansion=5))
        else:
            extract_tar(pooled(data), tmp_path / fmt)
            with pytest.raises(ExpansionRefused):
                extract_tar(pooled(data), tmp_path / "low", limits=ExtractLimits(max_expansion=5))
        assert (tmp_path / fmt / "day-8.log").read_bytes() == text
        assert not (tmp_path / "low").exists()


def test_a_small_archive_of_zeros_is_not_checked_before_64_mib(tmp_path: Path) -> None:
    extract_tar(pooled(tar_bomb(48 * MiB, "zstd")), tmp_path / "out")
    assert (tmp_path / "out" / "zeros.bin").stat().st_size == 48 * MiB


@pytest.mark.parametrize("fmt", ["tar.zst", "zip"])
def test_a_limit_of_0_lets_a_bomb_through(fmt: str, tmp_path: Path) -> None:
    off = ExtractLimits(max_expansion=0)
    if fmt == "zip":
        _from_zip(zip_bomb(("zeros.bin", 80 * MiB)), tmp_path / "out", limits=off)
    else:
        extract_tar(pooled(tar_bomb(80 * MiB, "zstd")), tmp_path / "out", limits=off)
    assert (tmp_path / "out" / "zeros.bin").stat().st_size == 80 * MiB


def test_a_plain_tar_never_counts_as_expanding(tmp_path: Path) -> None:
    extract_tar(zeros_tar(72 * MiB), tmp_path / "out", limits=ExtractLimits(max_expansion=1))
    assert (tmp_path / "out" / "zeros.bin").stat().st_size == 72 * MiB


@pytest.mark.parametrize("ratio", [-1, 0.5, float("nan"), float("inf")])
def test_a_limit_that_is_not_0_or_a_ratio_of_at_least_1_is_refused(ratio: float) -> None:
    with pytest.raises(InvalidSpec, match="at least 1"):
        ExtractLimits(max_expansion=ratio)
