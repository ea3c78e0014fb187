"""The one set of rules for where an untrusted tree may put things on disk.

Every way Argosy restores a tree goes through `Layout`: archive extraction (tar, zip)
and the restore of a folder of objects (`archive: none`, with or without its tree
manifest). The names come from whoever could write the archive or the prefix, so each
entry is claimed here before anything of it is created:

- its path is relative, without `..` or NUL (`paths.member_path`);
- no path goes through a symlink or a file claimed before it: every parent is a folder
  this restore made, so nothing is ever created through a link;
- a path is claimed once (a folder first implied by deeper paths may be declared once);
- a symlink's target resolves inside the destination (`paths.check_symlink`);
- a hardlink names a regular file claimed before it.

`Layout` only keeps books on strings; the caller creates what a claim allows inside a
new, private staging folder that is renamed onto the destination once everything is in.
A staging folder a killed restore left is removed by the next restore to the same
destination (see `leftovers.py`).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator

from argosy.artifacts import leftovers
from argosy.artifacts.archive.entry import EntryType
from argosy.artifacts.archive.paths import check_symlink, member_path, parents
from argosy.artifacts.errors import InvalidSpec, LocalIOError


class Layout:
    """What a restore has claimed so far: path -> kind ('' is the destination itself)."""

    __slots__ = ("noun", "kinds", "_explicit")

    def __init__(self, noun: str = "archive member") -> None:
        self.noun = noun  # how messages name an entry: "archive member", "tree entry"
        self.kinds: dict[str, EntryType] = {"": EntryType.DIR}
        self._explicit: set[str] = set()

    def kind(self, path: str) -> EntryType | None:
        return self.kinds.get(path)

    def claim(self, name: str, kind: EntryType, *, linkname: str = "") -> tuple[str, list[str]]:
        """Check one entry against the rules and record it. Returns its normalised path
        and the folders to make for it, outermost first (its parents that are new, and
        the entry itself when it is a new folder): the caller makes them with mkdir, in
        the staging folder, before the entry."""
        path = member_path(name)
        if not path and kind is not EntryType.DIR:
            raise InvalidSpec(f"{self.noun} {name!r} has an empty name")
        existing = self.kinds.get(path)
        if existing is not None and not (
            existing is EntryType.DIR and kind is EntryType.DIR and path not in self._explicit
        ):
            raise InvalidSpec(
                f"{self.noun} {name!r} appears twice (or clashes with a folder"
                " its earlier members need)"
            )
        if kind is EntryType.SYMLINK:
            check_symlink(path, linkname)
        elif kind is EntryType.HARDLINK:
            self._check_hardlink(name, linkname)
        # a folder claimed after the same check of its own parents needs nothing more
        parent_claimed = self.kinds.get(path.rpartition("/")[0]) is EntryType.DIR
        new = [] if parent_claimed else self._parents(name, path)
        if kind is EntryType.DIR:
            self._explicit.add(path)
            if existing is None:
                new.append(path)
        self.kinds[path] = EntryType.FILE if kind is EntryType.HARDLINK else kind
        return path, new

    def _parents(self, name: str, path: str) -> list[str]:
        new = []
        for parent in parents(path):
            kind = self.kinds.get(parent)
            if kind is None:
                self.kinds[parent] = EntryType.DIR
                new.append(parent)
            elif kind is not EntryType.DIR:
                what = "a symlink" if kind is EntryType.SYMLINK else "a file"
                raise InvalidSpec(
                    f"{self.noun} {name!r} goes through {parent!r}, which is"
                    f" {what} restored before it"
                )
        return new

    def _check_hardlink(self, name: str, linkname: str) -> None:
        try:
            target = member_path(linkname)
        except InvalidSpec:
            raise InvalidSpec(
                f"archive hardlink {name!r} points to {linkname!r}, outside the destination"
            ) from None
        if self.kinds.get(target) is not EntryType.FILE:
            raise InvalidSpec(
                f"archive hardlink {name!r} -> {linkname!r}: the target is not"
                " a regular file extracted before it"
            )

    def folders(self) -> list[str]:
        """Every folder claimed or implied, deepest first (for modes applied last)."""
        found = [p for p, k in self.kinds.items() if k is EntryType.DIR]
        found.sort(key=lambda p: p.count("/") + (p != ""), reverse=True)
        return found


# -- staging: a restore is built beside its destination and renamed onto it --------------


def check_destination(path: str, *, merge: bool = False) -> None:
    """A restore goes into a new or empty folder; with `merge` (a folder of objects
    without a manifest, as `cp -r` into a folder that exists) into an existing folder
    too, where `move_into` then refuses to replace anything."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        if merge:
            return
        try:
            with os.scandir(path) as it:
                if next(it, None) is None:
                    return
        except OSError as e:
            raise LocalIOError(f"cannot read {path}: {e.strerror or e}") from None
    raise InvalidSpec(f"{path} already exists: a restore needs a new or empty folder")


_HELD: dict[str, int] = {}  # staging folder -> the descriptor holding its lock
_HELD_LOCK = threading.Lock()


def missing_folders(final: str) -> list[str]:
    """The folders above `final` that do not exist yet, deepest first: those `new_staging`
    makes, for `remove_empty` to take back when the restore fails."""
    missing = []
    parent = os.path.dirname(final.rstrip("/"))
    while parent and not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return missing


def remove_empty(folders: list[str]) -> None:
    """Remove folders, deepest first, while they are empty; never raises."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return


def new_staging(final: str) -> str:
    """A new private folder on `final`'s file system (rename is atomic),
    `.NAME.argosy-XXXXXXXX.tmp`, held (`leftovers.hold`) until it is moved into place or
    removed. Staging folders for `final` that a killed restore left, and that no live
    one holds, are removed first.

    The folder is made beside `final`, except when `final` is a mount point (a pod's
    volume, mounted where an input goes): nothing can be renamed onto a mount point and
    its parent is another file system, so the staging folder is made inside it and its
    entries are moved up (`move_into`)."""
    parent, name = os.path.split(final.rstrip("/"))
    if not name:
        raise InvalidSpec("cannot restore onto the filesystem root")
    if _real_dir(final) and os.path.ismount(final):
        parent = final
    leftovers.sweep(parent, leftovers.staging_pattern(name), folders=True, remove=_remove_tree)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{name}.argosy-", suffix=".tmp", dir=parent)
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise LocalIOError(f"cannot restore into {final}: {e.strerror or e}") from None
    leftovers.hold(fd)  # new and private: nobody else can hold it
    with _HELD_LOCK:
        _HELD[tmp] = fd
    return tmp


def _remove_tree(tmp: str) -> None:
    """Remove a staging folder whatever modes its folders were given and however deep it
    goes; never raises, so the error that led here is the one reported.

    Iterative: Python 3.11's `os.walk` and `shutil.rmtree` recurse once per level, and an
    archive member can be thousands of folders deep. Every folder in a staging tree was
    made by its full path, so each path here is one the system accepts."""
    if os.path.islink(tmp):  # never a staging folder; never follow it
        return
    folders = [tmp]  # in the order found: each folder after the one holding it
    for folder in folders:  # grows as it goes
        try:
            os.chmod(folder, 0o700)  # folders may already carry read-only modes
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
    for folder in reversed(folders):
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _release(tmp: str) -> None:
    with _HELD_LOCK:
        fd = _HELD.pop(tmp, -1)
    if fd >= 0:
        os.close(fd)


def remove_staging(tmp: str) -> None:
    """Remove a staging folder (`_remove_tree`) and release its lock; never raises, so the
    error that led here is the one reported."""
    try:
        _remove_tree(tmp)
    finally:
        _release(tmp)


def move_into(tmp: str, final: str) -> None:
    """Rename the staged tree onto `final` when that is new or empty; otherwise (a merge
    that `check_destination` allowed) move its entries into the existing folder, after
    checking that none of them would replace anything there (folders that are real on
    both sides are joined). A merge that fails half-way moves back what it had moved:
    the existing folder is left as it was, the staged tree where it was."""
    inside = os.path.dirname(tmp) == final.rstrip("/")  # staged in a mount point
    try:
        if not inside and (not os.path.lexists(final) or _empty_folder(final)):
            os.rename(tmp, final)  # onto an empty folder too: rename(2) replaces it
            _release(tmp)
            return
        check_destination(final, merge=True)
        clashes = sorted(_clashes(tmp, final, ""))
        if clashes:
            raise InvalidSpec(
                f"{len(clashes)} of the restored entries already exist in "
                f"{final}, e.g. {', '.join(clashes[:5])}: nothing was written "
                "(a restore never replaces local files)"
            )
        moved: list[tuple[str, str]] = []
        try:
            _join(tmp, final, moved)
        except OSError:
            for staged, there in reversed(moved):
                os.rename(there, staged)
            raise
        remove_staging(tmp)  # folders only, now (each joined to its counterpart), and its lock
    except OSError as e:
        raise LocalIOError(
            f"cannot move the restored tree onto {final}: {e.strerror or e}"
        ) from None


def _empty_folder(path: str) -> bool:
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    with os.scandir(path) as it:
        return next(it, None) is None


def _real_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def _clashes(src: str, dst: str, rel: str) -> Iterator[str]:
    pending = [(src, dst, rel)]  # a stack, not recursion: trees can be thousands deep
    while pending:
        src, dst, rel = pending.pop()
        with os.scandir(src) as entries:
            for entry in entries:
                there = os.path.join(dst, entry.name)
                if not os.path.lexists(there):
                    continue
                if entry.is_dir(follow_symlinks=False) and _real_dir(there):
                    pending.append((entry.path, there, rel + entry.name + "/"))
                else:
                    yield rel + entry.name


def _join(src: str, dst: str, moved: list[tuple[str, str]]) -> None:
    """Move every entry of `src` into `dst`, recording each move in `moved`; folders real
    on both sides are joined, and stay behind in `src` (empty) for a roll-back. A stack,
    not recursion: trees can be thousands of folders deep."""
    pending = [(src, dst)]
    while pending:
        src, dst = pending.pop()
        with os.scandir(src) as entries:
            for entry in list(entries):
                there = os.path.join(dst, entry.name)
                if entry.is_dir(follow_symlinks=False) and _real_dir(there):
                    pending.append((entry.path, there))
                else:
                    os.rename(entry.path, there)
                    moved.append((entry.path, there))
