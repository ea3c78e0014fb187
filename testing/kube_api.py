"""``python -m argosy.testing.kube_api``: the Kubernetes test API server as a command.

The server lives in :mod:`argosy.testing.kube`; this module keeps the command and the
names it has always exported (``from argosy.testing.kube_api import KubeTestServer``).
"""

from __future__ import annotations

import sys

from argosy.testing.kube.api import (
    DEFAULT_TOKEN,
    Fault,
    KubeError,
    KubeTestServer,
    ManualClock,
    RequestAttributes,
    RequestRecord,
    ResourceSpec,
    main,
)

__all__ = [
    "DEFAULT_TOKEN",
    "Fault",
    "KubeError",
    "KubeTestServer",
    "ManualClock",
    "RequestAttributes",
    "RequestRecord",
    "ResourceSpec",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())
