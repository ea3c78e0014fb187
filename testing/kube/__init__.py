"""The Kubernetes test API: an in-process API server for the real ``kubernetes`` client.

``api`` holds :class:`KubeTestServer` and its command (``python -m argosy.testing.kube_api``);
``http`` the aiohttp routes, ``store`` the storage rules (resourceVersions, watches,
finalizers), ``semantics`` selectors and patches, ``model`` resources, errors and clocks,
``discovery`` the discovery documents.
"""

from argosy.testing.kube.api import KubeTestServer
from argosy.testing.kube.model import ManualClock

__all__ = ["KubeTestServer", "ManualClock"]
