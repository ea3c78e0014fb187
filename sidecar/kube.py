"""Telling Kubernetes where the outputs went (the only module of the sidecar that imports
the `kubernetes` client).

Under Argo (its pod environment present: ARGO_NODE_ID, ARGO_WORKFLOW_NAME) the outputs
go into a WorkflowTaskResult named after the node, as Argo's own executor writes it, so
the workflow's status and any GC controller see them. Elsewhere the pod is annotated
with `argosy.io/outputs`. Also reads an `artifact-repositories` ConfigMap and Secrets
of the pod's namespace for `init`/`wait` when no file is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from argosy.artifacts.errors import AccessDenied, InvalidSpec, NotFound, TransientError

OUTPUTS_ANNOTATION = "argosy.io/outputs"
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
COMPLETED_LABEL = "workflows.argoproj.io/report-outputs-completed"


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    pod_name: str = ""
    pod_uid: str = ""
    node_id: str = ""
    workflow_name: str = ""

    @property
    def under_argo(self) -> bool:
        return bool(self.node_id and self.workflow_name)


def _api(kubeconfig: str | None) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig,  # type: ignore[no-untyped-call]
                                client_configuration=configuration)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        raise InvalidSpec("no Kubernetes API: not in a pod and no --kubeconfig")
    return client.ApiClient(configuration)


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return fn(*args, _request_timeout=30, **kwargs)
    except ApiException as error:
        message = f"{what}: {error.status} {error.reason}"
        if error.status == 404:
            raise NotFound(message) from None
        if error.status in (401, 403):
            raise AccessDenied(message) from None
        if error.status == 409:
            raise _Conflict(message) from None
        raise TransientError(message) from None
    except OSError as error:
        raise TransientError(f"{what}: cannot reach the Kubernetes API: {error}") from None


class _Conflict(TransientError):
    pass


def report_outputs(pod: PodIdentity, artifacts: Sequence[Mapping[str, Any]], *,
                   exit_code: int, kubeconfig: str | None = None) -> str:
    """Record the outputs; returns where (`WorkflowTaskResult/NAME` or `pod/NAME`)."""
    from kubernetes import client

    api = _api(kubeconfig)
    try:
        if pod.under_argo:
            return _task_result(client.CustomObjectsApi(api), pod, artifacts, exit_code)
        if not pod.pod_name:
            raise InvalidSpec("cannot report outputs: the pod's name is unknown")
        body = {"metadata": {"annotations": {OUTPUTS_ANNOTATION: json.dumps(
            {"exitCode": exit_code, "artifacts": list(artifacts)}, separators=(",", ":"))}}}
        _call(f"annotate pod {pod.namespace}/{pod.pod_name}",
              client.CoreV1Api(api).patch_namespaced_pod, pod.pod_name, pod.namespace, body)
        return f"pod/{pod.pod_name}"
    finally:
        api.close()


def _task_result(custom: Any, pod: PodIdentity, artifacts: Sequence[Mapping[str, Any]],
                 exit_code: int) -> str:
    outputs = {"artifacts": list(artifacts), "exitCode": str(exit_code)}
    metadata: dict[str, Any] = {
        "name": pod.node_id,
        "labels": {WORKFLOW_LABEL: pod.workflow_name, COMPLETED_LABEL: "true"}}
    if pod.pod_name and pod.pod_uid:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod",
                                        "name": pod.pod_name, "uid": pod.pod_uid}]
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTaskResult",
            "metadata": metadata, "outputs": outputs}
    where = f"WorkflowTaskResult {pod.namespace}/{pod.node_id}"
    args = ("argoproj.io", "v1alpha1", pod.namespace, "workflowtaskresults")
    try:
        _call(f"create {where}", custom.create_namespaced_custom_object, *args, body)
    except _Conflict:  # Argo may have made it already (progress reports): merge ours in
        patch = {"metadata": {"labels": metadata["labels"]}, "outputs": outputs}
        _call(f"patch {where}", custom.patch_namespaced_custom_object, *args, pod.node_id,
              patch)
    return f"WorkflowTaskResult/{pod.node_id}"


def read_configmap(namespace: str, name: str, *, kubeconfig: str | None = None
                   ) -> dict[str, Any]:
    from kubernetes import client

    api = _api(kubeconfig)
    try:
        found = _call(f"read ConfigMap {namespace}/{name}",
                      client.CoreV1Api(api).read_namespaced_config_map, name, namespace)
        return {"kind": "ConfigMap",
                "metadata": {"annotations": dict(found.metadata.annotations or {})},
                "data": dict(found.data or {})}
    finally:
        api.close()

