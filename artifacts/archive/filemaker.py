"""The file-making process an extraction hands small files to (see makers.py).

Run as `python -I -S filemaker.py RING_FD RECORDS_FD ANSWERS_FD`: the standard library
only, so it starts in milliseconds. It reads records from RECORDS_FD, each a header
(`RECORD`) and a path; makes each file from its bytes in the shared ring (RING_FD) with
the same flags as the extractor (O_CREAT|O_EXCL|O_NOFOLLOW: it never follows or reuses
an entry); and answers on ANSWERS_FD (`ANSWER`): once when it is up, then how many ring
bytes it is done with, or the errno and path of the first file it could not make, and
stops there.
"""

from __future__ import annotations

import mmap
import os
import struct
import sys

# ring offset, length, mode, flags, mtime (ns), path length; then the path
RECORD = struct.Struct("<QIHHqH")
# ring bytes done with, errno, path length; then the path (on an error)
ANSWER = struct.Struct("<QiH")
FCHMOD, UTIME, SKIP = 1, 2, 4  # flags: set the mode after (umask), set the mtime, no file
# how every extracted file is created, here and by the extractor itself (extract.py)
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def make(path: bytes, data: memoryview, mode: int, flags: int, mtime: int) -> None:
    fd = os.open(path, FLAGS, mode)
    try:
        done = 0
        while done < len(data):
            done += os.write(fd, data[done:])
        if flags & FCHMOD:
            os.fchmod(fd, mode)
        if flags & UTIME:
            os.utime(fd, ns=(mtime, mtime))
    finally:
        os.close(fd)


def serve(ring_fd: int, records: int, answers: int) -> int:
    ring = mmap.mmap(ring_fd, 0)
    view = memoryview(ring)
    every = len(ring) // 8  # answer at least this often, so the ring refills early
    os.write(answers, ANSWER.pack(0, 0, 0))  # up: files may come
    pending = b""
    while data := os.read(records, 1 << 20):
        buf = pending + data if pending else data
        pos, end, done = 0, len(buf), 0
        while end - pos >= RECORD.size:
            at, length, mode, flags, mtime, size = RECORD.unpack_from(buf, pos)
            if end - pos - RECORD.size < size:
                break
            path = buf[pos + RECORD.size : pos + RECORD.size + size]
            pos += RECORD.size + size
            if not flags & SKIP:
                try:
                    make(path, view[at : at + length], mode, flags, mtime)
                except OSError as e:
                    os.write(answers, ANSWER.pack(done, e.errno or 0, len(path)) + path)
                    return 1
            done += length + 1
            if done >= every:
                os.write(answers, ANSWER.pack(done, 0, 0))
                done = 0
        pending = buf[pos:]
        os.write(answers, ANSWER.pack(done, 0, 0))
    return 0


if __name__ == "__main__":
    sys.exit(serve(*(int(arg) for arg in sys.argv[1:4])))
