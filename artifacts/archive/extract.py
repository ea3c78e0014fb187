"""Extract an archive into a folder, refusing anything that could escape it.

Argosy does every safety check itself (Python 3.11.7's `tarfile` data filter
predates CVE-2025-4517). Members arrive from a reader (tar stream or zip) and are
written into a fresh temporary folder beside the destination, `.NAME.argosy-XXXX.tmp`,
renamed onto the destination only once every member is in: a failed extraction
removes the temporary folder and leaves nothing under the destination's name. An
existing destination must be an empty folder (it is replaced).

Refused with InvalidSpec naming the member, before anything of it is written: what
`layout.Layout` refuses for every restored tree (absolute paths and `..` segments;
symlinks whose target could resolve outside; hardlinks to anything but a regular file
extracted before them; any path through an extracted symlink or file; a name seen
twice), and device files and FIFOs; a path longer than the system takes (PATH_MAX,
4095 bytes on Linux: a member thousands of folders deep); more members than
`ExtractLimits.max_members`; files whose declared size would take the total past
`ExtractLimits.max_total_bytes`. The readers refuse an archive that decompresses past
`ExtractLimits.max_expansion` (ExpansionRefused, also InvalidSpec).

Why nothing can land outside: the temporary folder is new and private (0700), every
entry in it was made by this extraction and is tracked, so a path's parents are
known to be real folders we created; files are opened with O_CREAT|O_EXCL|O_NOFOLLOW
and folders made with mkdir, which never follow or reuse an existing entry.

Modes are kept with setuid/setgid cleared. A folder is made with its mode when that
lets us write into it and the umask takes nothing from it; any other folder mode is
applied last, deepest first, so a read-only folder does not block its own contents.
mtimes are restored only with `keep_mtime`. Folders that are only implied by deeper
paths get 0777 & ~umask, like GNU tar's.

Past the first `MAKERS_AFTER` files, small files are made by two file-making processes
(makers.py) from their bytes copied over, with the same flags, while this process reads
on; every check above is still made here first, folders are made here before a file in
them is handed over, and the files are all made before a hardlink or the folders'
final modes.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from argosy.artifacts.archive.codecs import Codec
from argosy.artifacts.archive.entry import Entry, EntryType, Member
from argosy.artifacts.archive.filemaker import FLAGS as FILE_FLAGS
from argosy.artifacts.archive.globs import compile_include
from argosy.artifacts.archive.layout import (
    Layout,
    check_destination,
    missing_folders,
    move_into,
    new_staging,
    remove_empty,
    remove_staging,
)
from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits
from argosy.artifacts.archive.makers import LARGEST, MakerFailed, Makers, usable
from argosy.artifacts.archive.paths import member_path
from argosy.artifacts.archive.tarreader import read_tar
from argosy.artifacts.archive.zipreader import ReadRange, read_zip
from argosy.artifacts.errors import ArtifactError, IntegrityError, InvalidSpec, LocalIOError
from argosy.artifacts.filewriter import process_umask

_KEEP_BITS = 0o7777 & ~0o6000  # permissions and sticky; never setuid/setgid
_NEVER = frozenset((EntryType.CHARDEV, EntryType.BLOCKDEV, EntryType.FIFO))
# The file-making processes (makers.py) are started once this many files are made here,
# and small files handed to them once they run (waited for past MAKERS_WAIT). Starting
# them costs about 30 ms of the two CPUs (two interpreters), made up at about 20 us a
# file handed over: on ext4 here, 3,000 files of 2 KB took 228 ms with them and 230 ms
# without, 10,000 took 584 ms against 850 ms, and 1,200 and 2,000 files 24-35 ms more.
MAKERS_AFTER = 1000
MAKERS_WAIT = 2000


@dataclass(frozen=True)
class ExtractResult:
    files: int
    dirs: int
    symlinks: int
    hardlinks: int
    bytes: int
    skipped: int  # members left out by `include`


def extract_members(
    members: Iterable[Member],
    dest: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    limits: ExtractLimits = DEFAULT_LIMITS,
    keep_mtime: bool = False,
) -> ExtractResult:
    """Extract members from any reader into `dest`, all or nothing."""
    select = compile_include(include)
    final = os.path.abspath(os.fspath(dest))
    check_destination(final)
    made = missing_folders(final)
    tmp = new_staging(final)
    it = iter(members)
    job: _Extraction | None = None
    try:
        job = _Extraction(tmp, select, limits, keep_mtime, final)
        for member in it:
            job.add(member)
        job.finish()
        move_into(tmp, final)
    except BaseException:
        if job is not None:
            job.stop()  # no file-making process writes into what is removed next
        remove_staging(tmp)
        remove_empty(made)
        raise
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # a refused archive stops its reader (and any download) right away
    return job.result()


def _left_out(linkname: str, unselected: set[str]) -> bool:
    try:
        return member_path(linkname) in unselected
    except InvalidSpec:
        return False  # the layout refuses it, with its own reason


def _shown(name: str) -> str:
    """A member name for a one-line message: a name thousands of bytes long is cut in
    the middle."""
    if len(name) <= 200:
        return repr(name)
    return f"{name[:100]!r}...{name[-60:]!r} ({len(os.fsencode(name))} bytes)"


def _path_max(folder: str) -> int:
    """The longest path, in bytes, the system accepts under `folder` (PATH_MAX counts
    the terminating NUL)."""
    try:
        return os.pathconf(folder, "PC_PATH_MAX") - 1
    except (OSError, ValueError):
        return 4095


def _size_error(entry: Entry, held: int) -> IntegrityError:
    """A member whose data does not come to the size its header declares."""
    if held > entry.size:
        return IntegrityError(
            f"archive member {entry.path!r} holds more than the {entry.size} bytes it declares"
        )
    return IntegrityError(
        f"archive member {entry.path!r} holds {held} of the {entry.size} bytes it declares"
    )


def _times(mtime: int) -> tuple[int, int] | None:
    """(atime, mtime) in ns; None for an mtime the OS cannot hold (left as is)."""
    ns = mtime * 1_000_000_000
    return (ns, ns) if -(2**63) <= ns < 2**63 else None


class _Extraction:
    def __init__(
        self,
        root: str,
        select: Callable[[str], bool] | None,
        limits: ExtractLimits,
        keep_mtime: bool,
        final: str,
    ) -> None:
        self.root = root
        self.select = select
        self.limits = limits
        self.keep_mtime = keep_mtime
        self.final = final
        self.layout = Layout()
        self.dir_attrs: dict[str, tuple[int, int]] = {}  # folder -> (mode, mtime)
        self.made_modes: dict[str, int] = {}  # folder -> the mode it was made with
        self.unselected_dirs: dict[str, tuple[int, int]] = {}
        self.unselected_files: set[str] = set()
        self.umask = process_umask()
        self.implied_mode = 0o777 & ~self.umask
        self.path_max = _path_max(root)
        # a path this long or shorter fits whatever its characters (4 UTF-8 bytes at most)
        self.short_path = self.path_max // 4 - len(root) - 1
        self.members = self.files = self.dirs = self.symlinks = self.hardlinks = 0
        self.bytes = self.skipped = 0
        self.makers = Makers() if usable() else None

    def result(self) -> ExtractResult:
        return ExtractResult(
            self.files, self.dirs, self.symlinks, self.hardlinks, self.bytes, self.skipped
        )

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _os_error(self, name: str, error: OSError) -> ArtifactError:
        if error.errno == errno.ENAMETOOLONG:  # a name over NAME_MAX, a huge link target
            return InvalidSpec(
                f"archive member {_shown(name)} has a name or link target too"
                f" long for the file system of {self.final}"
            )
        return LocalIOError(
            f"cannot extract {_shown(name)} into {self.final}: {error.strerror or error}"
        )

    def _maker_error(self, failed: MakerFailed) -> ArtifactError:
        """A file a file-making process could not make, told as if made here."""
        return self._os_error(failed.path.removeprefix(self.root + "/"), failed.error)

    def _check_length(self, entry: Entry, path: str) -> None:
        """Refuse, before making any of it, a member whose path the system cannot take."""
        if len(path) <= self.short_path:
            return
        full = self._full(path)
        size = len(os.fsencode(full))
        if size > self.path_max:
            raise InvalidSpec(
                f"archive member {_shown(entry.path)}, {path.count('/')} folders deep,"
                f" needs a path of {size} bytes to be extracted into {self.final}: more"
                f" than the {self.path_max} this system allows (PATH_MAX)"
            )

    def add(self, member: Member) -> None:
        entry = member.entry
        self.members += 1
        if self.members > self.limits.max_members:
            raise InvalidSpec(
                f"archive has more than {self.limits.max_members} members"
                " (ExtractLimits.max_members)"
            )
        kind = entry.type
        if kind in _NEVER:
            raise InvalidSpec(
                f"archive member {entry.path!r} is a {kind.value}: device"
                " files and FIFOs are never extracted"
            )
        if self.select is not None:
            path = member_path(entry.path)
            if path and not self.select(path):
                self.skipped += 1
                if kind is EntryType.DIR:
                    self.unselected_dirs[path] = (entry.mode, entry.mtime)
                elif kind in (EntryType.FILE, EntryType.HARDLINK):
                    self.unselected_files.add(path)
                return
        if kind is EntryType.HARDLINK and _left_out(entry.linkname, self.unselected_files):
            raise InvalidSpec(
                f"archive hardlink {entry.path!r} -> {entry.linkname!r}: the"
                " target was left out by the include patterns"
            )
        # the claim only keeps books: a refusal after it still leaves nothing made
        path, new = self.layout.claim(entry.path, kind, linkname=entry.linkname)
        self._check_length(entry, path)
        try:
            for folder in new:
                self._mkdir(folder, entry.mode & _KEEP_BITS if folder == path else -1)
            if kind is EntryType.DIR:
                self._dir(entry, path)
            elif kind is EntryType.FILE:
                self._file(entry, path, member.data)
            elif kind is EntryType.SYMLINK:
                self._symlink(entry, path)
            else:
                self._hardlink(entry, path)
        except OSError as e:
            raise self._os_error(entry.path, e) from None
        except MakerFailed as e:
            raise self._maker_error(e) from None

    def _mkdir(self, folder: str, mode: int) -> None:
        """Make a folder with its final mode where that is safe now: an implied one
        (-1) gets 0777 less the umask; a declared one its own mode when that lets us
        write into it and the umask takes nothing from it; any other mode is set last,
        by `finish`, on a folder made 0700."""
        if mode < 0:
            mode = 0o777
        elif mode & 0o700 != 0o700 or mode & self.umask:
            mode = 0o700
        os.mkdir(self._full(folder), mode)
        self.made_modes[folder] = mode & ~self.umask

    def _dir(self, entry: Entry, path: str) -> None:
        self.dir_attrs[path] = (entry.mode, entry.mtime)
        self.dirs += 1

    def _file(self, entry: Entry, path: str, data: Iterable[bytes]) -> None:
        size = entry.size
        if self.bytes + size > self.limits.max_total_bytes:
            raise InvalidSpec(
                f"archive member {entry.path!r} declares {size} bytes, which"
                f" would take the extraction past its cap of"
                f" {self.limits.max_total_bytes} bytes"
                " (ExtractLimits.max_total_bytes)"
            )
        mode = entry.mode & _KEEP_BITS
        if (
            self.makers is not None
            and size <= LARGEST
            and self.files >= MAKERS_AFTER
            and self.makers.ready(wait=self.files >= MAKERS_WAIT)
        ):
            self._hand_over(entry, path, data, mode)
            return
        # Created with its final mode (writing through our own fd works even if that
        # mode is read-only); fchmod only when the umask would have taken bits away.
        fd = os.open(f"{self.root}/{path}", FILE_FLAGS, mode)
        try:
            written = 0
            for piece in data:
                written += len(piece)
                if written > size:
                    raise _size_error(entry, written)
                done = os.write(fd, piece)
                while done < len(piece):
                    done += os.write(fd, memoryview(piece)[done:])
            if written != size:
                raise _size_error(entry, written)
            if mode & self.umask:
                os.fchmod(fd, mode)
            if self.keep_mtime and (times := _times(entry.mtime)):
                os.utime(fd, ns=times)
        finally:
            os.close(fd)
        self.bytes += size
        self.files += 1

    def _hand_over(self, entry: Entry, path: str, data: Iterable[bytes], mode: int) -> None:
        """A small file, made by a file-making process from its bytes copied over."""
        assert self.makers is not None
        times = _times(entry.mtime) if self.keep_mtime else None
        held = self.makers.add(
            os.fsencode(f"{self.root}/{path}"),
            data,
            entry.size,
            mode,
            fchmod=bool(mode & self.umask),
            mtime=times[0] if times else None,
        )
        if held != entry.size:
            raise _size_error(entry, held)
        self.bytes += held
        self.files += 1

    def _symlink(self, entry: Entry, path: str) -> None:
        os.symlink(entry.linkname, self._full(path))
        times = _times(entry.mtime) if self.keep_mtime else None
        if times:
            os.utime(self._full(path), ns=times, follow_symlinks=False)
        self.symlinks += 1

    def _hardlink(self, entry: Entry, path: str) -> None:
        if self.makers is not None:
            self.makers.settle()  # its target may be a file being made
        target = member_path(entry.linkname)
        os.link(self._full(target), self._full(path), follow_symlinks=False)
        self.hardlinks += 1

    def stop(self) -> None:
        """End the file-making processes at once (the extraction failed)."""
        if self.makers is not None:
            self.makers.kill()

    def finish(self) -> None:
        if self.makers is not None:
            try:
                self.makers.close()
            except MakerFailed as e:
                raise self._maker_error(e) from None
        for path, unselected in self.unselected_dirs.items():
            if self.layout.kind(path) is not None and path not in self.dir_attrs:
                self.dir_attrs[path] = unselected
        try:
            for path in self.layout.folders():
                attrs = self.dir_attrs.get(path)
                if self.keep_mtime and attrs is not None and (stamp := _times(attrs[1])):
                    os.utime(self._full(path), ns=stamp)
                wanted = self.implied_mode if attrs is None else attrs[0] & _KEEP_BITS
                if self.made_modes.get(path) != wanted:
                    os.chmod(self._full(path), wanted)
        except OSError as e:
            raise LocalIOError(
                f"cannot set folder modes in {self.final}: {e.strerror or e}"
            ) from None


def extract_tar(
    chunks: Iterable[bytes],
    dest: str | os.PathLike[str],
    *,
    compression: Codec | Literal["auto"] = "auto",
    include: Sequence[str] = (),
    limits: ExtractLimits = DEFAULT_LIMITS,
    keep_mtime: bool = False,
) -> ExtractResult:
    """Extract a tar, tar.gz or tar.zst stream into `dest`, all or nothing. With
    `include`, unmatched members are read through and dropped, never written."""
    return extract_members(
        read_tar(chunks, compression=compression, limits=limits),
        dest,
        include=include,
        limits=limits,
        keep_mtime=keep_mtime,
    )


def extract_zip(
    read_range: ReadRange,
    size: int,
    dest: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    limits: ExtractLimits = DEFAULT_LIMITS,
    keep_mtime: bool = False,
) -> ExtractResult:
    """Extract a zip read through `read_range(start, end)` into `dest`, all or nothing.
    With `include`, only the matching members' byte ranges are read."""
    select = compile_include(include)
    return extract_members(
        read_zip(read_range, size, select=select, limits=limits),
        dest,
        include=include,
        limits=limits,
        keep_mtime=keep_mtime,
    )
