"""Round trips: every format keeps modes, symlinks (as links), empty folders and, when
asked, mtimes; `include` extracts only what matches; listings show every entry; and
archives made by GNU tar, Python's tarfile and zipfile are read too."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from argosy.artifacts.archive import (
    EntryType,
    extract_tar,
    extract_zip,
    list_entries,
    list_zip,
    write_archive,
)
from argosy.artifacts.errors import InvalidSpec
from tests.archive.helpers import LONG_DIR, LONG_FILE, chunks, make_tree, snapshot

TAR_FORMATS = ["tar", "tar.zst", "tar.gz"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tree") / "src")


class Ranged:
    """A ranged-read source over bytes that records what was asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        return self.data[start:end]

    @property
    def fetched(self) -> int:
        return sum(end - start for start, end in self.calls)


def _extract(fmt: str, data: bytes, dest: Path, **kwargs: object) -> object:
    if fmt == "zip":
        return extract_zip(Ranged(data), len(data), dest, **kwargs)  # type: ignore[arg-type]
    return extract_tar(chunks(data), dest, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", TAR_FORMATS + ["zip"])
def test_a_tree_round_trips_with_modes_symlinks_and_empty_folders(
    fmt: str, tree: Path, tmp_path: Path
) -> None:
    data = b"".join(write_archive(tree, fmt))  # type: ignore[arg-type]
    _extract(fmt, data, tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)
    assert os.readlink(tmp_path / "out" / "dirlink") == "sub"
    assert (tmp_path / "out" / "empty_dir").is_dir()


@pytest.mark.parametrize("fmt", TAR_FORMATS + ["zip"])
def test_mtimes_survive_when_asked_and_only_then(fmt: str, tree: Path, tmp_path: Path) -> None:
    kept = b"".join(write_archive(tree, fmt, keep_mtime=True))  # type: ignore[arg-type]
    _extract(fmt, kept, tmp_path / "kept", keep_mtime=True)
    assert snapshot(tmp_path / "kept", mtimes=True) == snapshot(tree, mtimes=True)
    plain = b"".join(write_archive(tree, fmt))  # type: ignore[arg-type]
    _extract(fmt, plain, tmp_path / "plain", keep_mtime=True)
    assert (tmp_path / "plain" / "a.txt").stat().st_mtime < 400_000_000  # 1970 or 1980


@pytest.mark.parametrize("fmt", TAR_FORMATS + ["zip"])
def test_every_format_is_reproducible(fmt: str, tree: Path) -> None:
    first = b"".join(write_archive(tree, fmt))  # type: ignore[arg-type]
    assert first == b"".join(write_archive(tree, fmt))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", TAR_FORMATS + ["zip"])
def test_include_extracts_only_matching_paths_and_the_folders_they_need(
    fmt: str, tree: Path, tmp_path: Path
) -> None:
    data = b"".join(write_archive(tree, fmt))  # type: ignore[arg-type]
    result = _extract(fmt, data, tmp_path / "out", include=["**/*.txt", "empty_dir"])
    found = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")}
    assert "sub/deeper/file.txt" in found and "a.txt" in found and "empty_dir" in found
    assert f"{LONG_DIR}/{LONG_FILE}" in found
    assert not {"big.bin", "run.sh", "link", "private_empty"} & found
    assert result.skipped > 0  # type: ignore[attr-defined]


def test_a_zip_include_reads_only_the_ranges_it_needs(tree: Path, tmp_path: Path) -> None:
    data = b"".join(write_archive(tree, "zip"))
    source = Ranged(data)
    extract_zip(source, len(data), tmp_path / "out", include=["sub/deeper/file.txt"])
    assert source.fetched < 100 * 1024  # the tail and one member, not the 2.5 MiB file
    assert (tmp_path / "out" / "sub" / "deeper" / "file.txt").read_text() == "deep\n" * 1000


def test_a_whole_zip_is_read_in_few_large_requests(tree: Path, tmp_path: Path) -> None:
    data = b"".join(write_archive(tree, "zip"))
    source = Ranged(data)
    extract_zip(source, len(data), tmp_path / "out")
    assert len(source.calls) <= 3


@pytest.mark.parametrize("fmt", TAR_FORMATS)
def test_a_tar_listing_shows_every_entry_with_its_type_and_target(fmt: str, tree: Path) -> None:
    data = b"".join(write_archive(tree, fmt))  # type: ignore[arg-type]
    entries = {e.path.rstrip("/"): e for e in list_entries(chunks(data))}
    assert entries["a.txt"][1:] == (EntryType.FILE, 6, 0o640, 0, "")
    assert entries["dirlink"].type is EntryType.SYMLINK and entries["dirlink"].linkname == "sub"
    assert entries["empty_dir"].type is EntryType.DIR
    assert len(entries) == len(snapshot(tree))


def test_a_zip_listing_reads_symlink_targets_and_nothing_else(tree: Path) -> None:
    data = b"".join(write_archive(tree, "zip"))
    source = Ranged(data)
    entries = {e.path.rstrip("/"): e for e in list_zip(source, len(data))}
    assert entries["link"].linkname == "a.txt" and entries["big.bin"].size > 2_000_000
    assert len(entries) == len(snapshot(tree))
    assert source.fetched < 100 * 1024


def test_an_existing_empty_folder_is_replaced_and_a_full_one_refused(
    tree: Path, tmp_path: Path
) -> None:
    data = b"".join(write_archive(tree, "tar"))
    (tmp_path / "empty").mkdir()
    extract_tar(chunks(data), tmp_path / "empty")
    assert (tmp_path / "empty" / "a.txt").exists()
    with pytest.raises(InvalidSpec, match="already exists"):
        extract_tar(chunks(data), tmp_path / "empty")


def test_setuid_and_setgid_bits_are_dropped_on_extraction(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "tool").write_text("#!/bin/sh\n")
    (src / "tool").chmod(0o6755)
    extract_tar(write_archive(src, "tar"), tmp_path / "out")
    assert (tmp_path / "out" / "tool").stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize("gnu_format", ["gnu", "posix", "ustar"])
def test_archives_made_by_gnu_tar_are_extracted_exactly(
    gnu_format: str, tree: Path, tmp_path: Path
) -> None:
    if gnu_format == "ustar":  # ustar cannot hold names over 256 bytes
        src = tmp_path / "small"
        src.mkdir()
        (src / "f.txt").write_text("f")
        (src / "l").symlink_to("f.txt")
        (src / "e").mkdir()
    else:
        src = tree
    made = subprocess.run(
        ["tar", "czf", "-", f"--format={gnu_format}", "-C", str(src), "."],
        check=True,
        capture_output=True,
    ).stdout
    extract_tar(chunks(made), tmp_path / "out", keep_mtime=True)
    assert snapshot(tmp_path / "out", mtimes=True) == snapshot(src, mtimes=True)


def test_a_zip_that_zipfile_streamed_with_data_descriptors_is_read(tmp_path: Path) -> None:
    class Pipe(io.RawIOBase):  # not seekable: zipfile falls back to data descriptors
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("dir/a.txt", "zipfile " * 1000)
        with zf.open("b.bin", "w", force_zip64=True) as f:
            f.write(os.urandom(100_000))
        zf.writestr("empty/", "")
    data = bytes(pipe.buf)
    extract_zip(Ranged(data), len(data), tmp_path / "out")
    assert (tmp_path / "out" / "dir" / "a.txt").read_text() == "zipfile " * 1000
    assert (tmp_path / "out" / "b.bin").stat().st_size == 100_000
    assert (tmp_path / "out" / "empty").is_dir()


def test_info_zip_and_python_zipfile_read_our_zips(tree: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"".join(write_archive(tree, "zip")))
    checked = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert zf.read("a.txt") == b"hello\n"


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_a_single_file_round_trips(fmt: str, tree: Path, tmp_path: Path) -> None:
    data = b"".join(write_archive(tree / "run.sh", fmt))  # type: ignore[arg-type]
    _extract(fmt, data, tmp_path / "out")
    assert snapshot(tmp_path / "out") == {"run.sh": snapshot(tree)["run.sh"]}


def test_hardlinks_in_a_gnu_tar_archive_come_back_as_hardlinks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("shared")
    os.link(src / "a.txt", src / "b.txt")
    made = subprocess.run(
        ["tar", "cf", "-", "-C", str(src), "."], check=True, capture_output=True
    ).stdout
    result = extract_tar(chunks(made), tmp_path / "out")
    out = tmp_path / "out"
    assert result.hardlinks == 1
    assert (out / "a.txt").stat().st_ino == (out / "b.txt").stat().st_ino


def test_a_hardlink_whose_target_was_not_included_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("shared")
    os.link(src / "a.txt", src / "b.txt")
    made = subprocess.run(
        ["tar", "cf", "-", "-C", str(src), "a.txt", "b.txt"], check=True, capture_output=True
    ).stdout
    with pytest.raises(InvalidSpec, match="'b.txt' -> 'a.txt': the target was left out"):
        extract_tar(chunks(made), tmp_path / "out", include=["b.txt"])
    assert not (tmp_path / "out").exists()


def test_a_name_that_is_not_utf8_round_trips_through_tar_but_zip_refuses_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(os.path.join(os.fsencode(src), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1")
    extract_tar(write_archive(src, "tar.zst"), tmp_path / "out")
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9.txt"]
    with pytest.raises(InvalidSpec, match="zip stores names as UTF-8"):
        b"".join(write_archive(src, "zip"))
