"""Small files of an extraction made by two other processes, while this one parses.

Making a small file is mostly the kernel's work (open, write, close: ~65 us a file on
ext4 here), and in one Python process that work waits its turn with the parsing, behind
the GIL: threads made it slower. Two file-making processes (filemaker.py) do it on
the other core instead: a tar.zst of 20,000 small files (276 MiB) extracted from memory
onto ext4 in 1.89 s, where the extractor alone took 2.28 s and `zstd -d | tar -x` 2.00 s
(hand-timed on 2 cores, medians of 5, alternating).

Each process has a shared ring (`RING` bytes of anonymous shared memory): a file's bytes
are copied in, its record (where, how long, mode, path) goes down a pipe, and the
process answers with the ring bytes it is done with, or with the errno and path of the
first file it could not make. A folder's files all go to the same process (by a hash
of the folder), so two never contend for one folder's lock. Memory is the rings,
whatever the archive.

The caller makes every folder before handing over a file in it, and `settle()`s before
anything that needs the files made (a hardlink to one, the folders' final modes).
"""

from __future__ import annotations

import logging
import mmap
import os
import select
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

from argosy.artifacts.archive.codecs import usable_cpus
from argosy.artifacts.archive.filemaker import ANSWER, FCHMOD, RECORD, SKIP, UTIME
from argosy.artifacts.errors import LocalIOError

RING = 8 << 20  # each process's shared bytes; files up to `LARGEST` go through it
LARGEST = 1 << 20  # larger files are written by the extractor itself
_PROGRAM = str(Path(__file__).with_name("filemaker.py"))
_BATCH = 64 << 10  # records are sent in batches of about this many bytes
START_TIMEOUT = 10.0  # seconds a process has to answer once (it takes ~25 ms here)

log = logging.getLogger("argosy.extract")


class MakerFailed(Exception):
    """A file-making process could not make `path` (relative to the root): `error`."""

    def __init__(self, path: str, error: OSError) -> None:
        super().__init__(path, error)
        self.path = path
        self.error = error


class _NeverRan(Exception):
    """A file-making process did not answer once: it ended first (its interpreter or
    program cannot run here) or took longer than START_TIMEOUT (`why` says which)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Maker:
    """One file-making process and its ring."""

    def __init__(self) -> None:
        self.ring_fd = os.memfd_create("argosy-extract", os.MFD_CLOEXEC)
        os.ftruncate(self.ring_fd, RING)
        self.ring = mmap.mmap(self.ring_fd, RING)
        self.view = memoryview(self.ring)
        records_in, self.records = os.pipe()
        self.answers, answers_out = os.pipe()
        os.set_blocking(self.answers, False)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    _PROGRAM,
                    str(self.ring_fd),
                    str(records_in),
                    str(answers_out),
                ],
                pass_fds=(self.ring_fd, records_in, answers_out),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(self.records)
            self._release()
            raise
        finally:
            os.close(records_in)
            os.close(answers_out)
        self.head = 0  # where the next file's bytes go
        self.used = 0  # ring bytes (plus one per file) not yet answered for
        self.batch = bytearray()
        self.heard = b""  # an answer not yet whole
        self.up = False  # it has answered once: it runs
        self.started = time.monotonic()

    def is_up(self, *, wait: bool) -> bool:
        """Whether it has answered once (with `wait`, once it has); _NeverRan if it
        ended first, or takes more than START_TIMEOUT from its start."""
        while not self.up:
            left = self.started + START_TIMEOUT - time.monotonic()
            if wait:
                select.select([self.answers], [], [], max(left, 0))
            try:
                self._hear(block=False)
            except LocalIOError:
                raise _NeverRan(f"ended before it ran (exit {self.process.returncode})") from None
            if not self.up and left <= 0:
                raise _NeverRan(f"did not answer within {START_TIMEOUT:g} s")
            if not wait:
                break
        return self.up

    def add(
        self, path: bytes, pieces: Iterable[bytes], size: int, mode: int, flags: int, mtime: int
    ) -> int:
        """Copy the file's bytes into the ring as they come (a piece may be a buffer its
        reader refills next) and queue its record; returns how many bytes there were,
        for the caller to check against `size`: the file is queued only when they match,
        and no more than the `size` bytes set aside are ever written."""
        skip = RING - self.head if self.head + size > RING else 0
        self._room(size + 1 + skip)
        if skip:  # the file would run past the ring's end: start again at 0
            self.batch += RECORD.pack(self.head, skip - 1, 0, SKIP, 0, 0)
            self.used += skip
            self.head = 0
        at = end = self.head
        for piece in pieces:
            if end + len(piece) > at + size:
                return end - at + len(piece)
            self.view[end : end + len(piece)] = piece
            end += len(piece)
        if end - at != size:
            return end - at
        self.head = end
        self.used += size + 1
        self.batch += RECORD.pack(at, size, mode, flags, mtime, len(path))
        self.batch += path
        if len(self.batch) >= _BATCH:
            self.send()
        return size

    def send(self) -> None:
        if self.batch:
            self._hear(block=False)
            try:
                left = memoryview(self.batch)
                while left:  # blocking: it waits for room in the pipe
                    left = left[os.write(self.records, left) :]
            except BrokenPipeError:
                self._hear(block=True)
                raise self._died() from None
            self.batch = bytearray()

    def settle(self) -> None:
        """Wait until every file handed over is made."""
        self.send()
        while self.used:
            self._hear(block=True)

    def _room(self, need: int) -> None:
        while RING - self.used < need:
            self.send()
            self._hear(block=True)

    def _hear(self, *, block: bool) -> None:
        """Take in the answers there are (with `block`, wait for at least one)."""
        if block:
            select.select([self.answers], [], [])
        try:
            data = os.read(self.answers, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            raise self._died()
        self.up = True
        buf = self.heard + data
        pos = 0
        while len(buf) - pos >= ANSWER.size:
            done, code, size = ANSWER.unpack_from(buf, pos)
            if len(buf) - pos - ANSWER.size < size:
                break
            path = buf[pos + ANSWER.size : pos + ANSWER.size + size]
            pos += ANSWER.size + size
            self.used -= done
            if code:
                raise MakerFailed(os.fsdecode(path), OSError(code, os.strerror(code)))
        self.heard = buf[pos:]

    def _died(self) -> LocalIOError:
        try:
            code: int | None = self.process.wait(10)  # its answers ended: it is ending
        except subprocess.TimeoutExpired:
            code = None
        return LocalIOError(
            f"a file-making process of the extraction ended (exit {code}) before making every file"
        )

    def kill(self) -> None:
        try:
            os.close(self.records)
        except OSError:
            pass
        self.process.kill()
        self.process.wait()
        self._release()

    def _release(self) -> None:
        os.close(self.answers)
        self.view.release()
        self.ring.close()
        os.close(self.ring_fd)


class Makers:
    """`count` file-making processes, started by the first `ready()`."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self._makers: list[_Maker] = []
        self._failed_to_start = False

    def ready(self, *, wait: bool = False) -> bool:
        """Whether files can be handed over: the processes start on the first call (~25
        ms here before they run: the caller goes on making files itself meanwhile), and
        files can be handed over once each has answered (with `wait`, once it has). If
        they cannot start (no interpreter to run, no processes left), or one ends or
        takes more than START_TIMEOUT before it answers (its program cannot run here),
        never: the caller makes the files itself, as without them."""
        if not self._makers and not self._failed_to_start:
            try:
                for _ in range(self.count):
                    self._makers.append(_Maker())
            except OSError:
                self.kill()
                self._failed_to_start = True
        if not self._makers:
            return False
        try:
            return all(maker.is_up(wait=wait) for maker in self._makers)
        except _NeverRan as ended:
            # nothing was handed over: files go to them only once all have answered
            self.kill()
            self._failed_to_start = True
            log.warning(
                "a file-making process of the extraction %s: this extraction makes its"
                " files itself",
                ended.why,
            )
            return False

    def add(
        self,
        path: bytes,
        pieces: Iterable[bytes],
        size: int,
        mode: int,
        *,
        fchmod: bool,
        mtime: int | None,
    ) -> int:
        """Have the file at `path` (absolute) made from `pieces`, which should hold `size`
        bytes: returns how many they held (the file is queued only when that is `size`).
        Only once `ready()`."""
        maker = self._makers[zlib.crc32(path.rpartition(b"/")[0]) % self.count]
        flags = (FCHMOD if fchmod else 0) | (UTIME if mtime is not None else 0)
        return maker.add(path, pieces, size, mode, flags, mtime or 0)

    def settle(self) -> None:
        for maker in self._makers:
            maker.settle()

    def close(self) -> None:
        """Settle, then end the processes. Raises MakerFailed for a file not made.
        Everything handed over is made (written to the kernel) once settled, so they are
        ended at once (one that never came up, or its interpreter's exit, would keep the
        extraction ~25 ms)."""
        try:
            self.settle()
        finally:
            self.kill()

    def kill(self) -> None:
        makers, self._makers = self._makers, []
        for maker in makers:
            maker.kill()


def usable() -> bool:
    """Whether this system can run the file makers (memfd, and a second CPU to run on)."""
    return hasattr(os, "memfd_create") and usable_cpus() >= 2 and bool(sys.executable)
