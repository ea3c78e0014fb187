"""Checkpoints that let a killed file upload resume from the parts it completed.

A multipart upload of a file writes a small JSON checkpoint as each part completes:
the destination URL, the source's identity (path, size, mtime, inode), the part size,
the upload id, and each part's ETag, size and CRC32C. Run the same command again and
the upload continues: the checkpoint is reconciled with the server's ListParts (a part
counts only if the server has it with the same ETag and size), each part kept is checked
against the source (the file's bytes in its range must still have the part's CRC32C: a
file rewritten in place with its size and mtime put back keeps its identity), and only
the missing parts are sent. A checkpoint is ignored, and removed, when the source's
identity changed, the part size differs, or the server no longer knows the upload; a
kept part whose bytes differ aborts the upload, which starts afresh.

A clean failure or an interrupt (Ctrl-C, SIGTERM) aborts the upload and removes the
checkpoint; only a process that could not clean up (SIGKILL, OOM, a lost node) leaves
both behind, which is exactly when resuming pays. Uploads never resumed are aborted by
the GC's sweeper (or a bucket lifecycle rule).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argosy.artifacts.protocol import Part

VERSION = 1


def file_identity(path: str, st: os.stat_result) -> dict[str, Any]:
    """What must not change for a file upload to resume."""
    return {
        "path": os.path.abspath(path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
    }


@dataclass
class Checkpoint:
    path: Path
    upload_id: str
    part_size: int
    parts: dict[int, tuple[str, int, int]]  # number -> (etag, size, crc32c)
    _doc: dict[str, Any] = field(repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_part(self, part: Part, crc: int) -> None:
        with self._lock:
            self.parts[part.number] = (part.etag, part.size, crc)
            self._doc["parts"] = {str(n): list(v) for n, v in sorted(self.parts.items())}
            _write_atomic(self.path, self._doc)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _write_atomic(path: Path, doc: dict[str, Any]) -> None:
    temp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    temp.write_text(json.dumps(doc))
    os.replace(temp, path)


class CheckpointStore:
    """One folder of checkpoints, one file per (destination URL, source path)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _file(self, url: str, source: str) -> Path:
        digest = hashlib.sha256(f"{url}\0{source}".encode()).hexdigest()
        return self.folder / f"{digest[:32]}.json"

    def load(
        self, url: str, source: str, identity: dict[str, Any], part_size: int
    ) -> Checkpoint | None:
        """The checkpoint of an upload of `source` to `url`, if its identity still holds."""
        path = self._file(url, source)
        try:
            doc = json.loads(path.read_text())
            usable = (
                doc.get("version") == VERSION
                and doc.get("url") == url
                and doc.get("source") == identity
                and doc.get("part_size") == part_size
            )
            if not usable:
                path.unlink(missing_ok=True)
                return None
            parts = {
                int(n): (str(v[0]), int(v[1]), int(v[2])) for n, v in doc.get("parts", {}).items()
            }
            return Checkpoint(path, str(doc["upload_id"]), part_size, parts, doc)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            path.unlink(missing_ok=True)
            return None

    def start(
        self, url: str, source: str, identity: dict[str, Any], part_size: int, upload_id: str
    ) -> Checkpoint:
        self.folder.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "version": VERSION,
            "url": url,
            "source": identity,
            "part_size": part_size,
            "upload_id": upload_id,
            "parts": {},
        }
        path = self._file(url, source)
        _write_atomic(path, doc)
        return Checkpoint(path, upload_id, part_size, {}, doc)
