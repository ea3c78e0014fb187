"""Local throughput of the archive layer, no server involved (`python -m bench.archive_local DIR`).

Why it exists: the archive writer, codecs and extractor must keep up with the network
path, and "on par with GNU tar" needs a number next to GNU tar's on the same tree, in
the same run. GNU tar and zlib are references only; Argosy never runs them.

Reported (median of `--runs`): tar writers in files/s and MiB/s of source; codecs in
MiB/s of tar stream (compress and decompress; one zstd frame, and the seekable frames
tar.zst is written in); the tar.zst / tar.gz pipelines from the
tree; extraction against `tar xf` into tmpfs (/dev/shm, so other disk users on the
machine do not decide the result); and the peak RSS of a child streaming tar.zst.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator

from argosy.artifacts.archive import (
    compress,
    decompress,
    extract_tar,
    write_archive,
    write_tar,
)
from argosy.artifacts.archive.seekwriter import compress_seekable

MiB = 1 << 20


def _tree_stats(root: str) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            files += 1
            size += st.st_size if os.path.isfile(os.path.join(dirpath, name)) else 0
    return files, size


def _median(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _drain(chunks: Iterator[bytes]) -> int:
    return sum(len(c) for c in chunks)


def _drain_decompressed(blob: bytes, codec: str) -> int:
    return _drain(decompress(_pieces(blob), codec))  # type: ignore[arg-type]


def _drain_archive(root: str, fmt: str) -> int:
    return _drain(write_archive(root, fmt))  # type: ignore[arg-type]


class _Sink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        return len(b)


def _tarfile_stream(root: str) -> None:
    with tarfile.open(fileobj=_Sink(), mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root, arcname=".")


def _gnu_tar(root: str) -> None:
    # through a pipe: GNU tar skips reading file data when its output is /dev/null
    subprocess.run(f"tar cf - -C '{root}' . | cat > /dev/null", shell=True, check=True)


def _pieces(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for i in range(0, len(data), MiB):
        yield bytes(view[i : i + MiB])


def _zlib6(data: bytes) -> int:
    engine = zlib.compressobj(6, zlib.DEFLATED, 31)
    return sum(len(engine.compress(p)) for p in _pieces(data)) + len(engine.flush())


def _peak_rss_mib(root: str) -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent
    code = (
        "import sys\n"
        "from argosy.artifacts.archive import compress, write_tar\n"
        "for _ in compress(write_tar(sys.argv[1]), 'zstd'): pass\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, root], check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root, runs = args.root, args.runs
    files, size = _tree_stats(root)
    src = size / MiB
    print(f"tree: {files} files, {src:.0f} MiB; load average {os.getloadavg()[0]:.1f}")

    print("\n== tar writers (files/s, MiB/s of source)")
    for name, fn in [
        ("argosy write_tar", lambda: _drain(write_tar(root))),
        ("tarfile 'w|'", lambda: _tarfile_stream(root)),
        ("GNU tar (reference)", lambda: _gnu_tar(root)),
    ]:
        t = _median(runs, fn)
        print(f"{name:24s} {t:6.2f} s  {files / t:8.0f} files/s  {src / t:7.0f} MiB/s")

    tar = b"".join(write_tar(root))
    mib = len(tar) / MiB
    print(f"\n== codecs on the {mib:.0f} MiB tar stream (MiB/s, ratio)")
    cases: list[tuple[str, str, int | None, int | None]] = [
        ("zstd -3, 1 thread", "zstd", 3, 0),
        ("zstd -3, threads=-1", "zstd", 3, -1),
        ("zstd -1, threads=-1", "zstd", 1, -1),
        ("gzip ISA-L level 1", "gzip", 1, None),
        ("gzip ISA-L level 6 (3)", "gzip", 6, None),
    ]
    for name, codec, level, threads in cases:
        packed: list[bytes] = []

        def run(
            codec: str = codec,
            level: int = level,
            threads: int | None = threads,
            packed: list[bytes] = packed,
        ) -> None:  # this case's values, bound now
            packed[:] = list(
                compress(
                    _pieces(tar),
                    codec,
                    level=level,  # type: ignore[arg-type]
                    threads=threads,
                )
            )

        t = _median(runs, run)
        blob = b"".join(packed)
        back = _median(runs, functools.partial(_drain_decompressed, blob, codec))
        print(
            f"{name:24s} compress {mib / t:6.0f}  decompress {mib / back:6.0f}"
            f"  ratio {len(tar) / len(blob):4.2f}"
        )
    for name, frame in [("seekable zstd -3, 4 MiB", 4 * MiB), ("seekable zstd -3, 8 MiB", 8 * MiB)]:
        made: list[bytes] = []

        def seekable(frame: int = frame, made: list[bytes] = made) -> None:
            made[:] = list(compress_seekable(_pieces(tar), frame_size=frame))

        t = _median(runs, seekable)
        blob = b"".join(made)
        back = _median(runs, functools.partial(_drain_decompressed, blob, "zstd"))
        print(
            f"{name:24s} compress {mib / t:6.0f}  decompress {mib / back:6.0f}"
            f"  ratio {len(tar) / len(blob):4.2f}  (tar.zst's frames, no member index)"
        )
    t = _median(1, lambda: _zlib6(tar))
    print(f"{'zlib -6 (reference)':24s} compress {mib / t:6.0f}")

    print("\n== pipelines from the tree (MiB/s of source)")
    for name, fmt in [
        ("tar.zst (zstd -3)", "tar.zst"),
        ("tar.gz (ISA-L 1)", "tar.gz"),
        ("zip (ISA-L 1)", "zip"),
    ]:
        t = _median(runs, functools.partial(_drain_archive, root, fmt))
        print(f"{name:24s} {t:6.2f} s  {src / t:7.0f} MiB/s  {files / t:8.0f} files/s")

    print("\n== extraction into tmpfs (files/s)")
    zst = b"".join(compress(_pieces(tar), "zstd"))
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        archive = os.path.join(shm, "a.tar")
        with open(archive, "wb") as f:
            f.write(tar)
        counter = iter(range(10**6))

        def ours(data: bytes, codec: str) -> None:
            dest = os.path.join(shm, f"out{next(counter)}")
            extract_tar(_pieces(data), dest, compression=codec)  # type: ignore[arg-type]
            shutil.rmtree(dest)

        def gnu() -> None:
            dest = os.path.join(shm, f"gnu{next(counter)}")
            os.mkdir(dest)
            subprocess.run(["tar", "xf", archive, "-C", dest], check=True)
            shutil.rmtree(dest)

        for name, fn in [
            ("argosy extract_tar (tar)", lambda: ours(tar, "none")),
            ("argosy extract_tar (zst)", lambda: ours(zst, "zstd")),
            ("GNU tar xf (reference)", gnu),
        ]:
            t = _median(runs, fn)
            print(f"{name:26s} {t:6.2f} s  {files / t:8.0f} files/s  {src / t:7.0f} MiB/s")

    print(f"\npeak RSS streaming tar.zst of the tree: {_peak_rss_mib(root):.0f} MiB")


if __name__ == "__main__":
    main()
