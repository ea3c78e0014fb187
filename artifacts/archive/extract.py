"""Extract an archive into a folder, refusing anything that could escape it.

Argosy does every safety check itself (Python 3.11.7's `tarfile` data filter
predates CVE-2025-4517). Members arrive from a reader (tar stream or zip) and are
written into a fresh temporary folder beside the destination, `.NAME.argosy-XXXX.tmp`,
renamed onto the destination only once every member is in: a failed extraction
removes the temporary folder and leaves nothing under the destination's name. An
existing destination must be an empty folder (it is replaced).

Refused with InvalidSpec naming the member, before anything of it is written:
absolute paths and `..` segments; symlinks whose target could resolve outside (see
`paths.py`); hardlinks to anything but a regular file extracted before them; any
path through an extracted symlink or file; device files and FIFOs; a name seen twice;
more members than `ExtractLimits.max_members`; files whose declared size would take
the total past `ExtractLimits.max_total_bytes`.

Why nothing can land outside: the temporary folder is new and private (0700), every
entry in it was made by this extraction and is tracked, so a path's parents are
known to be real folders we created; files are opened with O_CREAT|O_EXCL|O_NOFOLLOW
and folders made with mkdir, which never follow or reuse an existing entry.

Modes are kept with setuid/setgid cleared; folder modes are applied last, deepest
first, so a read-only folder does not block its own contents. mtimes are restored
only with `keep_mtime`. Folders that are only implied by deeper paths get
0777 & ~umask, like GNU tar's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from argosy.artifacts.archive.codecs import Codec
from argosy.artifacts.archive.entry import Entry, EntryType, Member
from argosy.artifacts.archive.globs import compile_include
from argosy.artifacts.archive.limits import ExtractLimits
from argosy.artifacts.archive.paths import check_symlink, member_path, parents
from argosy.artifacts.archive.tarreader import read_tar
from argosy.artifacts.archive.zipreader import ReadRange, read_zip
from argosy.artifacts.errors import IntegrityError, InvalidSpec, LocalIOError
from argosy.artifacts.filewriter import process_umask

_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_KEEP_BITS = 0o7777 & ~0o6000  # permissions and sticky; never setuid/setgid


@dataclass(frozen=True)
class ExtractResult:
    files: int
    dirs: int
    symlinks: int
    hardlinks: int
    bytes: int
    skipped: int  # members left out by `include`


def extract_members(members: Iterable[Member], dest: str | os.PathLike[str], *,
                    include: Sequence[str] = (), limits: ExtractLimits = ExtractLimits(),
                    keep_mtime: bool = False) -> ExtractResult:
    """Extract members from any reader into `dest`, all or nothing."""
    select = compile_include(include)
    final = os.path.abspath(os.fspath(dest))
    parent, name = os.path.split(final.rstrip("/"))
    if not name:
        raise InvalidSpec("cannot extract onto the filesystem root")
    _check_destination(final)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{name}.argosy-", suffix=".tmp", dir=parent)
    except OSError as e:
        raise LocalIOError(f"cannot extract into {final}: {e.strerror or e}") from None
    it = iter(members)
    try:
        job = _Extraction(tmp, select, limits, keep_mtime, final)
        for member in it:
            job.add(member)
        job.finish()
        try:
            os.rename(tmp, final)
        except OSError as e:
            raise LocalIOError(f"cannot move the extracted tree onto {final}:"
                               f" {e.strerror or e}") from None
    except BaseException:
        _remove(tmp)
        raise
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # a refused archive stops its reader (and any download) right away
    return job.result()


def _check_destination(path: str) -> None:
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        try:
            with os.scandir(path) as it:
                if next(it, None) is None:
                    return
        except OSError as e:
            raise LocalIOError(f"cannot read {path}: {e.strerror or e}") from None
    raise InvalidSpec(f"{path} already exists: extraction needs a new or empty folder")


def _remove(tmp: str) -> None:
    def unlock(func: Callable[..., Any], path: str, _exc: object) -> None:
        os.chmod(os.path.dirname(path), 0o700)
        func(path)

    try:
        for dirpath, _, _ in os.walk(tmp):  # folders may already carry read-only modes
            os.chmod(dirpath, 0o700)
        shutil.rmtree(tmp, onerror=unlock)
    except OSError:
        pass  # never hide the error that got us here


def _times(mtime: int) -> tuple[int, int] | None:
    """(atime, mtime) in ns; None for an mtime the OS cannot hold (left as is)."""
    ns = mtime * 1_000_000_000
    return (ns, ns) if -(2**63) <= ns < 2**63 else None


class _Extraction:
    def __init__(self, root: str, select: Callable[[str], bool] | None,
                 limits: ExtractLimits, keep_mtime: bool, final: str) -> None:
        self.root = root
        self.select = select
        self.limits = limits
        self.keep_mtime = keep_mtime
        self.final = final
        self.kinds: dict[str, EntryType] = {"": EntryType.DIR}
        self.explicit: set[str] = set()
        self.dir_attrs: dict[str, tuple[int, int]] = {}  # folder -> (mode, mtime)
        self.unselected_dirs: dict[str, tuple[int, int]] = {}
        self.unselected_files: set[str] = set()
        self.umask = process_umask()
        self.implied_mode = 0o777 & ~self.umask
        self.members = self.files = self.dirs = self.symlinks = self.hardlinks = 0
        self.bytes = self.skipped = 0

    def result(self) -> ExtractResult:
        return ExtractResult(self.files, self.dirs, self.symlinks, self.hardlinks,
                             self.bytes, self.skipped)

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _os_error(self, entry: Entry, error: OSError) -> LocalIOError:
        return LocalIOError(f"cannot extract {entry.path!r} into {self.final}:"
                            f" {error.strerror or error}")

    def add(self, member: Member) -> None:
        entry = member.entry
        self.members += 1
        if self.members > self.limits.max_members:
            raise InvalidSpec(f"archive has more than {self.limits.max_members} members"
                              " (ExtractLimits.max_members)")
        path = member_path(entry.path)
        kind = entry.type
        if kind in (EntryType.CHARDEV, EntryType.BLOCKDEV, EntryType.FIFO):
            raise InvalidSpec(f"archive member {entry.path!r} is a {kind.value}: device"
                              " files and FIFOs are never extracted")
        if not path and kind is not EntryType.DIR:
            raise InvalidSpec(f"archive member {entry.path!r} has an empty name")
        if self.select is not None and path and not self.select(path):
            self.skipped += 1
            if kind is EntryType.DIR:
                self.unselected_dirs[path] = (entry.mode, entry.mtime)
            elif kind in (EntryType.FILE, EntryType.HARDLINK):
                self.unselected_files.add(path)
            return
        self._check_place(entry, path)
        try:
            if kind is EntryType.DIR:
                self._dir(entry, path)
            elif kind is EntryType.FILE:
                self._file(entry, path, member.data)
            elif kind is EntryType.SYMLINK:
                self._symlink(entry, path)
            else:
                self._hardlink(entry, path)
        except OSError as e:
            raise self._os_error(entry, e) from None

    def _check_place(self, entry: Entry, path: str) -> None:
        existing = self.kinds.get(path)
        if existing is not None and not (existing is EntryType.DIR
                                         and entry.type is EntryType.DIR
                                         and path not in self.explicit):
            raise InvalidSpec(f"archive member {entry.path!r} appears twice (or clashes with"
                              " a folder its earlier members need)")
        if self.kinds.get(path.rpartition("/")[0]) is EntryType.DIR:
            return  # a folder made here, after the same check of its own parents
        for parent in parents(path):
            kind = self.kinds.get(parent)
            if kind is None:
                try:
                    os.mkdir(self._full(parent), 0o700)
                except OSError as e:
                    raise self._os_error(entry, e) from None
                self.kinds[parent] = EntryType.DIR
            elif kind is not EntryType.DIR:
                what = "a symlink" if kind is EntryType.SYMLINK else "a file"
                raise InvalidSpec(f"archive member {entry.path!r} goes through {parent!r},"
                                  f" which is {what} extracted before it")

    def _dir(self, entry: Entry, path: str) -> None:
        if path not in self.kinds:
            os.mkdir(self._full(path), 0o700)
            self.kinds[path] = EntryType.DIR
        self.explicit.add(path)
        self.dir_attrs[path] = (entry.mode, entry.mtime)
        self.dirs += 1

    def _file(self, entry: Entry, path: str, data: Iterable[bytes]) -> None:
        size = entry.size
        if self.bytes + size > self.limits.max_total_bytes:
            raise InvalidSpec(f"archive member {entry.path!r} declares {size} bytes, which"
                              f" would take the extraction past its cap of"
                              f" {self.limits.max_total_bytes} bytes"
                              " (ExtractLimits.max_total_bytes)")
        mode = entry.mode & _KEEP_BITS
        # Created with its final mode (writing through our own fd works even if that
        # mode is read-only); fchmod only when the umask would have taken bits away.
        fd = os.open(self._full(path), _FILE_FLAGS, mode)
        self.kinds[path] = EntryType.FILE
        try:
            written = 0
            for piece in data:
                written += len(piece)
                if written > size:
                    raise IntegrityError(f"archive member {entry.path!r} holds more than the"
                                         f" {size} bytes it declares")
                done = os.write(fd, piece)
                while done < len(piece):
                    done += os.write(fd, memoryview(piece)[done:])
            if written != size:
                raise IntegrityError(f"archive member {entry.path!r} holds {written} of the"
                                     f" {size} bytes it declares")
            if mode & self.umask:
                os.fchmod(fd, mode)
            times = _times(entry.mtime) if self.keep_mtime else None
            if times:
                os.utime(fd, ns=times)
        finally:
            os.close(fd)
        self.bytes += size
        self.files += 1

    def _symlink(self, entry: Entry, path: str) -> None:
        check_symlink(path, entry.linkname)
        os.symlink(entry.linkname, self._full(path))
        self.kinds[path] = EntryType.SYMLINK
        times = _times(entry.mtime) if self.keep_mtime else None
        if times:
            os.utime(self._full(path), ns=times, follow_symlinks=False)
        self.symlinks += 1

    def _hardlink(self, entry: Entry, path: str) -> None:
        try:
            target = member_path(entry.linkname)
        except InvalidSpec:
            raise InvalidSpec(f"archive hardlink {entry.path!r} points to {entry.linkname!r},"
                              " outside the destination") from None
        kind = self.kinds.get(target)
        if kind is not EntryType.FILE:
            why = ("was left out by the include patterns" if target in self.unselected_files
                   else "is not a regular file extracted before it")
            raise InvalidSpec(f"archive hardlink {entry.path!r} -> {entry.linkname!r}: the"
                              f" target {why}")
        os.link(self._full(target), self._full(path), follow_symlinks=False)
        self.kinds[path] = EntryType.FILE
        self.hardlinks += 1

    def finish(self) -> None:
        for path, unselected in self.unselected_dirs.items():
            if path in self.kinds and path not in self.dir_attrs:
                self.dir_attrs[path] = unselected
        folders = [p for p, k in self.kinds.items() if k is EntryType.DIR]
        folders.sort(key=lambda p: p.count("/") + (p != ""), reverse=True)
        try:
            for path in folders:
                full = self._full(path)
                attrs = self.dir_attrs.get(path)
                if attrs is None:
                    os.chmod(full, self.implied_mode)
                    continue
                stamp = _times(attrs[1]) if self.keep_mtime else None
                if stamp:
                    os.utime(full, ns=stamp)
                os.chmod(full, attrs[0] & _KEEP_BITS)
        except OSError as e:
            raise LocalIOError(f"cannot set folder modes in {self.final}:"
                               f" {e.strerror or e}") from None


def extract_tar(chunks: Iterable[bytes], dest: str | os.PathLike[str], *,
                compression: Codec | Literal["auto"] = "auto", include: Sequence[str] = (),
                limits: ExtractLimits = ExtractLimits(),
                keep_mtime: bool = False) -> ExtractResult:
    """Extract a tar, tar.gz or tar.zst stream into `dest`, all or nothing. With
    `include`, unmatched members are read through and dropped, never written."""
    return extract_members(read_tar(chunks, compression=compression, limits=limits), dest,
                           include=include, limits=limits, keep_mtime=keep_mtime)


def extract_zip(read_range: ReadRange, size: int, dest: str | os.PathLike[str], *,
                include: Sequence[str] = (), limits: ExtractLimits = ExtractLimits(),
                keep_mtime: bool = False) -> ExtractResult:
    """Extract a zip read through `read_range(start, end)` into `dest`, all or nothing.
    With `include`, only the matching members' byte ranges are read."""
    select = compile_include(include)
    return extract_members(read_zip(read_range, size, select=select, limits=limits), dest,
                           include=include, limits=limits, keep_mtime=keep_mtime)
