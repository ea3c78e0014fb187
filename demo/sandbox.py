"""Run a step's command with a private filesystem view: `ROOT/<top>` seen as `/<top>`.

Why: Argo runs each step in its own container, where `/tmp/message` is that container's
file. Argosy's local engine (`argosy demo`) runs several steps on one machine; each must
see its own `/tmp`, written by `argosy init` and read back by `argosy wait` under
`--root ROOT` (Argo's `/mainctrfs`), and none may touch the host's `/tmp`.

How: on Linux the launcher (`python -m argosy.demo.sandbox --root ROOT --bind tmp --
CMD...`) enters new user and mount namespaces (no privilege needed where user
namespaces are allowed), makes every mount private so nothing leaks back to the host,
assembles a view of `/` in which each top-level folder the step's artifacts use is
`ROOT/<top>` and everything else is the host's, chroots into it and execs the command,
which thus becomes the emissary's child itself: its exit code and signals are the
command's. Where namespaces are refused (a container without CAP_SYS_ADMIN, seccomp,
`max_user_namespaces=0`, not Linux) it falls back to rewriting the command's arguments
(`/tmp/x` becomes `ROOT/tmp/x`) and says so once on stderr: paths the command builds at
run time are then not redirected. `ARGOSY_SANDBOX=namespace|rewrite` (or `--mode`)
forces one way; `auto`, the default, tries the namespace first.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from argosy.artifacts.errors import InvalidSpec

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000  # <sched.h>
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000  # <sys/mount.h>
MODES = ("auto", "namespace", "rewrite")
# Folders the command itself runs from: a bind over them would hide the shell.
SYSTEM_TOPS = frozenset(
    {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc", "sys", "boot"}
)
VIEW = ".argosy-root"  # under ROOT: where the step's view of / is assembled
ALWAYS = ("tmp",)  # a step's scratch space is never the host's, artifacts or not
EXEC_FAILED = 127  # as a shell reports a command it cannot run


class SandboxUnavailable(OSError):
    """The kernel refused the namespaces (or a mount in them)."""


@dataclass(frozen=True)
class Sandbox:
    """`root` holds one folder per bound top (`root/tmp` for `/tmp`)."""

    root: Path
    tops: tuple[str, ...] = ALWAYS

    def source(self, top: str) -> Path:
        return self.root / top


def tops_of(paths: Iterable[str]) -> tuple[str, ...]:
    """The top-level folders of absolute artifact paths, `tmp` always among them."""
    found = dict.fromkeys(ALWAYS)
    for text in paths:
        path = PurePosixPath(text)
        if not path.is_absolute() or len(path.parts) < 3:
            # "/x" alone would need "/" itself bound; a relative path has no top.
            raise InvalidSpec(
                f"artifact path {text!r} must be absolute and below a "
                "top-level folder (like /tmp/x) to be sandboxed"
            )
        found[path.parts[1]] = None
    tops = tuple(found)
    for top in tops:
        check_top(top)
    return tops


def check_top(top: str) -> None:
    if not top or "/" in top or top in (".", "..", VIEW) or top in SYSTEM_TOPS:
        raise InvalidSpec(f"cannot sandbox /{top}: it is not a folder a step may own")


def launcher(
    sandbox: Sandbox,
    command: Sequence[str],
    *,
    mode: str | None = None,
    workdir: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The argv that runs `command` inside `sandbox`, for the emissary to start."""
    argv = [python, "-m", "argosy.demo.sandbox", "--root", str(sandbox.root)]
    for top in sandbox.tops:
        argv += ["--bind", top]
    if mode:
        argv += ["--mode", mode]
    if workdir:
        argv += ["--workdir", workdir]
    return [*argv, "--", *command]


def rewrite_args(
    command: Sequence[str], sandbox: Sandbox, tops: Iterable[str] | None = None
) -> list[str]:
    """Each `/<top>` that starts a path in an argument replaced by `root/<top>`.

    Only whole segments: `/tmpfoo` and `/var/tmp/x` stay as they are."""
    chosen = tuple(sandbox.tops if tops is None else tops)
    if not chosen:
        return list(command)
    pattern = re.compile(r"(?<![\w./-])/(" + "|".join(map(re.escape, chosen)) + r")(?![\w.-])")
    return [pattern.sub(lambda m: str(sandbox.source(m.group(1))), arg) for arg in command]


# -- the namespace --------------------------------------------------------------------
@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
    ]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise SandboxUnavailable(code, f"{what}: {os.strerror(code)}")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError as error:
        raise SandboxUnavailable(
            error.errno or errno.EPERM, f"write {path}: {error.strerror}"
        ) from None


def enter_namespace(sandbox: Sandbox) -> None:
    """Put this process in new user+mount namespaces, rooted in a view of the host where
    each of `sandbox`'s tops is `ROOT/<top>`.

    The view is a tmpfs at `ROOT/.argosy-root` holding a bind of every other entry of the
    host's `/`, and the tops bound from the sandbox, then chrooted into. Binding over the
    host's own `/tmp` would be simpler, but a top the host lacks (`/data`, Argo's
    `/argo`) cannot be made without writing to the host's `/`, and a sandbox that itself
    lies under `/tmp` would vanish under its own bind."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(errno.ENOSYS, "namespaces need Linux")
    for top in sandbox.tops:
        sandbox.source(top).mkdir(parents=True, exist_ok=True)
    view = sandbox.root / VIEW
    view.mkdir(exist_ok=True)
    uid, gid = os.getuid(), os.getgid()
    libc = _libc()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
    # Our own ids, mapped to themselves: files the command writes are ours, as before.
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    _check(libc.mount(b"tmpfs", os.fsencode(view), b"tmpfs", 0, b"mode=0755"), f"tmpfs on {view}")
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.name not in sandbox.tops:
            _host_entry(libc, entry, view / entry.name)
    for top in sandbox.tops:
        (view / top).mkdir()
        _bind(libc, sandbox.source(top), view / top, MS_REC)
    try:
        os.chroot(view)
    except OSError as error:
        raise SandboxUnavailable(
            error.errno or errno.EPERM, f"chroot {view}: {error.strerror}"
        ) from None


def _host_entry(libc: ctypes.CDLL, entry: os.DirEntry[str], target: Path) -> None:
    """One entry of the host's `/` in the view: links as links, folders and files bound."""
    if entry.is_symlink():
        os.symlink(os.readlink(entry.path), target)
    elif entry.is_dir():
        target.mkdir()
        _bind(libc, Path(entry.path), target, MS_REC)
    elif entry.is_file():
        target.touch()
        _bind(libc, Path(entry.path), target, 0)
    # Sockets, devices and FIFOs at the top of / are left out of the view.


def _bind(libc: ctypes.CDLL, source: Path, target: Path, flags: int) -> None:
    _check(
        libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND | flags, None),
        f"bind {source} on {target}",
    )


def probe(sandbox: Sandbox) -> SandboxUnavailable | None:
    """Try the namespace in a forked child first: a failure half-way would leave this
    process in namespaces it cannot leave, so the fallback must start from a clean one."""
    if not sys.platform.startswith("linux"):
        return SandboxUnavailable(errno.ENOSYS, "namespaces need Linux")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        # Whatever happens, this copy of the caller must never run on past this block.
        try:
            os.close(read)
            message = b""
            try:
                enter_namespace(sandbox)
            except OSError as error:
                message = f"{error.errno or errno.EPERM} {error.strerror or error}".encode()
            except BaseException as error:  # noqa: BLE001 - reported, never raised here
                message = f"{errno.EPERM} {error!r}".encode()
            os.write(write, message)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read().decode(errors="replace")
    os.waitpid(pid, 0)
    if not report:
        return None
    code, _, text = report.partition(" ")
    return SandboxUnavailable(int(code), text)


# -- the launcher ---------------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    """What to exec and where: the decision, made before anything irreversible."""

    argv: list[str]
    workdir: str
    namespace: bool
    note: str | None = None  # said once on stderr


def prepare(
    sandbox: Sandbox,
    command: Sequence[str],
    *,
    mode: str = "auto",
    workdir: str | None = None,
    try_namespace: Callable[[Sandbox], SandboxUnavailable | None] = probe,
) -> Prepared:
    if not command:
        raise InvalidSpec("argosy sandbox: no command to run")
    if mode not in MODES:
        raise InvalidSpec(f"sandbox mode must be one of {', '.join(MODES)}, not {mode!r}")
    for top in sandbox.tops:
        check_top(top)
        sandbox.source(top).mkdir(parents=True, exist_ok=True)  # for the fallback too
    if workdir:
        inside = rewrite_args([workdir], sandbox)[0]
        if inside != workdir:  # a container runtime creates its workingDir; so do we
            Path(inside).mkdir(parents=True, exist_ok=True)
    failure = None
    if mode != "rewrite":
        failure = try_namespace(sandbox)
        if failure is None:
            return Prepared(list(command), workdir or "/", True)
        if mode == "namespace":
            raise failure
    targets = ", ".join(f"/{t}/ -> {sandbox.source(t)}/" for t in sandbox.tops)
    reason = (
        "rewrite mode, as asked"
        if failure is None
        else f"user namespaces are not available here ({failure.strerror})"
    )
    note = (
        f"argosy sandbox: {reason}; rewriting paths in the command's arguments instead "
        f"({targets}); paths the command builds at run time are not redirected"
    )
    where = rewrite_args([workdir], sandbox)[0] if workdir else str(sandbox.root)
    return Prepared(rewrite_args(command, sandbox), where, False, note)


def _exec(argv: list[str], workdir: str) -> int:
    try:
        os.chdir(workdir)
    except OSError as error:
        print(
            f"argosy sandbox: cannot work in {workdir}: {error.strerror or error}",
            file=sys.stderr,
            flush=True,
        )
        return 126
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        print(
            f"argosy sandbox: cannot run {argv[0]}: {error.strerror or error}",
            file=sys.stderr,
            flush=True,
        )
        return 126 if not isinstance(error, FileNotFoundError) else EXEC_FAILED
    return EXEC_FAILED  # pragma: no cover - execvp does not return


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="python -m argosy.demo.sandbox", description="Run a command with ROOT/<top> as /<top>."
    )
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="TOP",
        help="a top-level folder to take from ROOT (tmp is always bound)",
    )
    parser.add_argument(
        "--mode", choices=MODES, help="default: ARGOSY_SANDBOX, else auto (namespace, else rewrite)"
    )
    parser.add_argument("--workdir", help="the command's working folder (default /)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sandbox = Sandbox(args.root.resolve(), tuple(dict.fromkeys([*ALWAYS, *args.bind])))
    try:
        prepared = prepare(
            sandbox,
            command,
            mode=args.mode or env.get("ARGOSY_SANDBOX") or "auto",
            workdir=args.workdir,
        )
        if prepared.namespace:
            enter_namespace(sandbox)
    except (InvalidSpec, OSError) as error:
        print(f"argosy sandbox: {error}", file=sys.stderr, flush=True)
        return 2 if isinstance(error, InvalidSpec) else 1
    if prepared.note:
        print(prepared.note, file=sys.stderr, flush=True)
    return _exec(prepared.argv, prepared.workdir)


if __name__ == "__main__":
    sys.exit(main())
