"""The Ceph RGW the benchmark talks to: started with the project's `scripts/rgw.sh`, or an
already running one described by its env file.

Why a module: start/stop/gc must be bounded and the stop must run even when the benchmark
fails, and the env file (`export K=V`, shell-quoted) must be read without a shell.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "rgw.sh"
START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 120
GC_TIMEOUT_S = 300


@dataclass(frozen=True)
class Rgw:
    """Where the gateway answers and how to sign for it."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    state_dir: Path | None  # None: no local state, so no forced GC

    def env(self) -> dict[str, str]:
        """The AWS_* variables every tool reads its endpoint and credentials from."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }


def read_env_file(path: Path) -> dict[str, str]:
    """Parse `export NAME=VALUE` lines (values quoted as bash's printf %q does)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            words = words[1:]
        for word in words:
            name, sep, value = word.partition("=")
            if sep:
                values[name] = value
    return values


def from_env_file(path: Path) -> Rgw:
    values = read_env_file(path)
    missing = [
        k
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        if k not in values
    ]
    if missing:
        raise SystemExit(f"{path}: missing {', '.join(missing)}")
    state = values.get("ARGOSY_RGW_STATE")
    return Rgw(
        values["AWS_ENDPOINT_URL"],
        values["AWS_ACCESS_KEY_ID"],
        values["AWS_SECRET_ACCESS_KEY"],
        values.get("AWS_REGION", "us-east-1"),
        Path(state) if state else None,
    )


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=ROOT,
        text=True,
        timeout=timeout,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )


def start(state_dir: Path) -> Rgw:
    """Start a fresh single-node cluster in state_dir; raise with rgw.sh's output on failure."""
    done = _run(["start", str(state_dir)], START_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(
            f"scripts/rgw.sh start failed (exit {done.returncode}):\n{done.stdout.strip()}"
        )
    return from_env_file(state_dir / "env")


def stop(state_dir: Path) -> None:
    """Stop the cluster; never raises (it runs in a finally), reports problems on stderr."""
    try:
        done = _run(["stop", str(state_dir)], STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"bench: scripts/rgw.sh stop {state_dir} timed out", file=sys.stderr)
        return
    if done.returncode != 0:
        print(f"bench: scripts/rgw.sh stop failed:\n{done.stdout}", file=sys.stderr)


def gc(rgw: Rgw) -> float:
    """Force RGW's garbage collection (deleted objects' data); returns seconds it took."""
    if rgw.state_dir is None:
        return 0.0
    t0 = time.perf_counter()
    done = _run(["gc", str(rgw.state_dir)], GC_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/rgw.sh gc failed: {done.stdout.strip()}")
    return time.perf_counter() - t0


WARM_UP_OBJECTS = 16  # x 16 MiB: more than any one archive run writes


def warm_up(rgw: Rgw, client: Any, bucket: str) -> float:
    """Write 256 MiB to the bucket once, untimed, then delete it and collect the garbage;
    returns the seconds it took. Against a freshly started RGW, the first large upload of
    a sitting ran 8-29% slower than the same case's median, for whichever tool came
    first (the tar.zst upload: 0.95 s, then 0.74-0.75 s; after this, 0.79 s, then
    0.75-0.78 s; by hand, 2026-12-07), which skewed round-robin medians."""
    t0 = time.perf_counter()
    body = os.urandom(16 << 20)
    keys = [f"bench-warm-up/{i}" for i in range(WARM_UP_OBJECTS)]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=body)
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    gc(rgw)
    return time.perf_counter() - t0
