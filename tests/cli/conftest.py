"""Run `argosy` as a user does: a separate process, real arguments, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.conftest import unique_bucket


@dataclass
class Run:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode()


class Argosy:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    def __call__(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        python: bool = False,
        stdout: BinaryIO | None = None,
    ) -> Run:
        """`argosy ARGS`; with `python`, `python ARGS` (e.g. `-c CODE` then argosy's);
        with `stdout`, its output goes there (e.g. /dev/full) instead of to `Run.out`."""
        command = [sys.executable, *args] if python else [sys.executable, "-m", "argosy", *args]
        proc = subprocess.run(
            command,
            input=stdin,
            stdout=stdout or subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            timeout=300,
        )
        return Run(proc.returncode, proc.stdout or b"", proc.stderr.decode())


def _base_env(tmp_path: Path) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and not k.startswith("ARGOSY_")
    }
    return {**keep, "ARGOSY_LOCAL_ROOT": str(tmp_path / "local-root"), "HOME": str(tmp_path)}


@pytest.fixture
def argosy_local(tmp_path: Path) -> Argosy:
    (tmp_path / "local-root" / "bkt").mkdir(parents=True)
    return Argosy(_base_env(tmp_path), tmp_path)


@pytest.fixture
def rgw_bucket(rgw: dict[str, str]) -> str:
    from tests.conftest import s3_driver

    bucket = unique_bucket("cli")
    s3_driver(
        rgw["AWS_ENDPOINT_URL"], rgw["AWS_ACCESS_KEY_ID"], rgw["AWS_SECRET_ACCESS_KEY"], bucket
    )
    return bucket


@pytest.fixture
def argosy_rgw(rgw: dict[str, str], tmp_path: Path) -> Argosy:
    env = _base_env(tmp_path)
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        env[name] = rgw[name]
    return Argosy(env, tmp_path)
