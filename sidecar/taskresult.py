"""Telling Kubernetes where the outputs went.

Under Argo (its pod environment present: ARGO_NODE_ID, ARGO_WORKFLOW_NAME) the outputs
go into a WorkflowTaskResult named after the node, as Argo's own executor writes it, so
the workflow's status and any GC controller see them. Elsewhere the pod is annotated
with `argosy.io/outputs`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argosy.argo.resources import PODS, WORKFLOW_TASK_RESULTS
from argosy.artifacts.errors import Conflict, InvalidSpec

if TYPE_CHECKING:
    from argosy.argo.kube import Kube

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


def report_outputs(
    kube: Kube, pod: PodIdentity, artifacts: Sequence[Mapping[str, Any]], *, exit_code: int
) -> str:
    """Record the outputs; returns where (`WorkflowTaskResult/NAME` or `pod/NAME`)."""
    if pod.under_argo:
        return _task_result(kube, pod, artifacts, exit_code)
    if not pod.pod_name:
        raise InvalidSpec("cannot report outputs: the pod's name is unknown")
    body = {
        "metadata": {
            "annotations": {
                OUTPUTS_ANNOTATION: json.dumps(
                    {"exitCode": exit_code, "artifacts": list(artifacts)}, separators=(",", ":")
                )
            }
        }
    }
    kube.patch(PODS, pod.namespace, pod.pod_name, body)
    return f"pod/{pod.pod_name}"


def _task_result(
    kube: Kube, pod: PodIdentity, artifacts: Sequence[Mapping[str, Any]], exit_code: int
) -> str:
    outputs = {"artifacts": list(artifacts), "exitCode": str(exit_code)}
    metadata: dict[str, Any] = {
        "name": pod.node_id,
        "labels": {WORKFLOW_LABEL: pod.workflow_name, COMPLETED_LABEL: "true"},
    }
    if pod.pod_name and pod.pod_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": pod.pod_name, "uid": pod.pod_uid}
        ]
    body = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTaskResult",
        "metadata": metadata,
        "outputs": outputs,
    }
    try:
        kube.create(WORKFLOW_TASK_RESULTS, pod.namespace, body)
    except Conflict:  # Argo may have made it already (progress reports): merge ours in
        patch = {"metadata": {"labels": metadata["labels"]}, "outputs": outputs}
        kube.patch(WORKFLOW_TASK_RESULTS, pod.namespace, pod.node_id, patch)
    return f"WorkflowTaskResult/{pod.node_id}"
