"""The Kubernetes side of the GC benchmark: the test API server in its own process, a
namespace set up as Argo's users set one up, and workflows as Argo writes them.

Why a separate process for the API: the controller's RSS and CPU are what is measured,
and the server's store (every workflow, every watch event kept) must not count as its.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.rgw import Rgw

GROUP, VERSION = "argoproj.io", "v1alpha1"
START_TIMEOUT_S = 60
MERGE = "application/merge-patch+json"


class KubeApi:
    """`python -m argosy.testing.kube_api` on 127.0.0.1, stopped on exit."""

    def __init__(self, folder: Path) -> None:
        self.kubeconfig = folder / "kubeconfig"
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> KubeApi:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "argosy.testing.kube_api",
                "--host",
                "127.0.0.1",
                "--kubeconfig",
                str(self.kubeconfig),
                "--history",
                "100000",
            ],
            stdout=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.kubeconfig.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("the Kubernetes test API did not start")
            time.sleep(0.1)
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def setup_namespace(
    api: Any, rgw: Rgw, bucket: str, namespace: str, *, policy: str | None = None
) -> None:
    """Namespace, credentials Secret, `artifact-repositories` ConfigMap, and (if given)
    the namespace's ArtifactGCPolicy `default` with that strategy."""
    from kubernetes import client

    core: Any = client.CoreV1Api(api)  # plain dicts as bodies: the client accepts them
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "s3"}, "stringData": {"a": rgw.access_key, "s": rgw.secret_key}},
    )
    entry = {
        "s3": {
            "bucket": bucket,
            "endpoint": rgw.endpoint,
            "region": rgw.region,
            "accessKeySecret": {"name": "s3", "key": "a"},
            "secretKeySecret": {"name": "s3", "key": "s"},
        }
    }
    core.create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "artifact-repositories"}, "data": {"default": yaml.safe_dump(entry)}},
    )
    if policy is not None:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "argosy.io",
            "v1alpha1",
            namespace,
            "artifactgcpolicies",
            {
                "apiVersion": "argosy.io/v1alpha1",
                "kind": "ArtifactGCPolicy",
                "metadata": {"name": "default"},
                "spec": {"strategy": policy},
            },
        )


def now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def workflow(
    name: str, keys: list[str], phase: str, *, strategy: str | None = None, directory: bool = False
) -> dict[str, Any]:
    """A workflow whose one pod reported an output artifact per key (`directory`: as
    `archive: none` folders); `strategy` None leaves the choice to the namespace policy."""
    outputs: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        art: dict[str, Any] = {"name": f"a{i}", "s3": {"key": key}}
        if directory:
            art["archive"] = {"none": {}}
        outputs.append(art)
    node = f"{name}-1"
    status: dict[str, Any] = {
        "phase": phase,
        "nodes": {
            name: {"id": name, "name": name, "type": "Steps", "phase": phase},
            node: {
                "id": node,
                "name": f"{name}.main",
                "type": "Pod",
                "phase": phase,
                "outputs": {"artifacts": outputs},
            },
        },
        "artifactRepositoryRef": {"configMap": "artifact-repositories", "key": "default"},
    }
    if phase != "Running":
        status["finishedAt"] = now_stamp()
    spec: dict[str, Any] = {"entrypoint": "main"}
    if strategy is not None:
        spec["artifactGC"] = {"strategy": strategy}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": spec,
        "status": status,
    }


def create(custom: Any, namespace: str, body: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "workflows", body)


def complete(custom: Any, namespace: str, name: str, phase: str = "Succeeded") -> None:
    """What Argo's controller writes when a workflow ends."""
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "workflows",
        name,
        {
            "metadata": {"labels": {"workflows.argoproj.io/completed": "true"}},
            "status": {"phase": phase, "finishedAt": now_stamp()},
        },
        _content_type=MERGE,
    )


def list_workflows(custom: Any, namespace: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "workflows"
    )["items"]
    return found
