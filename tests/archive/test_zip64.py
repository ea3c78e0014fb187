"""zip64 paths without writing 4 GiB: the thresholds are lowered so that a 2.5 MiB file
takes the zip64 local header and descriptor, and five members the zip64 end records."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from argosy.artifacts.archive import extract_zip, write_zip, zipformat, zipwriter
from tests.archive.helpers import make_tree, snapshot


def _zip(tree: Path) -> bytes:
    return b"".join(write_zip(tree))


def test_a_large_member_gets_zip64_sizes_that_every_reader_understands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path / "src")
    monkeypatch.setattr(zipwriter, "ZIP64_FROM", 1 << 20)
    data = _zip(tree)
    archive = tmp_path / "a.zip"
    archive.write_bytes(data)
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        big = zf.getinfo("big.bin")
        assert big.extract_version >= 45 and big.flag_bits & 0x8
    assert subprocess.run(["unzip", "-tq", str(archive)], capture_output=True).returncode == 0
    extract_zip(lambda s, e: data[s:e], len(data), tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)


def test_zip64_end_records_are_written_and_read_when_counts_overflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "src"
    tree.mkdir()
    for i in range(5):
        (tree / f"f{i}.txt").write_text(str(i))
    monkeypatch.setattr(zipformat, "MAX16", 3)
    data = _zip(tree)
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    (tmp_path / "a.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert len(zf.namelist()) == 5
    extract_zip(lambda s, e: data[s:e], len(data), tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)
