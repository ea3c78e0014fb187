"""What a killed transfer leaves beside its destination, and how a later run tells it
from what a live one is using.

A download writes into `.NAME.argosy-XXXX.part` and a restore (a folder of objects, an
extracted archive) builds into `.NAME.argosy-XXXXXXXX.tmp`, beside NAME, so the final
rename is atomic. A clean failure or an interrupt removes them; a process killed outright
(SIGKILL, the OOM killer) cannot. So each run holds an exclusive flock(2) on its
temporary for as long as it uses it (the kernel drops the lock when the process dies,
however it dies), and a later run toward the same destination removes an entry only if
its name matches that run's own pattern exactly, it is of the kind the pattern is for
(a file, a folder; never a link), and its lock can be taken: nothing of anyone else's,
no other destination's and no live run's is touched.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from collections.abc import Callable


def hold(fd: int) -> bool:
    """Take the lock that marks `fd`'s file or folder as in use by this process, for as
    long as `fd` stays open; False when another holder has it. A file system without
    locks counts as held: a sweep cannot take such a lock either, so it leaves the
    entry alone."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN)
    return True


def temp_file_pattern(name: str) -> re.Pattern[str]:
    """A download's temporary files for destination `name`: `.NAME.argosy-HEX.part`."""
    return re.compile(rf"\.{re.escape(name)}\.argosy-[0-9a-f]+\.part")


def staging_pattern(name: str) -> re.Pattern[str]:
    """A restore's staging folders for destination `name` (made by `tempfile.mkdtemp`
    with that prefix and suffix: eight of its name characters in between)."""
    return re.compile(rf"\.{re.escape(name)}\.argosy-[a-z0-9_]{{8}}\.tmp")


def sweep(
    folder: str | os.PathLike[str],
    pattern: re.Pattern[str],
    *,
    folders: bool,
    remove: Callable[[str], None],
    keep: str = "",
) -> None:
    """Remove what killed runs left in `folder`: entries named by `pattern` (except
    `keep`), files or (with `folders`) folders, that no live process holds. One listing of
    `folder`; nothing is read. Never raises: what cannot be looked at stays."""
    try:
        with os.scandir(folder) as entries:
            found = [e for e in entries if e.name != keep and pattern.fullmatch(e.name)]
    except OSError:
        return
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if folders else 0)
    for entry in found:
        try:
            if entry.is_symlink() or entry.is_dir(follow_symlinks=False) != folders:
                continue
            fd = os.open(entry.path, flags | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a live run's, or no locks here: leave it
        try:
            remove(entry.path)  # under the lock: a run starting now cannot take it meanwhile
        except OSError:
            pass
        finally:
            os.close(fd)
