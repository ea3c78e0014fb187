"""Fuzzing the extractor. The invariant, whatever the input: extraction either
succeeds with every entry (links resolved) inside the destination, or raises an
ArtifactError; and nothing outside the destination ever changes.

The structured fuzz BUILDS tar archives (names with '..', absolute paths, links and
link targets, every member type, sizes, modes), then optionally compresses and
corrupts them; the byte fuzz throws raw and mutated bytes at the tar and zip readers.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from argosy.artifacts.archive import ExtractLimits, compress, extract_tar, extract_zip
from argosy.artifacts.errors import ArtifactError
from tests.archive.helpers import chunks, listing
from tests.hostile.conftest import fuzz

pytestmark = [pytest.mark.hostile, pytest.mark.filterwarnings("ignore:Duplicate name")]

OUTSIDE = "@OUT"  # replaced by the absolute path of a folder outside the destination
SAFE = st.lists(st.sampled_from(["a", "b", "sub", "ü"]), min_size=1, max_size=3).map("/".join)
HOSTILE = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    st.sampled_from(["", "/", "./", "../", OUTSIDE + "/"]),
    st.lists(
        st.sampled_from(["a", "sub", "..", ".", "", "x" * 101, OUTSIDE]), min_size=1, max_size=4
    ),
)
PATHS = st.one_of(SAFE, SAFE, HOSTILE)  # two thirds plain: enough survive to build on
UPWARD = st.builds(lambda ups, rest: "../" * ups + rest, st.integers(0, 3), SAFE)
TARGETS = st.one_of(SAFE, UPWARD, HOSTILE)
TYPES = st.sampled_from(
    [tarfile.REGTYPE] * 3
    + [tarfile.DIRTYPE] * 2
    + [tarfile.SYMTYPE] * 2
    + [tarfile.LNKTYPE] * 2
    + [
        tarfile.AREGTYPE,
        tarfile.CONTTYPE,
        tarfile.CHRTYPE,
        tarfile.FIFOTYPE,
        tarfile.BLKTYPE,
        b"S",
        b"Z",
    ]
)
MEMBERS = st.lists(
    st.tuples(PATHS, TYPES, TARGETS, st.binary(max_size=700), st.integers(0, 0o7777)), max_size=10
)
CORRUPTION = st.one_of(
    st.none(),
    st.none(),
    st.tuples(st.just("cut"), st.integers(0, 20000)),
    st.tuples(st.just("flip"), st.integers(0, 20000), st.integers(1, 255)),
)


def _build(members: list[tuple[str, bytes, str, bytes, int]], outside: str, fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, link, data, mode in members:
            info = tarfile.TarInfo(name.replace(OUTSIDE, outside))
            info.type = kind
            info.mode = mode
            info.linkname = link.replace(OUTSIDE, outside)
            regular = kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
            info.size = len(data) if regular else 0
            try:
                tar.addfile(info, io.BytesIO(data) if regular else None)
            except (ValueError, UnicodeError):
                pass  # tarfile cannot encode this one: leave it out
    return buf.getvalue()


def _corrupt(data: bytes, how: tuple[object, ...] | None) -> bytes:
    if how is None or not data:
        return data
    if how[0] == "cut":
        return data[: int(how[1]) % len(data)]  # type: ignore[call-overload]
    at = int(how[1]) % len(data)  # type: ignore[call-overload]
    return data[:at] + bytes([data[at] ^ int(how[2])]) + data[at + 1 :]  # type: ignore[call-overload]


def _remove(path: str) -> None:
    for dirpath, _, _ in os.walk(path):  # extracted folders may be read-only
        os.chmod(dirpath, 0o700)
    shutil.rmtree(path)


def _holds(extract: Callable[[Path], object]) -> None:
    """Run one extraction in a fresh world and check the invariant."""
    world = Path(tempfile.mkdtemp(prefix="argosy-fuzz-"))
    try:
        (world / "outside").mkdir()
        (world / "outside" / "keep.txt").write_text("original")
        (world / "in").mkdir()
        before = listing(world)
        dest = world / "in" / "dest"
        try:
            extract(dest)
        except ArtifactError:
            assert not dest.exists()
        else:
            root = os.path.realpath(dest)
            for rel in listing(dest):
                resolved = os.path.realpath(dest / rel)
                assert resolved == root or resolved.startswith(root + os.sep), rel
        after = {p for p in listing(world) if not p.startswith(os.path.join("in", "dest"))}
        assert after == before
        assert (world / "outside" / "keep.txt").read_text() == "original"
    finally:
        _remove(str(world))


@fuzz(200)
@given(
    members=MEMBERS,
    fmt=st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]),
    codec=st.sampled_from(["none", "gzip", "zstd"]),
    corruption=CORRUPTION,
    include=st.sampled_from([(), ("a",), ("**/b",), ("sub/**",)]),
)
def test_generated_tar_structures_never_write_outside(
    members: list[tuple[str, bytes, str, bytes, int]],
    fmt: int,
    codec: str,
    corruption: tuple[object, ...] | None,
    include: tuple[str, ...],
) -> None:
    def extract(dest: Path) -> object:
        outside = str(dest.parent.parent / "outside")
        data = _build(members, outside, fmt)
        packed = b"".join(compress([data], codec))  # type: ignore[arg-type]
        return extract_tar(
            chunks(_corrupt(packed, corruption), 777),
            dest,
            include=include,
            limits=ExtractLimits(max_total_bytes=4000, max_members=9),
        )

    _holds(extract)


PREFIXES = st.sampled_from(
    [
        b"",
        b"\x1f\x8b\x08\x00",
        b"\x28\xb5\x2f\xfd",
        b"\x50\x2a\x4d\x18\x04\x00\x00\x00",
        b"PK\x03\x04",
        b"a" * 100 + b"\x00" * 157 + b"ustar\x0000",
    ]
)


@fuzz(200)
@given(prefix=PREFIXES, body=st.binary(max_size=2000), chunk=st.integers(1, 600))
def test_random_bytes_are_refused_cleanly_or_extract_inside(
    prefix: bytes, body: bytes, chunk: int
) -> None:
    _holds(lambda dest: extract_tar(chunks(prefix + body, chunk), dest))


def _sample_archives() -> dict[str, bytes]:
    tar = _build(
        [
            ("d", tarfile.DIRTYPE, "", b"", 0o755),
            ("d/f.txt", tarfile.REGTYPE, "", b"hello " * 200, 0o644),
            ("l", tarfile.SYMTYPE, "d/f.txt", b"", 0o777),
            ("h", tarfile.LNKTYPE, "d/f.txt", b"", 0o644),
        ],
        "",
        tarfile.PAX_FORMAT,
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/f.txt", "hello " * 200)
        zf.writestr("e/", "")
        link = zipfile.ZipInfo("l")
        link.create_system, link.external_attr = 3, 0o120777 << 16
        zf.writestr(link, "d/f.txt")
    return {
        "tar": tar,
        "tar.gz": b"".join(compress([tar], "gzip")),
        "tar.zst": zstandard.ZstdCompressor(write_checksum=True).compress(tar),
        "zip": buf.getvalue(),
    }


SAMPLES = _sample_archives()


@fuzz(200)
@given(
    kind=st.sampled_from(sorted(SAMPLES)),
    mutations=st.lists(
        st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=4
    ),
    cut=st.none() | st.integers(0, 1 << 20),
)
def test_mutated_archives_of_every_format_are_refused_cleanly_or_extract_inside(
    kind: str, mutations: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(SAMPLES[kind])
    for at, flip in mutations:
        data[at % len(data)] ^= flip
    blob = bytes(data if cut is None else data[: cut % len(data)])
    if kind == "zip":
        _holds(lambda dest: extract_zip(lambda s, e: blob[s:e], len(blob), dest))
    else:
        _holds(lambda dest: extract_tar(chunks(blob, 300), dest))


# zip structures built entry by entry: hostile names, links by their Unix mode, folders,
# duplicates, stored and deflated, sizes the central directory may lie about

ZIP_KINDS = st.sampled_from(["file", "file", "dir", "symlink", "fifo"])
ZIP_MEMBERS = st.lists(
    st.tuples(
        PATHS,
        ZIP_KINDS,
        TARGETS,
        st.binary(max_size=500),
        st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
    ),
    max_size=8,
)


def _build_zip(members: list[tuple[str, str, str, bytes, int]], outside: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, kind, target, data, method in members:
            name = name.replace(OUTSIDE, outside)
            info = zipfile.ZipInfo(name + "/" if kind == "dir" and name else name or "x")
            info.compress_type = method
            info.create_system = 3
            mode = {"file": 0o100644, "dir": 0o40755, "symlink": 0o120777, "fifo": 0o10644}
            info.external_attr = mode[kind] << 16
            payload = target.replace(OUTSIDE, outside).encode() if kind == "symlink" else data
            try:
                zf.writestr(info, b"" if kind == "dir" else payload)
            except (ValueError, UnicodeError):
                pass
    return buf.getvalue()


@fuzz(150)
@given(members=ZIP_MEMBERS, corruption=CORRUPTION, include=st.sampled_from([(), ("**/b",)]))
def test_generated_zip_structures_never_write_outside(
    members: list[tuple[str, str, str, bytes, int]],
    corruption: tuple[object, ...] | None,
    include: tuple[str, ...],
) -> None:
    def extract(dest: Path) -> object:
        blob = _corrupt(_build_zip(members, str(dest.parent.parent / "outside")), corruption)
        return extract_zip(
            lambda s, e: blob[s:e],
            len(blob),
            dest,
            include=include,
            limits=ExtractLimits(max_total_bytes=3000, max_members=7),
        )

    _holds(extract)


# pax extended headers: the records that rename a member, retarget a link or resize it

PAX_KEYS = st.sampled_from(["path", "linkpath", "size", "mtime", "uid", "uname", "GNU.sparse.size"])
PAX_VALUES = st.one_of(
    PATHS,
    TARGETS,
    st.sampled_from(["0", "-1", "99999999999999999999", "1e3", "", "nan", "12"]),
)


@fuzz(150)
@given(
    members=st.lists(
        st.tuples(
            SAFE,
            st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE]),
            TARGETS,
            st.binary(max_size=300),
            st.dictionaries(PAX_KEYS, PAX_VALUES, max_size=3),
        ),
        min_size=1,
        max_size=5,
    ),
    chunk=st.integers(1, 700),
)
def test_generated_pax_records_never_write_outside(
    members: list[tuple[str, bytes, str, bytes, dict[str, str]]], chunk: int
) -> None:
    def extract(dest: Path) -> object:
        outside = str(dest.parent.parent / "outside")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, kind, target, data, pax in members:
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = target.replace(OUTSIDE, outside)
                info.size = len(data) if kind == tarfile.REGTYPE else 0
                info.pax_headers = {k: v.replace(OUTSIDE, outside) for k, v in pax.items()}
                try:
                    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
                except (ValueError, UnicodeError):
                    pass
        return extract_tar(
            chunks(buf.getvalue(), chunk),
            dest,
            limits=ExtractLimits(max_total_bytes=4000, max_members=9),
        )

    _holds(extract)


def _bomb(codec: str, mib: int) -> Iterator[bytes]:
    """A tar of one file of `mib` MiB of zeros, compressed: a few KiB that expand 1000s
    of times."""
    info = tarfile.TarInfo("zeros")
    info.size = mib << 20

    def plain() -> Iterator[bytes]:
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        zeros = bytes(1 << 20)
        for _ in range(mib):
            yield zeros
        yield bytes(1024)

    return iter(compress(plain(), codec))  # type: ignore[arg-type]


def test_an_archive_expanding_thousands_of_times_its_size_is_refused_and_leaves_nothing() -> None:
    packed = b"".join(_bomb("zstd", 128))
    assert len(packed) < 128 << 10
    failure: list[ArtifactError] = []

    def extract(dest: Path) -> object:
        try:
            return extract_tar(chunks(packed, 1 << 16), dest)
        except ArtifactError as error:
            failure.append(error)
            raise

    _holds(extract)
    assert failure, "the bomb was extracted"
