"""A seekable tar.zst whose seek table or member index lies. The invariant: reading the
index gives None (not seekable), an index, or IntegrityError; reading a member through
a lying index gives the member's true bytes or IntegrityError; never another
exception, never the bytes of something else, never an allocation sized by a lie."""

from __future__ import annotations

import io
import random
import struct
import tarfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from argosy.artifacts.archive import seekformat as sf
from argosy.artifacts.archive.seekable import SeekableIndex, iter_member, read_index
from argosy.artifacts.archive.seekwriter import MemberIndex, compress_seekable
from argosy.artifacts.archive.tarwriter import write_tar
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import IntegrityError
from tests.hostile.conftest import fuzz

pytestmark = [pytest.mark.hostile]

FRAME = 8192  # small frames: many of them in a small archive
PEAK = 32 << 20  # no hostile table or index may make a read allocate more
U32 = st.one_of(
    st.sampled_from([0, 1, 7, 8, 9, 511, 512, FRAME - 1, FRAME, FRAME + 1, 2**31, 2**32 - 1]),
    st.integers(0, 2**32 - 1),
)
U64 = st.one_of(
    st.sampled_from([0, 1, 511, 512, 513, FRAME, 2**32, 2**63 - 1, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)


@dataclass(frozen=True)
class Parts:
    """A real seekable archive taken apart: its data frames, index body and tar."""

    frames: list[bytes]
    sizes: list[int]
    body: bytes
    members: int
    tar: bytes

    def truth(self) -> dict[str, bytes]:
        """What every member really holds."""
        out = {}
        with tarfile.open(fileobj=io.BytesIO(self.tar)) as t:
            for m in t.getmembers():
                data = t.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
                out[m.name.rstrip("/")] = data
        return out


def build_parts(root: Path) -> Parts:
    index = MemberIndex()
    tar = b"".join(write_tar(root, on_member=index))
    blob = b"".join(compress_seekable([tar], index=index, frame_size=FRAME, threads=0))
    footer = sf.decode_footer(blob, len(blob))
    assert footer is not None
    table = sf.decode_seek_table(blob[len(blob) - footer.table_size :], footer, len(blob))
    frames = [
        blob[table.packed[i] : table.packed[i + 1]] for i in range(table.count - 1)
    ]  # the last listed frame is the index
    sizes = [table.data[i + 1] - table.data[i] for i in range(table.count - 1)]
    frame = blob[table.packed[-2] : table.packed[-1]]
    packed = frame[sf.SKIPPABLE_HEAD.size + sf.INDEX_HEADER.size :]
    body = zstandard.ZstdDecompressor().decompressobj().decompress(packed)
    return Parts(frames, sizes, body, index.members, tar)


def assemble(
    frames: list[bytes],
    sizes: list[int],
    index: bytes | None,
    *,
    table: Callable[[list[int], list[int], list[int]], bytes] | None = None,
) -> bytes:
    compressed = [len(f) for f in frames]
    checksums = [int.from_bytes(f[-4:], "little") for f in frames]
    sizes = list(sizes)
    if index is not None:
        compressed.append(len(index))
        sizes.append(0)
        checksums.append(sf.EMPTY_XXH64_LOW)
    encode = table or sf.encode_seek_table
    return b"".join(frames) + (index or b"") + encode(compressed, sizes, checksums)


def index_frame(body: bytes, *, members: int, body_size: int | None = None) -> bytes:
    packed = zstandard.ZstdCompressor(write_checksum=True).compress(body)
    size = len(body) if body_size is None else body_size
    return sf.index_frame(members, size, packed)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Parts:
    root = tmp_path_factory.mktemp("seek") / "src"
    rng = random.Random(11)
    (root / "d" / "e").mkdir(parents=True)
    for i in range(12):
        (root / "d" / f"f{i}.txt").write_bytes(rng.randbytes(rng.randrange(0, 20_000)))
    (root / "d" / "e" / "big.bin").write_bytes(rng.randbytes(40_000))
    (root / "d" / "link").symlink_to("f1.txt")
    (root / ("n" * 150)).write_bytes(b"long name, pax header")
    return build_parts(root)


@pytest.fixture
def driver(tmp_path: Path) -> LocalDriver:
    (tmp_path / "r" / "b").mkdir(parents=True, exist_ok=True)
    return LocalDriver(tmp_path / "r", "b")


def outcome(driver: LocalDriver, blob: bytes, truth: dict[str, bytes]) -> str:
    """Read the index and every member; check the invariant; say what happened."""
    driver.put("x.tar.zst", blob, size=len(blob), metadata={})
    tracemalloc.start()
    try:
        try:
            index = read_index(driver, "x.tar.zst")
        except IntegrityError:
            return "refused"
        if index is None:
            return "none"
        assert isinstance(index, SeekableIndex)
        served = 0
        for member in index.members:
            try:
                data = b"".join(iter_member(driver, "x.tar.zst", index, member.path))
            except IntegrityError:
                continue
            assert member.path in truth, f"served {member.path!r}, which is not in the tar"
            assert data == truth[member.path], f"served wrong bytes for {member.path!r}"
            served += 1
        return f"served {served}"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < PEAK, f"a hostile archive made the reader allocate {peak} bytes"


def test_the_untouched_archive_serves_every_member(parts: Parts, driver: LocalDriver) -> None:
    blob = assemble(parts.frames, parts.sizes, index_frame(parts.body, members=parts.members))
    assert outcome(driver, blob, parts.truth()) == f"served {parts.members}"
    assert len(parts.frames) > 10


def lying_table(
    count: int | None = None,
    descriptor: int = sf.CHECKSUM_FLAG,
    frame_size: int | None = None,
    edit: Callable[[list[tuple[int, int, int]]], None] = lambda entries: None,
) -> Callable[[list[int], list[int], list[int]], bytes]:
    def encode(compressed: list[int], sizes: list[int], checksums: list[int]) -> bytes:
        entries = list(zip(compressed, sizes, checksums, strict=True))
        edit(entries)
        shape = sf.ENTRY_CHECKED if descriptor & sf.CHECKSUM_FLAG else sf.ENTRY
        body = b"".join(shape.pack(*e[: len(shape.format) - 1]) for e in entries)
        body += sf.FOOTER.pack(
            len(entries) if count is None else count, descriptor, sf.SEEKABLE_MAGIC
        )
        size = len(body) if frame_size is None else frame_size
        return struct.pack("<II", sf.SEEK_TABLE_MAGIC, size) + body

    return encode


def setitem(i: int, value: tuple[int, int, int]) -> Callable[[list[tuple[int, int, int]]], None]:
    def edit(entries: list[tuple[int, int, int]]) -> None:
        entries[i % len(entries)] = value

    return edit


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (lying_table(count=2**32 - 1), "frames, above the cap"),
        (lying_table(count=2**20), "needs .* bytes; the object has"),
        (lying_table(count=3), "does not match its footer"),
        (lying_table(frame_size=12), "does not match its footer"),
        (lying_table(descriptor=0x84), "reserved bits"),
        (lying_table(edit=setitem(0, (2**32 - 1, 8192, 0))), "cannot hold"),
        (lying_table(edit=setitem(0, (100, 2**32 - 1, 0))), "above the cap"),
        (lying_table(edit=setitem(3, (4, 0, 0))), "cannot hold"),
        (lying_table(edit=lambda e: e.append((20, 0, 0))), "cover .* bytes, but"),
        (lying_table(edit=lambda e: e.__delitem__(2)), "cover .* bytes, but"),
    ],
)
def test_a_seek_table_that_lies_about_its_frames_is_refused(
    parts: Parts, driver: LocalDriver, table: Callable[..., bytes], message: str
) -> None:
    index = index_frame(parts.body, members=parts.members)
    blob = assemble(parts.frames, parts.sizes, index, table=table)
    driver.put("x.tar.zst", blob, size=len(blob), metadata={})
    with pytest.raises(IntegrityError, match=message) as refused:
        read_index(driver, "x.tar.zst")
    assert str(refused.value).startswith("local://b/x.tar.zst: ")  # one line naming it
    assert "\n" not in str(refused.value)


def test_frames_whose_sizes_do_not_match_the_table_are_refused_when_read(
    parts: Parts, driver: LocalDriver
) -> None:
    sizes = list(parts.sizes)
    sizes[0], sizes[1] = sizes[0] - 512, sizes[1] + 512  # the same total: the index fits
    index = index_frame(parts.body, members=parts.members)
    blob = assemble(parts.frames, sizes, index)
    driver.put("x.tar.zst", blob, size=len(blob), metadata={})
    found = read_index(driver, "x.tar.zst")
    assert found is not None
    first = found.members[0]
    with pytest.raises(IntegrityError, match="frame 0 decompresses past the 7680 bytes"):
        b"".join(iter_member(driver, "x.tar.zst", found, first.path))


def records(body: bytes, members: int) -> list[list[object]]:
    out, at = [], 0
    for _ in range(members):
        fields = list(sf.RECORD.unpack_from(body, at))
        at += sf.RECORD.size
        names = body[at : at + fields[6] + fields[7]]
        at += len(names)
        out.append([*fields, names])
    return out


def encoded(rows: list[list[object]]) -> bytes:
    return b"".join(sf.RECORD.pack(*row[:8]) + row[8] for row in rows)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[3].__setitem__(0, rows[2][0]), "overlap the previous member"),
        (lambda rows: rows[-1].__setitem__(2, 2**40), "lie outside the"),
        (lambda rows: rows[1].__setitem__(1, 2**64 - 1), "lie outside|tar header's span"),
        (lambda rows: rows[0].__setitem__(5, 9), "unknown type 9"),
        (lambda rows: rows[0].__setitem__(6, 10**6), "run past the index body"),
        (lambda rows: rows.append(list(rows[-1])), "overlap the previous member"),
    ],
)
def test_an_index_that_lies_about_its_members_is_refused(
    parts: Parts,
    driver: LocalDriver,
    edit: Callable[[list[list[object]]], None],
    message: str,
) -> None:
    rows = records(parts.body, parts.members)
    edit(rows)
    index = index_frame(encoded(rows), members=len(rows))
    blob = assemble(parts.frames, parts.sizes, index)
    driver.put("x.tar.zst", blob, size=len(blob), metadata={})
    with pytest.raises(IntegrityError, match=message):
        read_index(driver, "x.tar.zst")


@pytest.mark.parametrize(
    ("members", "body_size", "message"),
    [
        (2**32 - 1, None, "above the cap of 1000000"),
        (None, 2**64 - 1, "cannot hold"),
        (None, sf.MAX_INDEX_BODY, "decompresses past|holds"),
        (None, 10, "cannot hold"),
    ],
)
def test_an_index_header_that_lies_about_its_size_is_refused_before_it_allocates(
    parts: Parts, driver: LocalDriver, members: int | None, body_size: int | None, message: str
) -> None:
    index = index_frame(
        parts.body, members=parts.members if members is None else members, body_size=body_size
    )
    blob = assemble(parts.frames, parts.sizes, index)
    assert outcome(driver, blob, parts.truth()) == "refused"
    with pytest.raises(IntegrityError, match=message):
        read_index(driver, "x.tar.zst")


def test_a_member_moved_onto_another_members_bytes_is_never_served(
    parts: Parts, driver: LocalDriver
) -> None:
    rows = records(parts.body, parts.members)
    files = [i for i, row in enumerate(rows) if row[5] == 0 and row[2]]
    a, b = files[0], files[1]
    name = rows[b][8]
    rows[a][8], rows[a][6] = name, rows[b][6]  # b's name on a's offsets: order kept
    rows[b][8] = b"moved-away"
    rows[b][6] = len(b"moved-away")
    index = index_frame(encoded(rows), members=len(rows))
    blob = assemble(parts.frames, parts.sizes, index)
    driver.put("x.tar.zst", blob, size=len(blob), metadata={})
    found = read_index(driver, "x.tar.zst")
    assert found is not None
    for path in (bytes(name).decode(), "moved-away"):  # type: ignore[call-overload]
        with pytest.raises(IntegrityError, match="is not member"):
            b"".join(iter_member(driver, "x.tar.zst", found, path))


ENTRY_EDIT = st.tuples(st.integers(0, 1000), U32, U32, U32)


@fuzz(150)
@given(
    edits=st.lists(ENTRY_EDIT, max_size=4),
    count=st.one_of(st.none(), U32),
    descriptor=st.sampled_from([0x80, 0x80, 0x00, 0x81, 0x84, 0xFF]),
    frame_size=st.one_of(st.none(), st.none(), U32),
    cut=st.integers(0, 3),
    extra=st.one_of(st.none(), st.tuples(U32, U32)),
)
def test_hostile_seek_tables_never_crash_nor_serve_wrong_bytes(
    parts: Parts,
    driver: LocalDriver,
    edits: list[tuple[int, int, int, int]],
    count: int | None,
    descriptor: int,
    frame_size: int | None,
    cut: int,
    extra: tuple[int, int] | None,
) -> None:
    def edit(entries: list[tuple[int, int, int]]) -> None:
        for at, csize, dsize, checksum in edits:
            entries[at % len(entries)] = (csize, dsize, checksum)
        if extra is not None:
            entries.insert(len(entries) // 2, (extra[0], extra[1], 0))

    frames = parts.frames[: len(parts.frames) - cut] if cut < 3 else parts.frames
    index = index_frame(parts.body, members=parts.members)
    table = lying_table(count=count, descriptor=descriptor, frame_size=frame_size, edit=edit)
    blob = assemble(frames, parts.sizes[: len(frames)], index, table=table)
    outcome(driver, blob, parts.truth())


RECORD_EDIT = st.tuples(
    st.integers(0, 1000),
    st.integers(0, 7),
    st.one_of(U64, st.integers(-4, 4).map(lambda blocks: ("shift", blocks * 512))),
)


@fuzz(150)
@given(
    edits=st.lists(RECORD_EDIT, max_size=3),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3),
    members=st.one_of(st.none(), st.none(), U32),
    body_size=st.one_of(st.none(), st.none(), U64),
)
def test_hostile_member_indexes_never_crash_nor_serve_wrong_bytes(
    parts: Parts,
    driver: LocalDriver,
    edits: list[tuple[int, int, int | tuple[str, int]]],
    flips: list[tuple[int, int]],
    members: int | None,
    body_size: int | None,
) -> None:
    rows = records(parts.body, parts.members)
    limits = (2**64 - 1, 2**64 - 1, 2**64 - 1, 2**63 - 1, 2**32 - 1, 255, 2**32 - 1, 2**32 - 1)
    for at, field, value in edits:
        row = rows[at % len(rows)]
        if isinstance(value, tuple):  # a small lie: a neighbouring block, a size off by some
            value = max(0, int(row[field]) + value[1])  # type: ignore[call-overload]
        row[field] = value % (limits[field] + 1) if field != 3 else value % 2**63
    body = bytearray(encoded(rows))
    for at, mask in flips:
        body[at % len(body)] ^= mask
    index = index_frame(
        bytes(body), members=len(rows) if members is None else members, body_size=body_size
    )
    blob = assemble(parts.frames, parts.sizes, index)
    outcome(driver, blob, parts.truth())
