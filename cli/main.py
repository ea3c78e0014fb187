"""The `argosy` command: parses arguments, resolves configuration once, maps errors to
exit codes (0 ok; 1 failed; 2 usage or bad input; 3 not found; 4 integrity mismatch;
5 access denied or bad credentials)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable

from argosy import __version__
from argosy.artifacts.errors import ArtifactError, exit_code_for


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repository", metavar="FILE",
                   help="an Argo repository entry, or an artifact-repositories ConfigMap")
    p.add_argument("--repository-key", metavar="KEY",
                   help="which entry of the ConfigMap (default: its annotation)")
    p.add_argument("--endpoint", help="endpoint URL (default: AWS_ENDPOINT_URL for s3://, "
                   "OSS_ENDPOINT for oss://)")
    p.add_argument("--region", help="S3 region (default: AWS_REGION)")
    p.add_argument("--profile", help="AWS shared-config profile")
    p.add_argument("--addressing-style", choices=["path", "virtual", "auto"])
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--ca-bundle", metavar="FILE", help="CA certificates to trust")
    p.add_argument("--sse", choices=["s3", "kms", "c"], help="server-side encryption")
    p.add_argument("--sse-kms-key-id", metavar="ID")
    p.add_argument("--sse-c-key-file", metavar="FILE", help="32-byte SSE-C key")
    p.add_argument("--part-size", type=int, metavar="MiB", help="multipart part size")
    p.add_argument("--concurrency", type=int, metavar="N", help="parts in flight")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress, no summary")
    p.add_argument("-v", "--verbose", action="store_true", help="log retries and requests")


def parser() -> argparse.ArgumentParser:
    from argosy import commands, demo

    top = argparse.ArgumentParser(prog="argosy", description="Artifacts for workflow pods.")
    top.add_argument("--version", action="version", version=f"argosy {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        p.set_defaults(run=fn)
        return p

    p = add("cp", commands.cp, "copy a file, stream or folder to or from a URL")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("-r", "--recursive", action="store_true")
    p.add_argument("--no-resume", action="store_true",
                   help="start a killed upload afresh instead of resuming it")
    p = add("ls", commands.ls, "list objects: SIZE  MODIFIED  URL")
    p.add_argument("url")
    p.add_argument("-r", "--recursive", action="store_true")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p = add("rm", commands.rm, "delete an object, or a folder of objects with -r")
    p.add_argument("url")
    p.add_argument("-r", "--recursive", action="store_true")
    p = add("cat", commands.cat, "write an object to standard output, verified")
    p.add_argument("url")
    p = add("stat", commands.stat, "an object's size, ETag, checksum record and metadata")
    p.add_argument("url")
    p = add("demo", demo.run, "round-trip a file and a folder through an in-process S3")
    p.add_argument("--size", type=int, default=256, metavar="MiB")
    p.add_argument("--workdir", metavar="DIR", help="where to put the demo's files")
    return top


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="argosy: %(message)s", stream=sys.stderr)
    from argosy.config import Config

    # SIGTERM (a pod being stopped) unwinds like Ctrl-C, so uploads in flight are aborted.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cfg = Config.from_args(args, os.environ)
        return int(args.run(cfg))
    except ArtifactError as error:
        print(f"argosy: error: {error}", file=sys.stderr)
        return exit_code_for(error)
    except KeyboardInterrupt:
        print("argosy: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
