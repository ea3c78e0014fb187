"""The tar writer: deterministic bytes that GNU tar and Python's tarfile read back
exactly, special files refused, files that change while archived refused."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from argosy.artifacts.archive import write_tar
from argosy.artifacts.archive.tarformat import encode_header
from argosy.artifacts.archive.walk import open_file, read_file
from argosy.artifacts.errors import InvalidSpec, SourceChanged
from tests.archive.helpers import LONG_DIR, LONG_FILE, VERY_LONG, make_tree, snapshot


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src")


def _tar(root: Path, **kwargs: object) -> bytes:
    return b"".join(write_tar(root, **kwargs))  # type: ignore[arg-type]


def test_the_same_tree_gives_the_same_bytes_twice(tree: Path) -> None:
    assert _tar(tree) == _tar(tree)
    assert _tar(tree, keep_mtime=True) == _tar(tree, keep_mtime=True)


def test_entries_come_sorted_with_each_folder_before_its_contents(tree: Path) -> None:
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(_tar(tree)))]
    assert names.index("sub") < names.index("sub/deeper") < names.index("sub/deeper/file.txt")
    top = [n for n in names if "/" not in n]
    assert top == sorted(top, key=os.fsencode)


def test_owners_are_root_with_empty_names_and_mtimes_zero_unless_asked(tree: Path) -> None:
    members = tarfile.open(fileobj=io.BytesIO(_tar(tree))).getmembers()
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    kept = tarfile.open(fileobj=io.BytesIO(_tar(tree, keep_mtime=True))).getmember("a.txt")
    assert kept.mtime == int((tree / "a.txt").stat().st_mtime)


def test_python_tarfile_reads_every_entry_back_exactly(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with tarfile.open(fileobj=io.BytesIO(_tar(tree))) as tar:
        tar.extractall(out, filter="tar")
        link = tar.getmember("longlink")
        assert link.issym() and link.linkname == VERY_LONG
        assert tar.getmember(f"{LONG_DIR}/{LONG_FILE}").isfile()
    assert snapshot(out) == snapshot(tree)


def test_gnu_tar_lists_and_extracts_it_exactly(tree: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    archive.write_bytes(_tar(tree, keep_mtime=True))
    listed = subprocess.run(
        ["tar", "tvf", str(archive)], check=True, capture_output=True, text=True
    )
    assert listed.stderr == ""
    assert "longlink -> " + VERY_LONG in listed.stdout
    out = tmp_path / "gnu"
    out.mkdir()
    subprocess.run(["tar", "xf", str(archive), "-C", str(out)], check=True, capture_output=True)
    assert snapshot(out, mtimes=True) == snapshot(tree, mtimes=True)


def test_a_root_name_puts_everything_under_one_folder_like_argo(tree: Path) -> None:
    names = tarfile.open(fileobj=io.BytesIO(_tar(tree, root_name="out"))).getnames()
    assert names[0] == "out" and all(n == "out" or n.startswith("out/") for n in names)


def test_a_single_file_becomes_a_one_member_archive(tree: Path) -> None:
    members = tarfile.open(fileobj=io.BytesIO(_tar(tree / "a.txt"))).getmembers()
    assert [(m.name, m.size, m.mode) for m in members] == [("a.txt", 6, 0o640)]


def test_a_root_that_is_a_symlink_to_a_file_is_followed_under_its_own_name(
    tree: Path, tmp_path: Path
) -> None:
    (tmp_path / "link.txt").symlink_to(tree / "a.txt")
    tar = tarfile.open(fileobj=io.BytesIO(_tar(tmp_path / "link.txt")))
    assert [(m.name, m.size, m.isfile()) for m in tar.getmembers()] == [("link.txt", 6, True)]
    assert tar.extractfile("link.txt").read() == (tree / "a.txt").read_bytes()  # type: ignore[union-attr]


def test_names_that_are_not_utf8_survive_through_pax(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1 name")
    data = _tar(root)
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8", errors="surrogateescape") as tar:
        assert os.fsencode(tar.getnames()[0]) == b"caf\xe9.txt"


def test_huge_sizes_and_out_of_range_mtimes_go_to_pax() -> None:
    header = encode_header(b"big", mode=0o644, size=9 * 2**30, mtime=-5, typeflag=b"0")
    info = tarfile.TarInfo.frombuf(header[-512:], "utf-8", "strict")
    assert info.size == 0  # the ustar field: the real size is in the pax record
    with tarfile.open(fileobj=io.BytesIO(header + bytes(1024)), mode="r|") as tar:
        member = tar.next()
        assert member is not None and member.size == 9 * 2**30 and member.mtime == -5


def test_a_fifo_in_the_tree_is_refused_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    os.mkfifo(root / "pipe")
    with pytest.raises(InvalidSpec, match="pipe is a FIFO"):
        _tar(root)


def test_a_socket_is_refused_unless_special_files_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "kept.txt").write_text("kept")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        with pytest.raises(InvalidSpec, match="sock is a socket"):
            _tar(root)
        names = tarfile.open(fileobj=io.BytesIO(_tar(root, skip_special=True))).getnames()
        assert names == ["kept.txt"]
    finally:
        sock.close()


def test_a_file_that_grows_while_archived_fails_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    target = root / "log.txt"
    target.write_bytes(b"x" * (3 * 1024 * 1024))
    stream = write_tar(root, chunk_size=64 * 1024)
    next(stream)  # the header and the first 64 KiB are out
    with open(target, "ab") as f:
        f.write(b"more")
    with pytest.raises(SourceChanged, match="log.txt grew past its 3145728 bytes"):
        list(stream)


def test_a_file_that_shrinks_or_is_rewritten_in_place_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f"
    name = os.fsencode(path)
    path.write_bytes(b"0123456789")
    fd, st = open_file(name)
    try:
        os.truncate(path, 5)
        with pytest.raises(SourceChanged, match="shrank to 5 of its 10 bytes"):
            list(read_file(fd, name, st))
    finally:
        os.close(fd)
    path.write_bytes(b"0123456789")
    fd, st = open_file(name)
    try:
        path.write_bytes(b"abcdefghij")  # the same file, rewritten at the same size
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        with pytest.raises(SourceChanged, match="modified or replaced"):
            list(read_file(fd, name, st))
    finally:
        os.close(fd)


def test_something_else_where_a_file_was_listed_is_refused_without_blocking(
    tmp_path: Path,
) -> None:
    """A file is known by its directory entry's type and opened only then: a FIFO or a
    folder put in its place by then is refused naming it (a FIFO's open does not wait
    for a writer)."""
    os.mkfifo(tmp_path / "was-a-file")
    with pytest.raises(SourceChanged, match="was-a-file was replaced by a FIFO"):
        open_file(os.fsencode(tmp_path / "was-a-file"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(SourceChanged, match="dir was replaced by a folder"):
        open_file(os.fsencode(tmp_path / "dir"))


def test_chunks_are_the_chunk_size_but_the_last(tree: Path) -> None:
    sizes = [len(c) for c in write_tar(tree, chunk_size=256 * 1024 + 1)]
    assert set(sizes[:-1]) == {256 * 1024 + 1} and 0 < sizes[-1] <= 256 * 1024 + 1
    assert sum(sizes) % 10240 == 0
    assert b"".join(write_tar(tree, chunk_size=4093)) == b"".join(write_tar(tree))


def test_a_large_file_comes_out_while_it_is_read(tmp_path: Path) -> None:
    """Memory stays at a few chunks whatever the file's size: the first chunks of a
    file are handed out before the rest of it is read."""
    (tmp_path / "big.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    stream = write_tar(tmp_path, chunk_size=1024 * 1024)
    first = [next(stream) for _ in range(2)]
    with open(tmp_path / "big.bin", "r+b") as f:
        f.truncate(4 * 1024 * 1024)
    with pytest.raises(SourceChanged, match="shrank to 4194304 of its 8388608 bytes"):
        list(stream)
    assert all(len(c) == 1024 * 1024 for c in first)
