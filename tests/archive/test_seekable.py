"""Seekable tar.zst: the layout is zstd's Seekable Format plus Argosy's member index, the
stream stays one that zstd, tar and Argosy's extractor read, and a member is read from
only the frames that hold it, through a real local repository and a real RGW."""

from __future__ import annotations

import io
import random
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from argosy.artifacts import archive
from argosy.artifacts.archive import seekformat as sf
from argosy.artifacts.archive.pipeline import background
from argosy.artifacts.archive.seekable import iter_member, read_index
from argosy.artifacts.archive.seekwriter import MemberIndex, compress_seekable
from argosy.artifacts.archive.tarwriter import write_tar
from argosy.artifacts.buffers import Recycler
from argosy.artifacts.directory import download_directory, upload_directory
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import InvalidSpec, NotFound, PreconditionFailed
from argosy.artifacts.protocol import ReadStream
from argosy.artifacts.settings import TransferSettings
from tests.archive.helpers import chunks, make_tree, snapshot
from tests.conftest import s3_driver, unique_bucket

MiB = 1 << 20


class Counting:
    """A driver that counts the ranged reads made through it and the bytes they asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[tuple[int, int]] = []
        self.stats = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stat(self, key: str) -> Any:
        self.stats += 1
        return self.inner.stat(key)

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        stream = self.inner.read(key, start=start, end=end, if_match=if_match)
        self.reads.append((start, stream.end + 1))
        return stream

    @property
    def bytes_read(self) -> int:
        return sum(end - start for start, end in self.reads)

    def reset(self) -> None:
        self.reads.clear()
        self.stats = 0


def frames_of(blob: bytes) -> list[tuple[int, int]]:
    """(compressed, decompressed) size of every frame, walked with zstd's own parser."""
    out = []
    at = 0
    while at < len(blob):
        magic = int.from_bytes(blob[at : at + 4], "little")
        if magic & 0xFFFFFFF0 == 0x184D2A50:
            size = 8 + int.from_bytes(blob[at + 4 : at + 8], "little")
            out.append((size, 0))
        else:
            params = zstandard.get_frame_parameters(blob[at:])
            dobj = zstandard.ZstdDecompressor().decompressobj()
            data = dobj.decompress(blob[at:])
            size = len(blob) - at - len(dobj.unused_data)
            assert params.content_size == len(data)
            out.append((size, len(data)))
        at += size
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tree") / "src")


@pytest.fixture(scope="module")
def spanning(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small files around a 13 MiB file that spans four frames."""
    root = tmp_path_factory.mktemp("spanning") / "src"
    rng = random.Random(7)
    (root / "a").mkdir(parents=True)
    for i in range(40):
        (root / "a" / f"{i:03}.txt").write_bytes(rng.randbytes(rng.randrange(10, 200_000)))
    (root / "b.bin").write_bytes(rng.randbytes(13 * MiB + 5))
    (root / "c").mkdir()
    for i in range(40):
        (root / "c" / f"{i:03}.log").write_bytes(b"line %d\n" % i * rng.randrange(1, 5000))
    return root


def local(tmp_path: Path) -> LocalDriver:
    (tmp_path / "repo" / "bucket").mkdir(parents=True)
    return LocalDriver(tmp_path / "repo", "bucket")


def stored(driver: Any, key: str, blob: bytes) -> None:
    driver.put(key, blob, size=len(blob), metadata={})


def tar_zst(root: Path, **kwargs: Any) -> bytes:
    return b"".join(archive.write_archive(root, "tar.zst", **kwargs))


def test_the_stream_is_data_frames_then_the_member_index_then_the_seek_table(
    spanning: Path,
) -> None:
    blob = tar_zst(spanning)
    tar = b"".join(write_tar(spanning))
    frames = frames_of(blob)
    data = [d for _, d in frames[:-2]]
    assert data[:-1] == [sf.FRAME_SIZE] * (len(data) - 1) and 0 < data[-1] <= sf.FRAME_SIZE
    assert sum(data) == len(tar)
    assert frames[-2][1] == 0 and frames[-1][1] == 0  # two skippable frames close it
    assert int.from_bytes(blob[-4:], "little") == 0x8F92EAB1
    table_at = len(blob) - frames[-1][0]
    assert int.from_bytes(blob[table_at : table_at + 4], "little") == 0x184D2A5E
    count, descriptor = int.from_bytes(blob[-9:-5], "little"), blob[-5]
    assert count == len(frames) - 1 and descriptor == 0x80  # every frame but the table's
    entries = blob[table_at + 8 : -9]
    listed = [
        (
            int.from_bytes(entries[i : i + 4], "little"),
            int.from_bytes(entries[i + 4 : i + 8], "little"),
        )
        for i in range(0, len(entries), 12)
    ]
    assert listed == frames[:-1]
    # each data frame's checksum entry is the XXH64 low half zstd wrote into the frame
    at = 0
    for i, (size, _) in enumerate(frames[:-2]):
        assert entries[i * 12 + 8 : i * 12 + 12] == blob[at + size - 4 : at + size]
        at += size


def test_the_bytes_do_not_depend_on_the_thread_count_or_the_input_chunking(
    spanning: Path,
) -> None:
    tar = b"".join(write_tar(spanning))
    outputs = {
        b"".join(compress_seekable(chunks(tar, size), threads=threads))
        for threads, size in ((0, 1 << 20), (1, 333_333), (2, 4 << 20), (4, 7 << 20))
    }
    assert len(outputs) == 1


def test_the_tar_writers_chunks_are_filled_again_once_compressed_and_the_bytes_stay_the_same(
    tmp_path: Path,
) -> None:
    root = tmp_path / "src"
    root.mkdir()
    rng = random.Random(3)
    for i in range(24):  # 24 frames of tar: several times what the pipeline holds at once
        (root / f"{i:02}.bin").write_bytes(rng.randbytes(64 * 1024) * 64 + rng.randbytes(i))
    recycler = Recycler(sf.FRAME_SIZE)
    index = MemberIndex()
    tar = write_tar(root, chunk_size=sf.FRAME_SIZE, on_member=index, recycler=recycler)
    reused = b"".join(compress_seekable(background(tar), index=index, recycle=recycler.give))
    fresh_index = MemberIndex()
    plain = b"".join(write_tar(root, on_member=fresh_index))
    fresh = b"".join(compress_seekable(chunks(plain, 1 << 20), index=fresh_index))
    assert reused == fresh
    assert recycler.made < 16  # of the 25 chunks written, at least 9 were reused ones


def test_zstd_and_tar_read_it_and_so_does_argosys_extractor(tree: Path, tmp_path: Path) -> None:
    blob = tar_zst(tree)
    path = tmp_path / "t.tar.zst"
    path.write_bytes(blob)
    tar = subprocess.run(["zstd", "-d", "-c", str(path)], capture_output=True, check=True).stdout
    assert tar == b"".join(write_tar(tree))
    (tmp_path / "by-tar").mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(path), "-C", str(tmp_path / "by-tar")], check=True)
    assert snapshot(tmp_path / "by-tar") == snapshot(tree)
    archive.extract_tar(chunks(blob), tmp_path / "by-argosy", compression="zstd")
    assert snapshot(tmp_path / "by-argosy") == snapshot(tree)
    listed = subprocess.run(
        ["zstd", "-l", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "Frames" in listed


def test_every_member_reads_back_through_the_index(tree: Path, tmp_path: Path) -> None:
    driver = local(tmp_path)
    stored(driver, "t.tar.zst", tar_zst(tree, keep_mtime=True))
    index = read_index(driver, "t.tar.zst")
    assert index is not None
    with tarfile.open(fileobj=io.BytesIO(b"".join(write_tar(tree, keep_mtime=True)))) as t:
        members = t.getmembers()
        assert [m.path for m in index.members] == [m.name for m in members]
        for want, got in zip(members, index.members, strict=True):
            assert got.type == {"0": "file", "5": "dir", "2": "symlink"}[want.type.decode()]
            assert (got.size, got.mode, got.mtime, got.linkname) == (
                want.size,
                want.mode,
                want.mtime,
                want.linkname,
            )
            data = b"".join(iter_member(driver, "t.tar.zst", index, got.path))
            assert data == (t.extractfile(want).read() if want.isfile() else b"")  # type: ignore[union-attr]
    assert index.member("sub/") is index.member("sub") is not None
    with pytest.raises(NotFound, match="no member 'nope.txt'"):
        iter_member(driver, "t.tar.zst", index, "nope.txt")


def test_an_uploaded_folder_is_seekable_and_still_downloads_whole(
    tree: Path, tmp_path: Path
) -> None:
    driver = local(tmp_path)
    settings = TransferSettings(part_size=5 * MiB, multipart_threshold=5 * MiB)
    upload_directory(driver, "out.tar.zst", tree, fmt="tar.zst", settings=settings)
    index = read_index(driver, "out.tar.zst")
    assert index is not None
    assert (
        b"".join(iter_member(driver, "out.tar.zst", index, "big.bin"))
        == (tree / "big.bin").read_bytes()
    )
    download_directory(driver, "out.tar.zst", tmp_path / "back", fmt="auto", settings=settings)
    assert snapshot(tmp_path / "back") == snapshot(tree)


def check_reads_only_the_frames_it_needs(driver: Counting, root: Path) -> None:
    blob = tar_zst(root)
    stored(driver.inner, "s.tar.zst", blob)
    driver.reset()
    index = read_index(driver, "s.tar.zst")
    assert index is not None
    # one stat and one read from the tail: the seek table and the index both fit in it
    assert driver.stats == 1 and len(driver.reads) == 1 == index.requests
    assert driver.reads[0] == (len(blob) - 64 * 1024, len(blob))
    frames = index.frames
    assert frames.count == len(frames_of(blob)) - 1
    for path in ("a/000.txt", "a/039.txt", "b.bin", "c/000.log", "c/039.log"):
        member = index.member(path)
        assert member is not None
        driver.reset()
        data = b"".join(iter_member(driver, "s.tar.zst", index, path))
        assert data == (root / path).read_bytes()
        wanted = index.frames_for(member)
        # exactly the frames holding its header and data, in one read per 8 MiB window
        assert frames.data[wanted.start] <= member.header
        assert frames.data[wanted.stop] >= member.data + member.size
        assert driver.bytes_read == frames.packed[wanted.stop] - frames.packed[wanted.start]
        # in reads of whole frames, each one frame or at most 8 MiB
        assert driver.stats == 0 and len(driver.reads) <= len(wanted)
        bounds = set(frames.packed)
        for start, end in driver.reads:
            assert start in bounds and end in bounds
            assert (
                end - start <= 8 * MiB or frames.packed.index(end) - frames.packed.index(start) == 1
            )
    small = index.member("c/000.log")
    assert small is not None and len(index.frames_for(small)) <= 2
    assert len(index.frames_for(index.member("b.bin"))) >= 4  # type: ignore[arg-type]


def test_a_member_costs_only_its_frames_in_a_local_repository(
    spanning: Path, tmp_path: Path
) -> None:
    check_reads_only_the_frames_it_needs(Counting(local(tmp_path)), spanning)


@pytest.mark.rgw
def test_a_member_costs_only_its_frames_on_rgw(spanning: Path, rgw: dict[str, str]) -> None:
    driver = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        unique_bucket("seek"),
    )
    check_reads_only_the_frames_it_needs(Counting(driver), spanning)


def test_an_index_larger_than_the_tail_takes_one_more_read(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    rng = random.Random(3)
    for _ in range(4000):  # random names do not compress: an index of ~100 KiB
        (root / rng.randbytes(20).hex()).write_bytes(b"x")
    driver = Counting(local(tmp_path))
    blob = tar_zst(root)
    stored(driver.inner, "m.tar.zst", blob)
    driver.reset()
    index = read_index(driver, "m.tar.zst")
    assert index is not None and len(index.members) == 4000
    # the tail, then the part of the index frame before it
    packed = index.frames.packed
    tail = len(blob) - 64 * 1024
    assert driver.reads == [(tail, len(blob)), (packed[-2], tail)]
    assert packed[-2] < len(blob) - 64 * 1024
    name = sorted(p.name for p in root.iterdir())[1234]
    assert b"".join(iter_member(driver, "m.tar.zst", index, name)) == b"x"


def test_the_index_is_read_without_a_stat_when_the_caller_has_one(
    tree: Path, tmp_path: Path
) -> None:
    driver = Counting(local(tmp_path))
    stored(driver.inner, "t.tar.zst", tar_zst(tree))
    info = driver.inner.stat("t.tar.zst")
    driver.reset()
    assert read_index(driver, "t.tar.zst", info=info) is not None
    assert driver.stats == 0 and len(driver.reads) == 1


def test_older_tar_zst_and_other_objects_have_no_index_and_still_extract(
    tree: Path, tmp_path: Path
) -> None:
    driver = local(tmp_path)
    tar = b"".join(write_tar(tree))
    one_frame = b"".join(archive.compress(chunks(tar), "zstd"))  # what Argosy wrote before
    no_index = b"".join(compress_seekable(chunks(tar)))  # a seek table, no member index
    for key, blob in (
        ("old.tar.zst", one_frame),
        ("bare.tar.zst", no_index),
        ("plain.tar", tar),
        ("tiny", b"zst"),
        ("empty", b""),
    ):
        stored(driver, key, blob)
        assert read_index(driver, key) is None, key
    for key in ("old.tar.zst", "bare.tar.zst"):
        dest = tmp_path / key.replace(".", "-")
        download_directory(driver, key, dest, fmt="auto", settings=TransferSettings())
        assert snapshot(dest) == snapshot(tree)


def test_a_replaced_object_fails_the_member_read_instead_of_mixing_versions(
    tree: Path, tmp_path: Path
) -> None:
    driver = local(tmp_path)
    stored(driver, "t.tar.zst", tar_zst(tree))
    index = read_index(driver, "t.tar.zst")
    assert index is not None
    stored(driver, "t.tar.zst", tar_zst(tree, keep_mtime=True))
    with pytest.raises(PreconditionFailed):
        b"".join(iter_member(driver, "t.tar.zst", index, "a.txt"))


def test_an_index_too_large_to_keep_is_left_out_and_the_archive_stays_valid(
    tree: Path,
) -> None:
    index = MemberIndex(limit=64)
    tar = write_tar(tree, on_member=index)
    blob = b"".join(compress_seekable(tar, index=index))
    assert index.members > 10 and index.frame() is None
    assert [d for _, d in frames_of(blob)][-2] > 0  # the table follows the data directly
    assert b"".join(archive.decompress(chunks(blob), "zstd")) == b"".join(write_tar(tree))


def test_a_bad_level_fails_when_the_archive_is_asked_for(tree: Path) -> None:
    with pytest.raises(InvalidSpec, match="zstd level"):
        archive.write_archive(tree, "tar.zst", level=99)


def test_an_empty_stream_is_one_empty_frame_and_a_table() -> None:
    blob = b"".join(compress_seekable(iter(())))
    assert frames_of(blob)[0] == (
        len(zstandard.ZstdCompressor(write_checksum=True, write_content_size=True).compress(b"")),
        0,
    )
    assert b"".join(archive.decompress([blob], "zstd")) == b""
