"""Workflow pods for bench/sidecar.py: the files a pod's sidecar reads and the command
lines of its containers.

A pod here is a folder: `var/` (the var dir; main's exit code already written, so
`argosy wait` starts uploading at once, as it does the moment main exits), `root/` (the
main container's filesystem, `--root`), `tmp/` (TMPDIR, so a temporary file anywhere is
counted by the disk sampler) and `template.yaml`. The repository is an
artifact-repositories ConfigMap whose credentials are secret references, read from
files laid out as Argo mounts them (`<secrets>/<name>/<key>`); the sidecar sees no AWS_*
variable. As in tests/sidecar/pods.py, every container is its own process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import rgw

ARGOSY = str(Path(sys.executable).parent / "argosy")
WORKFLOW = "bench"
SECRET = "s3-creds"


@dataclass(frozen=True)
class Repository:
    configmap: Path
    secrets_dir: Path
    bucket: str
    endpoint: str


def write_repository(folder: Path, *, gateway: rgw.Rgw, bucket: str, endpoint: str) -> Repository:
    """An artifact-repositories ConfigMap (default entry: s3 at `endpoint`) and its secret."""
    secrets = folder / "secrets"
    (secrets / SECRET).mkdir(parents=True, exist_ok=True)
    (secrets / SECRET / "accessKey").write_text(gateway.access_key)
    (secrets / SECRET / "secretKey").write_text(gateway.secret_key)
    entry = {
        "keyFormat": "{{workflow.name}}/{{pod.name}}",
        "s3": {
            "endpoint": endpoint,
            "bucket": bucket,
            "insecure": True,
            "region": gateway.region,
            "accessKeySecret": {"name": SECRET, "key": "accessKey"},
            "secretKeySecret": {"name": SECRET, "key": "secretKey"},
        },
    }
    configmap = folder / f"repositories-{endpoint.rsplit(':', 1)[-1]}.yaml"
    configmap.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "artifact-repositories",
                    "annotations": {"workflows.argoproj.io/default-artifact-repository": "default"},
                },
                "data": {"default": yaml.safe_dump(entry)},
            }
        )
    )
    return Repository(configmap, secrets, bucket, endpoint)


@dataclass(frozen=True)
class Pod:
    workdir: Path
    name: str  # pod.name: outputs go under bench/<name>/
    root: Path  # --root: the main container's filesystem

    @property
    def var(self) -> Path:
        return self.workdir / "var"

    @property
    def tmp(self) -> Path:
        return self.workdir / "tmp"

    @property
    def watched(self) -> list[Path]:
        """Where the disk sampler looks: everything the pod may write."""
        return [self.var, self.root, self.tmp]

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def new_pod(pods: Path, name: str, *, root: Path | None = None) -> Pod:
    """A fresh pod folder; `root`: an existing main filesystem (the data to upload),
    default an empty `root/` in the pod folder (where inputs land)."""
    pod = Pod(pods / name, name, root or pods / name / "root")
    pod.remove()
    for folder in (pod.var / "ctr" / "main", pod.tmp, pod.root):
        folder.mkdir(parents=True, exist_ok=True)
    return pod


def env(repo: Repository, pod: Pod) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "ARGOSY_", "OSS_", "ARGO_", "KUBERNETES_"))
    }
    return {**keep, "ARGOSY_SECRETS_DIR": str(repo.secrets_dir), "TMPDIR": str(pod.tmp)}


def _args(pod: Pod, repo: Repository, template: dict[str, Any]) -> list[str]:
    path = pod.workdir / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    return [
        "--template",
        str(path),
        "--var-dir",
        str(pod.var),
        "--root",
        str(pod.root),
        "--repository",
        str(repo.configmap),
        "--annotations",
        str(pod.workdir / "annotations"),
        "--set",
        f"workflow.name={WORKFLOW}",
        "--set",
        f"pod.name={pod.name}",
        "--no-report",
        "-q",
    ]


def wait_command(pod: Pod, repo: Repository, outputs: list[dict[str, Any]]) -> list[str]:
    """`argosy wait` for a main that has already exited 0."""
    (pod.var / "ctr" / "main" / "exitcode").write_text("0")
    return [
        ARGOSY,
        "wait",
        *_args(pod, repo, {"name": pod.name, "outputs": {"artifacts": outputs}}),
    ]


def init_args(pod: Pod, repo: Repository, inputs: list[dict[str, Any]]) -> list[str]:
    return _args(pod, repo, {"name": pod.name, "inputs": {"artifacts": inputs}})


def init_command(pod: Pod, repo: Repository, inputs: list[dict[str, Any]]) -> list[str]:
    return [ARGOSY, "init", *init_args(pod, repo, inputs)]


def results(pod: Pod, document: str) -> list[dict[str, Any]]:
    """The artifacts of outputs.json or inputs.json (empty if the file is missing)."""
    try:
        found = json.loads((pod.var / document).read_text())
    except (OSError, ValueError):
        return []
    return list(found.get("artifacts", []))


def uploaded_key(pod: Pod, name: str) -> str | None:
    """The S3 key `argosy wait` reported for output `name`, if it was uploaded."""
    for artifact in results(pod, "outputs.json"):
        if artifact.get("name") == name and artifact.get("status") == "uploaded":
            key = artifact.get("location", {}).get("s3", {}).get("key")
            return str(key) if key else None
    return None


def not_downloaded(pod: Pod) -> list[str]:
    """Inputs inputs.json does not report as downloaded (all of them if it is missing)."""
    found = results(pod, "inputs.json")
    if not found:
        return ["(no inputs.json)"]
    return [
        f"{a.get('name')}: {a.get('status')} {a.get('reason', '')}".strip()
        for a in found
        if a.get("status") != "downloaded"
    ]
