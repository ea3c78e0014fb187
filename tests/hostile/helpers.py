"""What the hostile tests share: `argosy` as a subprocess against RGW, the bucket a case
writes to, and the checks that nothing half-written is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import s3_driver, unique_bucket

MiB = 1 << 20
TEMP_MARK = ".argosy-"  # every temporary name Argosy makes beside a destination has it


@dataclass
class Done:
    code: int
    out: bytes
    err: str

    @property
    def one_line(self) -> bool:
        return len(self.err.strip().splitlines()) == 1


def base_env(home: Path, **extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "ARGOSY_", "OSS_", "ARGO_", "KUBE"))
    }
    return {**keep, "HOME": str(home), "ARGOSY_LOCAL_ROOT": str(home / "local-root"), **extra}


def rgw_env(rgw: dict[str, str], home: Path, endpoint: str | None = None) -> dict[str, str]:
    return base_env(
        home,
        AWS_ENDPOINT_URL=endpoint or rgw["AWS_ENDPOINT_URL"],
        AWS_ACCESS_KEY_ID=rgw["AWS_ACCESS_KEY_ID"],
        AWS_SECRET_ACCESS_KEY=rgw["AWS_SECRET_ACCESS_KEY"],
        AWS_REGION=rgw.get("AWS_REGION", "us-east-1"),
        ARGOSY_CHECKPOINT_DIR=str(home / "checkpoints"),
    )


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "argosy", *args]


def argosy(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> Done:
    proc = subprocess.run(
        command(*args), env=env, cwd=cwd, capture_output=True, timeout=timeout, check=False
    )
    return Done(proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))


def new_bucket(rgw: dict[str, str]) -> Any:
    return s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        unique_bucket("hostile"),
    )


def keys(driver: Any, prefix: str = "") -> list[str]:
    """Every key under `prefix`, and every upload still open there (as `KEY (upload)`)."""
    found: list[str] = []
    token = None
    while True:
        page = driver.list(prefix, token=token)
        found += [o.key for o in page.objects]
        token = page.next_token
        if not token:
            break
    return sorted(found)


def read_object(driver: Any, key: str) -> bytes:
    stream = driver.read(key)
    data = bytearray(stream.total)
    view, got = memoryview(data), 0
    try:
        while got < len(data) and (n := stream.readinto(view[got:])):
            got += n
    finally:
        stream.close()
    return bytes(data[:got])


def leftovers(folder: Path) -> list[str]:
    """Temporary files and folders Argosy left in `folder` (not below it)."""
    return sorted(name for name in os.listdir(folder) if TEMP_MARK in name)


def tree_files(root: Path) -> dict[str, bytes]:
    found = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def make_tree(root: Path, seed: int, files: int = 12) -> dict[str, bytes]:
    """A small folder of `files` files (a few larger than a part) under root."""
    import random

    rng = random.Random(seed)
    made = {}
    for i in range(files):
        rel = f"d{i % 3}/f{i}.bin" if i % 2 else f"f{i}.txt"
        size = rng.choice([0, 1, 100, 5000, 3 * MiB // 2])
        data = rng.randbytes(size)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        made[rel] = data
    return made
