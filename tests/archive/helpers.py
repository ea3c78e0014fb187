"""Shared helpers for the archive tests: a tree with every kind of entry, a snapshot
to compare trees by, chunking, and hostile tar builders."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import stat
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import zstandard

LONG_DIR = "d" * 120
LONG_FILE = "n" * 120 + ".txt"  # 245 bytes with its folder: the ustar prefix split
VERY_LONG = "/".join(["v" * 100] * 3) + "/deep.txt"  # > 256 bytes: pax path


def make_tree(root: Path) -> Path:
    """A tree with modes, empty and read-only folders, symlinks (relative, to a
    folder, dangling, long target), long and non-ASCII names, a 2.5 MiB file."""
    root.mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "a.txt").chmod(0o640)
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty.txt").write_bytes(b"")
    (root / "readonly.txt").write_text("ro")
    (root / "readonly.txt").chmod(0o444)
    (root / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024 + 512 * 1024 + 7))
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "sub" / "deeper" / "file.txt").write_text("deep\n" * 1000)
    (root / "empty_dir").mkdir()
    (root / "private_empty").mkdir(mode=0o700)
    (root / "private_empty").chmod(0o700)
    (root / "locked").mkdir()
    (root / "locked" / "inside.txt").write_text("inside a read-only folder")
    (root / "locked").chmod(0o555)
    (root / "link").symlink_to("a.txt")
    (root / "dirlink").symlink_to("sub")
    (root / "dangling").symlink_to("missing")
    (root / "sub" / "deeper" / "up").symlink_to("../../a.txt")
    (root / LONG_DIR).mkdir()
    (root / LONG_DIR / LONG_FILE).write_text("long name")
    very = root / VERY_LONG
    very.parent.mkdir(parents=True)
    very.write_text("very long name")
    (root / "longlink").symlink_to(VERY_LONG)
    (root / "ünïcödé").mkdir()
    (root / "ünïcödé" / "ファイル.txt").write_text("名前")
    return root


def snapshot(root: Path, *, mtimes: bool = False) -> dict[str, tuple[object, ...]]:
    """Every entry under root: kind, mode and content digest or link target."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(st.st_mode):
                entry: tuple[object, ...] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                entry = ("dir", oct(stat.S_IMODE(st.st_mode)))
            else:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                entry = ("file", oct(stat.S_IMODE(st.st_mode)), digest)
            if mtimes and not stat.S_ISLNK(st.st_mode):
                entry += (int(st.st_mtime),)
            out[rel] = entry
    return out


def listing(root: Path) -> set[str]:
    """Every path under root (not following symlinks)."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def tar_bytes(
    *members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    """A tar built by Python's tarfile: it writes hostile names as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    size: int = 0,
    linkname: str = "",
    mode: int = 0o644,
) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.linkname = linkname
    ti.mode = mode
    return ti


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return info(name, size=len(data), mode=mode), data


def pooled(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """Chunks as a download hands them: one bytearray, refilled for every chunk (each
    is valid until the next is asked for), the last a shorter bytearray of its own;
    typed as bytes, as `download.iter_object` types them."""
    buffer = bytearray(size)
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        if len(piece) < size:
            yield cast(bytes, bytearray(piece))
        else:
            buffer[:] = piece
            yield cast(bytes, buffer)


TAR_DIALECTS = ["pax", "gnu", "ustar"]
SPLIT_NAME = "/".join(["p" * 70, "q" * 70, "r.txt"])  # over 100 bytes: ustar's prefix split
_TARFILE_FORMAT = {
    "pax": tarfile.PAX_FORMAT,
    "gnu": tarfile.GNU_FORMAT,
    "ustar": tarfile.USTAR_FORMAT,
}


def foreign_tree(root: Path, *, dialect: str) -> Path:
    """What other tools' tars must carry: a name over 100 bytes (ustar's prefix split),
    non-ASCII names, an mtime with a fraction of a second, an empty folder, modes and
    a symlink; beyond ustar, a name over 256 bytes and a link target over 100."""
    root.mkdir(parents=True)
    (root / "plain.txt").write_text("plain\n" * 100)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    split = root / SPLIT_NAME
    split.parent.mkdir(parents=True)
    split.write_text("long name")
    (root / "ünïcödé").mkdir()
    (root / "ünïcödé" / "ファイル.txt").write_text("名前")
    (root / "empty").mkdir()
    (root / "link").symlink_to("plain.txt")
    if dialect != "ustar":
        very = root / VERY_LONG
        very.parent.mkdir(parents=True)
        very.write_text("very long name")
        (root / "longlink").symlink_to(VERY_LONG)
    os.utime(root / "plain.txt", (1_700_000_000.75, 1_700_000_000.75))
    return root


def foreign_tar(root: Path, *, tool: str, dialect: str) -> bytes:
    """An uncompressed tar of root's contents by Python's tarfile or by GNU tar."""
    if tool == "gnu-tar":
        return subprocess.run(
            ["tar", "cf", "-", f"--format={dialect}", "-C", str(root), "."],
            check=True,
            capture_output=True,
        ).stdout
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=_TARFILE_FORMAT[dialect]) as tar:
        tar.add(root, arcname=".")
    return buf.getvalue()


def compressed(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.compress(data)
    if codec == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


# ---- decompression bombs, generated small: never the expanded bytes on disk ----------

MiB = 1 << 20


def zeros_tar(size: int, name: bytes = b"zeros.bin") -> Iterator[bytes]:
    """A tar stream of one file of `size` zero bytes (a multiple of 1 MiB), in 1 MiB
    chunks."""
    from argosy.artifacts.archive.tarformat import encode_header, end_of_archive

    yield encode_header(name, mode=0o644, size=size, mtime=0, typeflag=b"0")
    zeros = bytes(MiB)
    for _ in range(size // MiB):
        yield zeros
    yield end_of_archive(512 + size)


def tar_bomb(size: int, codec: str) -> bytes:
    """A tar.zst or tar.gz of `size` zeros: a few KiB (zstd), or 1/1028th (gzip at zlib's
    level 9: deflate's ceiling is ~1032:1)."""
    engine = (
        zstandard.ZstdCompressor().compressobj()
        if codec == "zstd"
        else zlib.compressobj(9, zlib.DEFLATED, 31)
    )
    return b"".join([*(engine.compress(chunk) for chunk in zeros_tar(size)), engine.flush()])


def zip_bomb(*members: tuple[str, int]) -> bytes:
    """A zip of deflated members of zeros: (name, size) each; ~1/1000th of the size."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, size in members:
            with zf.open(name, "w", force_zip64=True) as out:
                for _ in range(size // MiB):
                    out.write(bytes(MiB))
    return buffer.getvalue()


def log_text(size: int) -> bytes:
    """Log lines that compress about 10:1 with zstd, 9:1 with gzip."""
    rnd = random.Random(1)
    lines = []
    have = i = 0
    while have < size:
        line = (
            f"2024-05-{i // 100000 % 28 + 1:02d}T12:{i // 1000 % 60:02d}:{i // 17 % 60:02d}Z"
            f" INFO worker-{rnd.randrange(8)} batch {i} done in {rnd.randrange(1000)} ms"
            " status=ok\n"
        )
        lines.append(line)
        have += len(line)
        i += 1
    return "".join(lines).encode()[:size]
