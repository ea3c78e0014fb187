"""The `argosy` command: parses arguments, resolves configuration once, maps errors to
exit codes (0 ok; 1 failed; 2 usage or bad input; 3 not found; 4 integrity mismatch;
5 access denied or bad credentials)."""

from __future__ import annotations

import argparse
import atexit
import importlib
import itertools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from argosy import __version__
from argosy.argo.names import REPOSITORIES_CONFIGMAP
from argosy.artifacts.errors import ArtifactError, exit_code_for


def _connection(p: argparse.ArgumentParser) -> None:
    """Where the storage is and how to reach it: for the commands that reach it."""
    p.add_argument(
        "--repository",
        metavar="FILE",
        help="an Argo repository entry, or an artifact-repositories ConfigMap",
    )
    p.add_argument(
        "--repository-key",
        metavar="KEY",
        help="which entry of the ConfigMap (default: its annotation)",
    )
    _endpoint(p)
    p.add_argument("--profile", help="AWS shared-config profile")
    p.add_argument(
        "--addressing-style",
        choices=["path", "virtual", "auto"],
        help="S3 bucket addressing: in the path or in the host name (default: auto)",
    )
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--ca-bundle", metavar="FILE", help="CA certificates to trust")


def _endpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoint",
        help="endpoint URL (default: AWS_ENDPOINT_URL for s3://, OSS_ENDPOINT for oss://)",
    )
    p.add_argument("--region", help="S3 region (default: AWS_REGION)")


def _encryption(p: argparse.ArgumentParser, *, writes: bool) -> None:
    """Server-side encryption: chosen by the commands that write; the SSE-C key is also
    needed by those that read (HEAD and GET of an SSE-C object send it)."""
    if writes:
        p.add_argument("--sse", choices=["s3", "kms", "c"], help="server-side encryption")
        p.add_argument("--sse-kms-key-id", metavar="ID", help="the KMS key for --sse kms")
    p.add_argument(
        "--sse-c-key-file",
        metavar="FILE",
        help="32-byte SSE-C key (implies --sse c)" if writes else "32-byte SSE-C key",
    )


def _transfer(p: argparse.ArgumentParser, *, parallel: bool = True, files: bool = True) -> None:
    """How bytes move: for the commands that move them (in parallel parts, into files)."""
    p.add_argument("--part-size", type=int, metavar="MiB", help="multipart part size")
    p.add_argument(
        "--stall-timeout",
        type=float,
        metavar="SECONDS",
        help="fail when the transfer has moved no byte for this long (default: 120)",
    )
    p.add_argument(
        "--deadline",
        type=float,
        metavar="SECONDS",
        help="fail when the transfer takes longer than this (default: no limit)",
    )
    if parallel:
        p.add_argument("--concurrency", type=int, metavar="N", help="parts in flight")
        p.add_argument(
            "--files",
            type=int,
            metavar="N",
            help="files in flight, for a folder of objects (-r, --archive none; default: 160)",
        )
    if files:
        p.add_argument(
            "--direct-io",
            action="store_true",
            help="write downloads with O_DIRECT, past the page cache (also ARGOSY_DIRECT_IO=1)",
        )


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="log retries and requests")


def _lazy(target: str) -> Callable[..., int]:
    """A command's function, imported only when that command runs: `argosy ls` should
    not pay for the demo's S3 server, nor `--version` for boto."""

    def run(*args: object, **kwargs: object) -> int:
        module, _, name = target.partition(":")
        return int(getattr(importlib.import_module(module), name)(*args, **kwargs))

    return run


if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _object_command(
    sub: Subparsers, name: str, target: str, help_text: str
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(run=_lazy(target))
    return p


def _cp(sub: Subparsers) -> None:
    p = _object_command(
        sub, "cp", "argosy.commands.objects:cp", "copy a file, stream or folder to or from a URL"
    )
    p.add_argument(
        "src", help="a file, a folder (with -r or --archive), - for standard input, or a URL"
    )
    p.add_argument(
        "dst",
        help="a URL (ending in / for a folder of keys), a file or folder, or - for standard output",
    )
    p.add_argument(
        "-r", "--recursive", action="store_true", help="copy a folder as one object per file"
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start a killed upload afresh instead of resuming it",
    )
    p.add_argument(
        "--archive",
        choices=["tar.zst", "tar.gz", "tar", "zip", "none", "auto"],
        help="move a folder as one archive (or one object per file: none); "
        "auto detects it on download",
    )
    p.add_argument("--level", type=int, help="compression level (zstd 1-19, gzip 0-3)")
    p.add_argument(
        "--include",
        action="append",
        metavar="GLOB",
        help="extract only matching paths (* within a segment, ** across)",
    )
    p.add_argument("--keep-mtime", action="store_true", help="keep modification times")
    p.add_argument(
        "--max-expansion",
        metavar="RATIO",
        help="refuse an archive that decompresses to more than RATIO times the bytes "
        "read, once 64 MiB is out (default 1000; 0: no limit)",
    )
    _connection(p)
    _encryption(p, writes=True)
    _transfer(p)
    _quiet(p)
    _verbose(p)


def _ls(sub: Subparsers) -> None:
    p = _object_command(
        sub,
        "ls",
        "argosy.commands.objects:ls",
        "list objects: SIZE  MODIFIED  URL (a URL with no bucket, s3://, lists the buckets)",
    )
    p.add_argument(
        "url", help="a bucket or folder of keys (BUCKET/ or BUCKET/PREFIX/), or a key's prefix"
    )
    p.add_argument("-r", "--recursive", action="store_true", help="every key below, not one level")
    p.add_argument("--json", action="store_true", help="JSON lines, names exact")
    p.add_argument(
        "--archive-contents",
        action="store_true",
        help="list the entries inside an archived artifact",
    )
    p.add_argument(
        "--max-expansion",
        metavar="RATIO",
        help="with --archive-contents: refuse a tar that decompresses to more than RATIO "
        "times the bytes read, once 64 MiB is out (default 1000; 0: no limit)",
    )
    _connection(p)
    _encryption(p, writes=False)
    _verbose(p)


def _rm(sub: Subparsers) -> None:
    p = _object_command(
        sub, "rm", "argosy.commands.objects:rm", "delete an object, or a folder of objects with -r"
    )
    p.add_argument("url", help="an object, or with -r a folder of keys (URL/)")
    p.add_argument("-r", "--recursive", action="store_true", help="every object below the folder")
    _connection(p)
    _quiet(p)
    _verbose(p)


def _mb(sub: Subparsers) -> None:
    p = _object_command(
        sub,
        "mb",
        "argosy.commands.objects:mb",
        "make a bucket (s3://, oss://, local://); one that is already yours is no error",
    )
    p.add_argument(
        "url", metavar="URL", help="the bucket: s3://BUCKET, oss://BUCKET, local://BUCKET"
    )
    _connection(p)
    _quiet(p)
    _verbose(p)


def _cat(sub: Subparsers) -> None:
    p = _object_command(
        sub, "cat", "argosy.commands.objects:cat", "write an object to standard output, verified"
    )
    p.add_argument("url", help="the object")
    _connection(p)
    _encryption(p, writes=False)
    _transfer(p, parallel=False, files=False)
    _quiet(p)
    _verbose(p)


def _stat(sub: Subparsers) -> None:
    p = _object_command(
        sub,
        "stat",
        "argosy.commands.objects:stat",
        "an object's size, ETag, checksum record and metadata",
    )
    p.add_argument("url", help="the object")
    _connection(p)
    _encryption(p, writes=False)
    _verbose(p)


def _demo(sub: Subparsers) -> None:
    p = _object_command(
        sub,
        "demo",
        "argosy.commands.objects:demo",
        "round-trip a file and a folder through an in-process S3, run Argo "
        "example workflows on this machine, and garbage-collect their "
        "artifacts",
    )
    p.add_argument(
        "--size",
        type=int,
        default=256,
        metavar="MiB",
        help="size of the file the round trip copies (default: 256)",
    )

    p.add_argument(
        "--workdir",
        metavar="DIR",
        help="where to put the demo's files (the workflows' pod folders are kept there)",
    )
    p.add_argument(
        "--workflow",
        action="append",
        default=[],
        metavar="FILE",
        help="an Argo Workflow to run (repeatable; default: examples/"
        "argo/artifact-passing.yaml and examples/directory-passing.yaml)",
    )
    only = p.add_mutually_exclusive_group()
    only.add_argument(
        "--workflows-only", action="store_true", help="skip the file and folder round trip"
    )
    only.add_argument("--no-workflows", action="store_true", help="only the round trip")
    p.add_argument(
        "--bucket",
        metavar="NAME",
        help="run the workflows against this bucket (s3://NAME or oss://NAME) at "
        "--endpoint (or AWS_ENDPOINT_URL / OSS_ENDPOINT) instead of the "
        "embedded S3",
    )
    p.add_argument(
        "--sandbox",
        choices=["auto", "namespace", "rewrite"],
        help="how a step gets its own /tmp (default: ARGOSY_SANDBOX, else auto)",
    )
    p.add_argument(
        "--step-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="kill a workflow step after S seconds (default: 120)",
    )
    p.add_argument("--no-gc", action="store_true", help="leave the workflows' artifacts")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary work folder (with --workdir it is always kept)",
    )
    _endpoint(p)
    _transfer(p)
    _verbose(p)


def _repo(sub: Subparsers) -> None:
    help_text = "Argo artifact repositories (ConfigMap entries)"
    repo = sub.add_parser("repo", help=help_text, description=help_text)
    help_text = (
        "probe every entry of an artifact-repositories ConfigMap: write, read back, "
        "multipart, list, delete (exit 0 all ok, 1 a probe failed, 2 bad ConfigMap)"
    )
    p = repo.add_subparsers(dest="repo_command", required=True).add_parser(
        "check", help=help_text, description=help_text
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="a ConfigMap (or one repository entry) as YAML; secrets from "
        "$ARGOSY_SECRETS_DIR/<name>/<key> (default /argo/secret)",
    )
    source.add_argument(
        "-n",
        "--namespace",
        metavar="NS",
        help="read the ConfigMap and its Secrets from the Kubernetes API",
    )
    p.add_argument(
        "--configmap",
        default=REPOSITORIES_CONFIGMAP,
        metavar="NAME",
        help="with --namespace: the ConfigMap's name (default: %(default)s)",
    )
    p.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="with --namespace (default: in a pod its service account, else "
        "KUBECONFIG or ~/.kube/config)",
    )
    p.add_argument("--context", help="with --namespace: the kubeconfig context")
    p.add_argument("--json", action="store_true", help="JSON lines, one per entry")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="longest one probe may take, retries included (default: 60)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log retries and requests")
    p.set_defaults(run=_lazy("argosy.commands.repo_check:run"))


def _pod_step(name: str, help_text: str) -> Callable[[Subparsers], None]:
    def build(sub: Subparsers) -> None:
        from argosy.commands import pod_args

        p = sub.add_parser(name, help=help_text, description=help_text)
        pod_args.add_arguments(p)
        p.set_defaults(run=_lazy(f"argosy.commands.pod:{name}"), standalone=True, sigterm=True)
        if name == "wait":
            p.add_argument(
                "--timeout",
                type=float,
                metavar="S",
                help="give up when main has not exited after S seconds",
            )

    return build


def _emissary(sub: Subparsers) -> None:
    from argosy.commands import pod_args

    help_text = "run a command as a pod's main container, recording its exit code and log"
    p = sub.add_parser(
        "emissary",
        help=help_text,
        description=help_text,
        usage="argosy emissary [--var-dir D] -- COMMAND [ARGS...]",
    )
    pod_args.add_arguments(p, with_template=False)
    p.add_argument(
        "argv",
        nargs=argparse.REMAINDER,
        metavar="COMMAND",
        help="the main container's command and its arguments, after --",
    )
    p.set_defaults(run=_lazy("argosy.commands.pod:emissary"), standalone=True, verbose=False)


def _lint(sub: Subparsers) -> None:
    help_text = (
        "show where each artifact of a workflow will be stored, and what is wrong "
        "(exit 0 ok, 1 an error (--strict: or a warning), 2 a file not read or not YAML)"
    )
    p = sub.add_parser("lint", help=help_text, description=help_text)
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="Workflow, (Cluster)WorkflowTemplate, CronWorkflow or template YAML "
        "(several documents per file allowed; - reads standard input)",
    )
    p.add_argument(
        "--json", action="store_true", help="JSON lines: one per artifact, error and warning"
    )
    p.add_argument(
        "--repositories",
        action="append",
        metavar="FILE",
        default=[],
        help="an artifact-repositories ConfigMap the workflows refer to "
        "(repeatable; its secrets are not read)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="for CI: an artifact Argosy cannot move (gcs, azure, hdfs, git, artifactory, "
        "plugin) is an error, and any warning fails too (exit 1)",
    )
    p.set_defaults(run=_lazy("argosy.commands.lint:run"), standalone=True, verbose=False)


def _gc(sub: Subparsers) -> None:
    from argosy.commands import gc as gc_command

    help_text = "the artifact GC controller (argosy.gc): deletes artifacts by policy"
    p = sub.add_parser("gc", help=help_text, description=help_text)
    gc_command.add_arguments(p)
    p.set_defaults(run=gc_command.run, standalone=True)  # needs no storage Config


def _plugin(sub: Subparsers) -> None:
    help_text = (
        "serve Argo's artifact driver plugin on a unix socket (Argo runs it "
        "beside a workflow's containers)"
    )
    p = sub.add_parser("plugin", help=help_text, description=help_text)
    p.add_argument(
        "socket",
        metavar="SOCKET",
        help="the unix socket to serve on (Argo passes "
        "/tmp/artifact-plugins/NAME/socket); its folder is created",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=20.0,
        metavar="S",
        help="after SIGTERM, seconds calls in flight get to finish (default 20)",
    )
    p.add_argument(
        "--workers", type=int, default=16, metavar="N", help="calls served at once (default 16)"
    )
    p.add_argument(
        "--secrets-dir",
        metavar="DIR",
        help="Secrets as DIR/<name>/<key> where mounted (default "
        "$ARGOSY_SECRETS_DIR or /argo/secret); else read through the API",
    )
    p.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="the Kubernetes API for Secrets (default: the pod's service account)",
    )
    p.set_defaults(run=_lazy("argosy.commands.plugin:run"), standalone=True, verbose=False)


def _serve(sub: Subparsers) -> None:
    from argosy.commands import serve

    help_text = "serve Argo Server's artifact URLs (argosy.server): ranges, folders, archives"
    p = sub.add_parser("serve", help=help_text, description=help_text)
    serve.add_arguments(p)
    p.set_defaults(run=_lazy("argosy.commands.serve:run"), standalone=True, verbose=False)


_COMMANDS: dict[str, Callable[[Subparsers], None]] = {
    "cp": _cp,
    "ls": _ls,
    "rm": _rm,
    "mb": _mb,
    "cat": _cat,
    "stat": _stat,
    "demo": _demo,
    "repo": _repo,
    "init": _pod_step("init", "in a workflow pod: download every input artifact into its path"),
    "wait": _pod_step("wait", "in a workflow pod: wait for main to exit, then upload every output"),
    "emissary": _emissary,
    "lint": _lint,
    "gc": _gc,
    "plugin": _plugin,
    "serve": _serve,
}


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` (one of its commands), that command alone:
    defining every command's arguments took ~15 ms of each run, most of it argparse
    asking gettext for translations of its help texts."""
    top = argparse.ArgumentParser(prog="argosy", description="Artifacts for workflow pods.")
    top.add_argument("--version", action="version", version=f"argosy {__version__}")
    top.add_argument(
        "-v",
        "--verbose",
        dest="verbose_first",
        action="store_true",
        help="log retries and requests (before the command or after it)",
    )
    sub = top.add_subparsers(dest="command", required=True)
    for name, build in _COMMANDS.items():
        if command not in _COMMANDS or name == command:
            build(sub)
    return top


_TOP_FLAGS = ("-v", "--verbose")  # flags the command line takes before the command


def _command_in(argv: list[str]) -> str | None:
    """The command `argv` names, if its first argument (after -v) is one."""
    rest = list(itertools.dropwhile(lambda arg: arg in _TOP_FLAGS, argv))
    return rest[0] if rest and rest[0] in _COMMANDS else None


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser(_command_in(sys.argv[1:] if argv is None else argv)).parse_args(argv)
    args.verbose = args.verbose or args.verbose_first  # `argosy -v cp` as `argosy cp -v`
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="argosy: %(message)s",
        stream=sys.stderr,
    )
    standalone = getattr(args, "standalone", False)
    if not standalone or getattr(args, "sigterm", False):
        # SIGTERM (a pod being stopped) unwinds like Ctrl-C, so uploads in flight are
        # aborted. (`emissary` forwards it to its command instead; `gc` has its own.)
        signal.signal(signal.SIGTERM, _terminate)
    try:
        if standalone:  # commands that resolve their own configuration
            return int(args.run(args))
        from argosy.commands.config import Config

        cfg = Config.from_args(args, os.environ)
        return int(args.run(cfg))
    except ArtifactError as error:
        from argosy.commands.printable import printable  # a key may hold control characters

        print(f"argosy: error: {printable(str(error))}", file=sys.stderr)
        return exit_code_for(error)
    except KeyboardInterrupt:
        print("argosy: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def entry() -> NoReturn:
    """The `argosy` console script: `main`, then `leave`."""
    leave(main())


def leave(code: int) -> NoReturn:
    """Exit with `code` once all a normal exit finishes is finished: logging shut down,
    atexit callbacks run, output flushed; then skip the interpreter's teardown (freeing
    every module and object: ~16 ms of each command here, writing nothing). A thread
    still running takes the normal exit, which waits for it."""
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        sys.exit(code)
    logging.shutdown()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left (`argosy ls | head`): what the normal exit does
        code = code or 1
    except OSError as error:  # a full disk or an I/O error where the output goes
        print(f"argosy: error: cannot write to the output: {error.strerror}", file=sys.stderr)
        code = code or 1
    except ValueError:  # closed
        code = code or 1
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    entry()
