"""Which workflow wrote an object, in the object's own metadata.

The GC's orphan sweep may delete an object whose workflow no longer exists only when the
object says so itself: the uid and namespace of the workflow that wrote it and the GC
strategy it was written under. Objects without this record (anything Argosy did not
write, or wrote outside a workflow) are never swept. The writer (the sidecar) and the GC
both use these names; they live here, in the storage core, because neither may import
the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

WORKFLOW_UID = "argosy-workflow-uid"
WORKFLOW_NAMESPACE = "argosy-workflow-namespace"
WORKFLOW_NAME = "argosy-workflow-name"
GC_STRATEGY = "argosy-gc-strategy"


@dataclass(frozen=True)
class Provenance:
    uid: str
    namespace: str
    name: str
    strategy: str  # the artifact's effective strategy when written ("" if unknown)

    def metadata(self) -> dict[str, str]:
        return {
            WORKFLOW_UID: self.uid,
            WORKFLOW_NAMESPACE: self.namespace,
            WORKFLOW_NAME: self.name,
            GC_STRATEGY: self.strategy,
        }


def read_provenance(metadata: Mapping[str, str]) -> Provenance | None:
    """The record in an object's metadata, or None when it has none (or only part)."""
    uid, namespace = metadata.get(WORKFLOW_UID), metadata.get(WORKFLOW_NAMESPACE)
    if not uid or not namespace:
        return None
    return Provenance(
        uid, namespace, metadata.get(WORKFLOW_NAME, ""), metadata.get(GC_STRATEGY, "")
    )
