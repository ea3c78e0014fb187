"""The arguments of `argosy init`, `wait` and `emissary`, kept apart from their code: the
command line is built on every start, and importing the sidecar (`argosy.sidecar.steps`) just to
describe these commands cost every other command 25-40 ms."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser, *, with_template: bool = True) -> None:
    p.add_argument(
        "--var-dir",
        default="/var/run/argosy",
        type=Path,
        help="where the exit code, log and results live (default /var/run/argosy)",
    )
    if not with_template:
        return
    p.add_argument(
        "--repository",
        metavar="FILE",
        help="an Argo repository entry, or an artifact-repositories ConfigMap",
    )
    p.add_argument(
        "--repository-key",
        metavar="KEY",
        help="which entry of the ConfigMap (default: its annotation)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="report failures only")
    p.add_argument("-v", "--verbose", action="store_true", help="log retries and requests")
    p.add_argument(
        "--template",
        metavar="FILE",
        help="the pod's template, JSON or YAML (default: $ARGO_TEMPLATE)",
    )
    p.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="where the main container's filesystem is (artifact paths are "
        "taken under it, like Argo's /mainctrfs)",
    )
    p.add_argument(
        "--repository-configmap",
        metavar="NAME",
        help="read the repository from this ConfigMap of the pod's namespace",
    )
    p.add_argument(
        "--secrets-dir",
        type=Path,
        metavar="DIR",
        help="secrets as <DIR>/<name>/<key> (default $ARGOSY_SECRETS_DIR or /argo/secret)",
    )
    p.add_argument(
        "--annotations",
        type=Path,
        metavar="FILE",
        default=Path("/argo/podmetadata/annotations"),
        help="the pod's annotations from the downward API",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a workflow variable for keyFormat (workflow.name=..., pod.name=...)",
    )
    p.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="report to (and read from) this Kubernetes API instead of the pod's",
    )
    p.add_argument(
        "--no-report",
        action="store_true",
        help="write results only to the var dir, not to Kubernetes",
    )
