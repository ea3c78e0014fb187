"""Known exploit archives, each refused with a clear error naming the member, with
nothing written outside the destination and nothing left under its name.

The "outside" is observable: the destination sits at TMP/a/b/dest and every escape
aims at TMP (absolute paths point into TMP/victim, not the real /etc), so comparing
TMP before and after shows any write that got out.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import zstandard

from argosy.artifacts.archive import ExtractLimits, extract_tar, extract_zip
from argosy.artifacts.archive.tarformat import encode_header, end_of_archive, pax_record
from argosy.artifacts.errors import ArtifactError, IntegrityError, InvalidSpec
from tests.archive.helpers import chunks, file, info, listing, tar_bytes

SYM, LNK, DIR = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("original")
    (tmp_path / "a" / "b").mkdir(parents=True)
    return tmp_path


def _refused(
    world: Path, extract: Callable[[Path], object], error: type[ArtifactError], match: str
) -> None:
    before = listing(world)
    with pytest.raises(error, match=match):
        extract(world / "a" / "b" / "dest")
    assert listing(world) == before  # nothing outside, no dest, no temporary folder
    assert (world / "victim" / "keep.txt").read_text() == "original"


def _tar_case(
    world: Path,
    members: Sequence[tuple[tarfile.TarInfo, bytes | None]],
    error: type[ArtifactError],
    match: str,
    **kwargs: object,
) -> None:
    data = tar_bytes(*members)
    _refused(
        world,
        lambda dest: extract_tar(chunks(data), dest, **kwargs),  # type: ignore[arg-type]
        error,
        match,
    )


def _victim(world: Path) -> str:
    return str(world / "victim")


CASES: dict[str, Callable[[Path], tuple[list[tuple[tarfile.TarInfo, bytes | None]], str]]] = {
    "an absolute path": lambda w: ([file(f"{_victim(w)}/pwned")], "has an absolute path"),
    "a parent-folder escape": lambda w: (
        [file("../../etc/passwd")],
        r"'\.\./\.\./etc/passwd' has a '\.\.' segment",
    ),
    "a dot-dot in the middle": lambda w: ([file("ok/../../../victim/pwned")], "has a '..' segment"),
    "a symlink to an absolute folder, then a file through it": lambda w: (
        [(info("etc", SYM, linkname=_victim(w)), None), file("etc/pwned")],
        "'etc' points to the absolute path",
    ),
    "a file through a symlink that stays inside": lambda w: (
        [
            (info("sub", DIR, mode=0o755), None),
            (info("ok", SYM, linkname="sub"), None),
            file("ok/pwned"),
        ],
        "'ok/pwned' goes through 'ok', which is a symlink",
    ),
    "a relative symlink climbing out": lambda w: (
        [(info("x/up", SYM, linkname="../../../victim"), None)],
        "leads outside",
    ),
    "a symlink chain that escapes only when resolved": lambda w: (
        [(info("a", SYM, linkname="."), None), (info("b", SYM, linkname="a/a/a/.."), None)],
        "'b' -> 'a/a/a/..' has a '..' after a name",
    ),
    "a dangling symlink later aimed outside": lambda w: (
        [(info("x", SYM, linkname="y"), None), (info("y", SYM, linkname=".."), None)],
        "'y' -> '..' leads outside",
    ),
    "a deep chain past the depth of its folder (CVE-2025-4517 shape)": lambda w: (
        [(info("/".join(["d" * 200] * 8) + "/l", SYM, linkname="../" * 9 + "victim"), None)],
        "leads outside",
    ),
    "a hardlink to a file outside": lambda w: (
        [(info("h", LNK, linkname="../../victim/keep.txt"), None)],
        "hardlink 'h' points to '../../victim/keep.txt', outside",
    ),
    "a hardlink to an absolute path": lambda w: (
        [(info("h", LNK, linkname=f"{_victim(w)}/keep.txt"), None)],
        "outside the destination",
    ),
    "a hardlink to a symlink": lambda w: (
        [file("f"), (info("s", SYM, linkname="f"), None), (info("h", LNK, linkname="s"), None)],
        "target is not a regular file",
    ),
    "a character device": lambda w: (
        [(info("null", tarfile.CHRTYPE), None)],
        "'null' is a chardev",
    ),
    "a FIFO": lambda w: ([(info("pipe", tarfile.FIFOTYPE), None)], "'pipe' is a fifo"),
    "a duplicate file name": lambda w: ([file("dup"), file("dup")], "'dup' appears twice"),
    "a file replaced by a symlink of the same name": lambda w: (
        [file("dup"), (info("dup", SYM, linkname="."), None)],
        "'dup' appears twice",
    ),
    "a folder replaced by a symlink": lambda w: (
        [(info("d", DIR, mode=0o755), None), file("d/f"), (info("d", SYM, linkname="."), None)],
        "'d' appears twice",
    ),
    "a file inside a file": lambda w: (
        [file("f"), file("f/g")],
        "'f/g' goes through 'f', which is a file",
    ),
    "a member declaring 1 TiB": lambda w: (
        [(info("huge", size=1 << 40), None)],
        "'huge' declares 1099511627776 bytes",
    ),
    "a member with an empty name": lambda w: ([file("./")], "has an empty name"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_tar_is_refused_and_nothing_escapes(case: str, world: Path) -> None:
    members, match = CASES[case](world)
    _tar_case(world, members, InvalidSpec, match)


def test_a_1_tib_member_in_gnu_base_256_is_refused_before_any_byte(world: Path) -> None:
    data = tar_bytes((info("huge", size=1 << 40), None), fmt=tarfile.GNU_FORMAT)
    assert data[124] == 0x80  # the size field is base-256
    _refused(
        world, lambda dest: extract_tar([data], dest), InvalidSpec, "declares 1099511627776 bytes"
    )


def test_more_members_than_the_cap_is_refused(world: Path) -> None:
    members = [file(f"f{i}") for i in range(11)]
    _tar_case(
        world,
        members,
        InvalidSpec,
        "more than 10 members",
        limits=ExtractLimits(max_members=10),
    )


def test_more_bytes_than_the_cap_is_refused(world: Path) -> None:
    members = [file("one", b"x" * 600), file("two", b"y" * 600)]
    _tar_case(
        world,
        members,
        InvalidSpec,
        "'two' declares 600 bytes",
        limits=ExtractLimits(max_total_bytes=1000),
    )


def test_a_pax_header_bigger_than_the_cap_is_refused(world: Path) -> None:
    records = pax_record(b"comment", b"z" * 5000)
    data = (
        encode_header(b"././@PaxHeader", mode=0o644, size=len(records), mtime=0, typeflag=b"x")
        + records
        + bytes(-len(records) % 512)
    )
    data += encode_header(b"f", mode=0o644, size=0, mtime=0, typeflag=b"0")
    data += end_of_archive(len(data))
    _refused(
        world,
        lambda dest: extract_tar([data], dest, limits=ExtractLimits(max_header_bytes=4096)),
        InvalidSpec,
        r"extended header of \d+ bytes, above the cap of 4096",
    )


def test_a_nul_byte_smuggled_into_a_pax_path_is_refused(world: Path) -> None:
    records = pax_record(b"path", b"ok\x00/../../victim/x")
    data = (
        encode_header(b"././@PaxHeader", mode=0o644, size=len(records), mtime=0, typeflag=b"x")
        + records
        + bytes(-len(records) % 512)
    )
    data += encode_header(b"f", mode=0o644, size=0, mtime=0, typeflag=b"0")
    data += end_of_archive(len(data))
    _refused(world, lambda dest: extract_tar([data], dest), InvalidSpec, "NUL byte")


def test_a_gnu_sparse_member_is_refused_as_unsupported(world: Path) -> None:
    data = encode_header(b"sparse", mode=0o644, size=0, mtime=0, typeflag=b"S")
    data += end_of_archive(len(data))
    _refused(world, lambda dest: extract_tar([data], dest), InvalidSpec, "GNU sparse")


def _good_tar() -> bytes:
    return tar_bytes(*[file(f"f{i}.txt", os.urandom(3000)) for i in range(40)])


def test_a_truncated_zstd_frame_is_refused_and_nothing_is_left(world: Path) -> None:
    packed = zstandard.ZstdCompressor().compress(_good_tar())
    _refused(
        world,
        lambda dest: extract_tar(chunks(packed[: len(packed) // 2], 1000), dest),
        IntegrityError,
        "zstd stream truncated",
    )


def test_a_truncated_gzip_is_refused_and_nothing_is_left(world: Path) -> None:
    packed = gzip.compress(_good_tar())
    _refused(
        world,
        lambda dest: extract_tar(chunks(packed[:-9], 1000), dest),
        IntegrityError,
        "gzip stream truncated",
    )


def test_a_tar_cut_inside_a_member_is_refused(world: Path) -> None:
    data = _good_tar()
    _refused(
        world,
        lambda dest: extract_tar([data[: 512 * 20 + 100]], dest),
        IntegrityError,
        "truncated inside member",
    )


def test_a_tar_without_its_end_marker_is_refused(world: Path) -> None:
    data = tar_bytes(file("a", b"x" * 512))
    _refused(
        world,
        lambda dest: extract_tar([data[:1024]], dest),
        IntegrityError,
        "without its end-of-archive marker",
    )


def test_a_corrupt_header_checksum_is_refused(world: Path) -> None:
    data = bytearray(_good_tar())
    data[3] ^= 1
    _refused(
        world, lambda dest: extract_tar([bytes(data)], dest), IntegrityError, "checksum mismatch"
    )


# ---- zip ----------------------------------------------------------------------------


def _zip(*members: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def _symlink_info(name: str) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name)
    zi.create_system = 3
    zi.external_attr = 0o120777 << 16
    return zi


def _zip_refused(world: Path, data: bytes, error: type[ArtifactError], match: str) -> None:
    _refused(world, lambda dest: extract_zip(lambda s, e: data[s:e], len(data), dest), error, match)


@pytest.mark.parametrize(
    "name, match",
    [
        ("../../victim/pwned", "has a '..' segment"),
        ("/abs/pwned", "has an absolute path"),
    ],
)
def test_a_zip_member_escaping_by_name_is_refused(world: Path, name: str, match: str) -> None:
    _zip_refused(world, _zip(("ok.txt", b"fine"), (name, b"evil")), InvalidSpec, match)


def test_a_zip_symlink_to_outside_then_a_file_through_it_is_refused(world: Path) -> None:
    data = _zip((_symlink_info("etc"), _victim(world).encode()), ("etc/pwned", b"evil"))
    _zip_refused(world, data, InvalidSpec, "'etc' points to the absolute path")


def _central_offsets(data: bytes) -> list[int]:
    at, found = 0, []
    while (at := data.find(b"PK\x01\x02", at)) >= 0:
        found.append(at)
        at += 4
    return found


def test_overlapping_zip_members_a_zip_bomb_trick_are_refused(world: Path) -> None:
    data = bytearray(_zip(("a.txt", b"a" * 1000), ("b.txt", b"b" * 1000)))
    second = _central_offsets(bytes(data))[1]
    struct.pack_into("<I", data, second + 42, 0)  # b.txt now claims a.txt's bytes
    _zip_refused(world, bytes(data), IntegrityError, "overlaps")


def test_a_zip_member_inflating_past_its_declared_size_is_refused(world: Path) -> None:
    data = bytearray(_zip(("bomb.txt", b"z" * 100_000)))
    central = _central_offsets(bytes(data))[0]
    struct.pack_into("<I", data, central + 24, 1000)  # declared size
    _zip_refused(world, bytes(data), IntegrityError, "'bomb.txt' expands past the 1000 bytes")


def test_a_zip_member_with_a_bad_crc_is_refused(world: Path) -> None:
    data = bytearray(_zip(("a.txt", b"payload" * 100)))
    central = _central_offsets(bytes(data))[0]
    struct.pack_into("<I", data, central + 16, 0xDEADBEEF)
    _zip_refused(world, bytes(data), IntegrityError, "'a.txt' fails its check")


def test_a_zip_cut_short_is_refused(world: Path) -> None:
    data = _zip(("a.txt", b"payload" * 100))
    _zip_refused(world, data[:-30], IntegrityError, "no end-of-central-directory")


def test_an_encrypted_zip_member_is_refused(world: Path) -> None:
    data = bytearray(_zip(("secret.txt", b"s")))
    central = _central_offsets(bytes(data))[0]
    struct.pack_into("<H", data, central + 8, 1)
    _zip_refused(world, bytes(data), InvalidSpec, "'secret.txt' is encrypted")
