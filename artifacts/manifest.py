"""The tree manifest of an `archive: none` directory artifact (schema version 1).

A folder uploaded as one object per file also gets one more object, written last, beside
the folder rather than in it:

    KEY/a/b.txt, KEY/c.txt, ...   the files, one object each (nothing else under KEY/)
    KEY.argosy-manifest.json      the tree manifest
    {"schema": "argosy.tree-manifest", "version": 1,
     "files":    [{"path": "a/b.txt", "size": 12, "checksum": "crc32c:1a2b3c4d", "mode": 420}],
     "symlinks": [{"path": "latest", "target": "a/b.txt"}],
     "dirs":     [{"path": "a", "mode": 493}, {"path": "empty", "mode": 493}]}

Paths are relative, '/'-separated and sorted; modes are permission bits. A download reads
the manifest first and verifies the whole tree: every listed file present with its size
and checksum (a missing one fails the download), objects under the prefix that the
manifest does not list are reported as extra, and symlinks, empty folders and modes are
restored, which the objects alone cannot carry.

Why beside the folder: everything under `KEY/` is the artifact's files to Argo's own
executor and to any tool that copies the prefix, so a manifest there became an extra
file in the consumer's folder and one object too many for one-object-per-file checks.
`KEY.argosy-manifest.json` is one exact key: deleting the folder (`argosy rm -r`, the
GC: `tree.delete_folder`) removes it by that exact name, so the folder `run1/` never
touches `run10/` nor `run10.argosy-manifest.json`. (Argo's own artifact GC deletes only
what is under `KEY/` and leaves it; Argosy's orphan sweep still finds it by its
provenance metadata.) Being written last, a manifest also marks a complete upload: an
`archive: none` folder without one was not finished (a failed upload deletes the files
it wrote; one that was killed cannot), and a download of it says that nothing vouches
for its completeness.

Older versions wrote the manifest under the folder, as `KEY/.argosy-manifest.json`
(`LEGACY_NAME`). Such manifests are still read when the sibling is absent, are never
restored as a file, and are deleted with their folder.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argosy.artifacts.archive.paths import check_symlink
from argosy.artifacts.errors import IntegrityError, InvalidSpec

SUFFIX = ".argosy-manifest.json"  # the folder KEY/ has its manifest at KEY + SUFFIX
LEGACY_NAME = ".argosy-manifest.json"  # and, written by older versions, at KEY/ + LEGACY_NAME
SCHEMA = "argosy.tree-manifest"
VERSION = 1


def manifest_key(folder: str) -> str:
    """The key of the tree manifest of the folder `KEY/` (or `KEY`):
    `KEY.argosy-manifest.json`. A whole bucket has no key to put one beside."""
    name = folder[:-1] if folder.endswith("/") else folder
    if not name:
        raise InvalidSpec(
            "a folder with a tree manifest needs a key (BUCKET/KEY/): "
            "its manifest is kept beside it, at KEY.argosy-manifest.json"
        )
    return name + SUFFIX


def legacy_manifest_key(folder: str) -> str:
    """Where older versions kept the manifest of the folder `KEY/`: under it."""
    return (folder if folder.endswith("/") or not folder else folder + "/") + LEGACY_NAME


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    checksum: str
    mode: int


@dataclass
class Manifest:
    files: list[FileEntry] = field(default_factory=list)
    symlinks: list[tuple[str, str]] = field(default_factory=list)
    dirs: list[tuple[str, int]] = field(default_factory=list)

    def to_json(self) -> bytes:
        doc = {
            "schema": SCHEMA,
            "version": VERSION,
            "files": [
                {"path": f.path, "size": f.size, "checksum": f.checksum, "mode": f.mode}
                for f in sorted(self.files, key=lambda f: f.path)
            ],
            "symlinks": [{"path": p, "target": t} for p, t in sorted(self.symlinks)],
            "dirs": [{"path": p, "mode": m} for p, m in sorted(self.dirs)],
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: str) -> Manifest:
        try:
            doc: dict[str, Any] = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
                raise ValueError("not a tree manifest")
            if doc.get("version") != VERSION:
                raise InvalidSpec(
                    f"{where}: tree manifest version {doc.get('version')} is "
                    f"newer than this Argosy understands ({VERSION})"
                )
            manifest = cls(
                [
                    FileEntry(str(f["path"]), int(f["size"]), str(f["checksum"]), int(f["mode"]))
                    for f in doc["files"]
                ],
                [(str(s["path"]), str(s["target"])) for s in doc["symlinks"]],
                [(str(d["path"]), int(d["mode"])) for d in doc["dirs"]],
            )
        except (ValueError, KeyError, TypeError) as error:
            raise IntegrityError(f"{where}: malformed tree manifest ({error})") from None
        for path in (
            [f.path for f in manifest.files]
            + [p for p, _ in manifest.symlinks]
            + [p for p, _ in manifest.dirs]
        ):
            safe_relative(path, where=where)
        for path, target in manifest.symlinks:
            check_symlink(path, target)
        return manifest


def safe_relative(rel: str, *, where: str = "") -> str:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\x00" in rel:
        raise IntegrityError(f"{where}: refusing a path that leaves the destination: {rel!r}")
    return rel


def walk(root: Path) -> Iterator[tuple[str, os.stat_result, str | None]]:
    """Every entry under root, sorted, as (relative path, lstat, symlink target or None).
    Sockets, FIFOs and devices are refused: an artifact cannot carry them."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel_folder = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel_folder == "." else rel_folder + "/"
        for name in sorted(dirs + files):
            full = os.path.join(folder, name)
            st = os.lstat(full)
            rel = prefix + name
            if stat.S_ISLNK(st.st_mode):
                yield rel, st, os.readlink(full)
            elif stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                yield rel, st, None
            else:
                raise InvalidSpec(
                    f"{full} is a socket, FIFO or device: an artifact cannot carry it"
                )
