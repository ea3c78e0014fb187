"""The demo's last act: Argosy's artifact GC deletes what the workflows wrote.

No cluster is needed: the Kubernetes test API (`argosy.testing.kube`) runs in this
process, and the demo writes into it what Argo and an administrator would have: the
namespace's `artifact-repositories` ConfigMap and credential Secret, its
`ArtifactGCPolicy` named `default`, and each finished Workflow with `status.nodes`
carrying the output artifacts' locations and `status.artifactRepositoryRef` pointing at
the ConfigMap. Then `argosy gc --once` runs against it as its own process, exactly as
an operator would run it, and the bucket is listed before and after.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argosy.argo.names import REPOSITORIES_CONFIGMAP
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.protocol import Driver, ObjectInfo
from argosy.artifacts.tree import list_all
from argosy.demo.engine import Run
from argosy.demo.storage import REPO_KEY, DemoStorage

NAMESPACE = "argosy-demo"
POLICY_SPEC: Mapping[str, Any] = {"strategy": "OnWorkflowCompletion"}
ARGO = "argoproj.io/v1alpha1"


@dataclass
class GcOutcome:
    command: list[str]
    code: int
    output: str
    before: list[ObjectInfo] = field(default_factory=list)
    after: list[ObjectInfo] = field(default_factory=list)
    policy: Mapping[str, Any] = field(default_factory=dict)
    records: dict[str, str] = field(default_factory=dict)  # workflow -> GC annotation
    api: str = ""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def workflow_object(run: Run, *, started: datetime, finished: datetime) -> dict[str, Any]:
    """The Workflow as Argo leaves it when it has finished."""
    wf = run.workflow
    return {
        "apiVersion": ARGO,
        "kind": "Workflow",
        "metadata": {
            "name": wf.name,
            "namespace": NAMESPACE,
            "labels": {
                "workflows.argoproj.io/completed": "true",
                "workflows.argoproj.io/phase": "Succeeded" if run.succeeded else "Failed",
            },
        },
        "spec": dict(wf.raw.get("spec") or {}),
        "status": {
            "phase": "Succeeded" if run.succeeded else "Failed",
            "startedAt": _stamp(started),
            "finishedAt": _stamp(finished),
            "nodes": run.nodes,
            "artifactRepositoryRef": {
                "configMap": REPOSITORIES_CONFIGMAP,
                "key": REPO_KEY,
                "namespace": NAMESPACE,
            },
        },
    }


def list_workflow_objects(driver: Driver, runs: Sequence[Run]) -> list[ObjectInfo]:
    found: list[ObjectInfo] = []
    for run in runs:
        found += list_all(driver, f"{run.workflow.name}/")
    return sorted(found, key=lambda o: o.key)


def missing_modules() -> list[str]:
    """What the GC part needs beyond the demo extra: the Kubernetes client (the GC's own
    dependency) and aiohttp (the test API server's)."""
    return [name for name in ("kubernetes", "aiohttp") if importlib.util.find_spec(name) is None]


def collect(
    runs: Sequence[Run],
    storage: DemoStorage,
    driver: Driver,
    *,
    folder: Path,
    python: str,
    env: Mapping[str, str],
    started: datetime,
) -> GcOutcome:
    try:
        # Imported here: aiohttp is only there when the server extra is installed.
        from argosy.testing.kube.api import KubeTestServer
    except ImportError as error:
        raise InvalidSpec(
            f"the GC part of the demo needs {error.name}: pip install 'argosy[demo,k8s,server]'"
        ) from None
    with KubeTestServer(namespaces=(NAMESPACE, "argosy-system")) as server:
        kubeconfig = server.write_kubeconfig(folder / "kubeconfig", namespace=NAMESPACE)
        for obj in (storage.secret(), storage.configmap()):
            server.create_object({**obj, "metadata": {**obj["metadata"], "namespace": NAMESPACE}})
        server.create_object(
            {
                "apiVersion": "argosy.io/v1alpha1",
                "kind": "ArtifactGCPolicy",
                "metadata": {"name": "default", "namespace": NAMESPACE},
                "spec": dict(POLICY_SPEC),
            },
            plural="artifactgcpolicies",
        )
        finished = datetime.now(UTC)
        for run in runs:
            server.create_object(
                workflow_object(run, started=started, finished=finished), plural="workflows"
            )
        before = list_workflow_objects(driver, runs)
        command = [
            "argosy",
            "gc",
            "--once",
            "--kubeconfig",
            str(kubeconfig),
            "--namespace",
            NAMESPACE,
        ]
        done = subprocess.run(
            [python, "-m", *command],
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        policy = (
            server.get_object("argosy.io/v1alpha1", "artifactgcpolicies", "default", NAMESPACE)
            or {}
        )
        records = {}
        for run in runs:
            obj = server.get_object(ARGO, "workflows", run.workflow.name, NAMESPACE) or {}
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            records[run.workflow.name] = str(annotations.get("argosy.io/artifact-gc", ""))
        return GcOutcome(
            command=command,
            code=done.returncode,
            output=(done.stdout + done.stderr).strip(),
            before=before,
            after=list_workflow_objects(driver, runs),
            policy=policy,
            records=records,
            api=server.url,
        )
