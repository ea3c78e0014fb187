"""Tars as other tools write them, handed over as a download hands them.

Python's tarfile writes pax headers by default and GNU tar writes them with
`--format=pax` (mtime, atime and ctime records before every member): ordinary input.
Chunks arrive as one pooled bytearray refilled each time, as `download.iter_object`
yields them, so every header and pax record is parsed from a bytearray.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from argosy.artifacts.archive import EntryType, extract_tar, list_entries
from tests.archive.helpers import (
    TAR_DIALECTS,
    VERY_LONG,
    compressed,
    file,
    foreign_tar,
    foreign_tree,
    info,
    pooled,
    snapshot,
    tar_bytes,
)


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
@pytest.mark.parametrize("dialect", TAR_DIALECTS)
@pytest.mark.parametrize("tool", ["tarfile", "gnu-tar"])
def test_tars_by_tarfile_and_gnu_tar_extract_exactly_from_pooled_chunks(
    tool: str, dialect: str, codec: str, tmp_path: Path
) -> None:
    src = foreign_tree(tmp_path / "src", dialect=dialect)
    data = compressed(foreign_tar(src, tool=tool, dialect=dialect), codec)
    extract_tar(pooled(data), tmp_path / "out", keep_mtime=True)
    assert snapshot(tmp_path / "out", mtimes=True) == snapshot(src, mtimes=True)


@pytest.mark.parametrize("tool", ["tarfile", "gnu-tar"])
def test_a_pax_tar_from_pooled_chunks_lists_long_names_and_link_targets(
    tool: str, tmp_path: Path
) -> None:
    src = foreign_tree(tmp_path / "src", dialect="pax")
    entries = {
        e.path.removeprefix("./"): e
        for e in list_entries(pooled(foreign_tar(src, tool=tool, dialect="pax")))
    }
    assert entries[VERY_LONG].type is EntryType.FILE
    assert entries["longlink"].linkname == VERY_LONG
    assert entries["ünïcödé/ファイル.txt"].size == len("名前".encode())
    assert entries["plain.txt"].mtime == 1_700_000_000


def _set_field(block: bytearray, start: int, width: int, value: int) -> None:
    """Rewrite an octal field of a ustar header block and its checksum."""
    block[start : start + width] = b"%0*o\x00" % (width - 1, value)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)


def test_pax_size_and_mtime_records_override_the_header_fields(tmp_path: Path) -> None:
    member = info("f.txt", size=5)
    member.mtime = 1_700_000_000.5  # tarfile writes a fraction as a pax mtime record
    member.pax_headers = {"size": "5"}
    data = bytearray(tar_bytes((member, b"hello")))
    header = bytearray(data[1024:1536])  # after the pax header and its one block of records
    assert header[:5] == b"f.txt"
    _set_field(header, 124, 12, 0)  # size: only the pax record says 5
    _set_field(header, 136, 12, 0)  # mtime: only the pax record says 1_700_000_000.5
    data[1024:1536] = header
    extract_tar(pooled(bytes(data)), tmp_path / "out", keep_mtime=True)
    assert (tmp_path / "out" / "f.txt").read_bytes() == b"hello"
    assert int(os.stat(tmp_path / "out" / "f.txt").st_mtime) == 1_700_000_000


def test_every_folder_ends_with_its_mode_whenever_it_was_made(tmp_path: Path) -> None:
    """Folders made with their mode at once, set at the end, implied, and declared after
    they were implied all end as the archive says, whatever the umask takes away."""
    data = tar_bytes(
        (info("plain", tarfile.DIRTYPE, mode=0o755), None),
        (info("open", tarfile.DIRTYPE, mode=0o777), None),  # the umask would take 022
        (info("sticky", tarfile.DIRTYPE, mode=0o1777), None),
        (info("readonly", tarfile.DIRTYPE, mode=0o555), None),
        file("readonly/in.txt"),
        file("late/deep/x.txt"),  # late and late/deep implied here
        (info("late", tarfile.DIRTYPE, mode=0o750), None),
    )
    old = os.umask(0o022)
    try:
        extract_tar(pooled(data), tmp_path / "out")
    finally:
        os.umask(old)
    out = tmp_path / "out"
    modes = {
        p: stat.S_IMODE(os.stat(out / p).st_mode)
        for p in ("plain", "open", "sticky", "readonly", "late", "late/deep")
    }
    assert modes == {
        "plain": 0o755,
        "open": 0o777,
        "sticky": 0o1777,
        "readonly": 0o555,
        "late": 0o750,
        "late/deep": 0o755,
    }
    assert (out / "readonly" / "in.txt").read_bytes() == b"x"
