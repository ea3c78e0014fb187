"""`argosy init`, `argosy wait` and `argosy emissary`: the sidecar's commands in a
workflow pod.

Everything a pod tells the sidecar is read here, once: the template (`--template` or
Argo's `ARGO_TEMPLATE`), Argo's pod variables (ARGO_WORKFLOW_NAME, ARGO_POD_NAME, ...,
or `--set workflow.name=...`), the repository (`--repository FILE`, or the namespace's
ConfigMap through the API with `--repository-configmap`), secrets as Argo mounts them
(`--secrets-dir`, default /argo/secret), the pod's annotations (downward API).

Memory: each artifact moves with `concurrency` parts in flight; a streamed archive holds
a pool of `min(concurrency, 4) + 1` part buffers of 8 MiB. The sidecar splits 8 parts in
flight across the artifacts it moves at once (at least 2 each), so its buffers stay
within 5 x 8 MiB = 40 MiB for one archive and about 64 MiB for four, whatever their
sizes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from argosy.argo import repository as repo
from argosy.argo.template import Template, load_template
from argosy.artifacts.errors import ArtifactError, InvalidSpec
from argosy.artifacts.provenance import Provenance
from argosy.artifacts.settings import MiB, TransferSettings
from argosy.config import default_local_root, direct_io_asked
from argosy.sidecar import report
from argosy.sidecar.options import Layers, read_annotations
from argosy.sidecar.resolve import (
    Context,
    DriverCache,
    repository_archive_logs,
)
from argosy.sidecar.vardir import ensure_container_dir

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
PARTS_IN_FLIGHT = 8
_ENV_VARIABLES = {"ARGO_WORKFLOW_NAME": "workflow.name", "ARGO_WORKFLOW_UID": "workflow.uid",
                  "ARGO_POD_NAME": "pod.name", "ARGO_NODE_ID": "node.id",
                  "ARGO_WORKFLOW_NAMESPACE": "workflow.namespace"}


def _template(args: argparse.Namespace, env: Mapping[str, str]) -> Template:
    if args.template:
        try:
            text = Path(args.template).read_text()
        except OSError as error:
            raise InvalidSpec(f"cannot read template {args.template}: "
                              f"{error.strerror}") from None
        return load_template(text, source=args.template)
    if env.get("ARGO_TEMPLATE"):
        return load_template(env["ARGO_TEMPLATE"], source="ARGO_TEMPLATE")
    raise InvalidSpec("no template: give --template FILE or set ARGO_TEMPLATE")


def _namespace(env: Mapping[str, str]) -> str:
    for name in ("ARGO_WORKFLOW_NAMESPACE", "POD_NAMESPACE", "ARGO_NAMESPACE"):
        if env.get(name):
            return env[name]
    try:
        return SA_NAMESPACE.read_text().strip()
    except OSError:
        return ""


def _kube(args: argparse.Namespace, env: Mapping[str, str]) -> Any:
    """The pod's Kubernetes API (its service account), or the one `--kubeconfig` names."""
    from argosy.argo.kube import Kube

    if not args.kubeconfig and not env.get("KUBERNETES_SERVICE_HOST"):
        raise InvalidSpec("no Kubernetes API: not in a pod and no --kubeconfig")
    return Kube.connect(args.kubeconfig)


def variables(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str]:
    found = {var: env[name] for name, var in _ENV_VARIABLES.items() if env.get(name)}
    namespace = _namespace(env)
    if namespace:
        found.setdefault("workflow.namespace", namespace)
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidSpec(f"--set {item!r}: expected NAME=VALUE")
        found[name.strip()] = value
    return found


def _created(found: Mapping[str, str]) -> datetime | None:
    text = found.get("workflow.creationTimestamp")
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSpec(f"workflow.creationTimestamp {text!r} is not an ISO time") from None


def context(args: argparse.Namespace, env: Mapping[str, str]
            ) -> tuple[Context, Template, Layers]:
    template = _template(args, env)
    for warning in template.warnings:
        print(f"argosy: warning: {warning}", file=sys.stderr)
    entry: dict[str, Any] | None = None
    if args.repository:
        entry, _ = repo.read_entry(args.repository, key=args.repository_key)
    elif args.repository_configmap:
        from argosy.argo.resources import CONFIGMAPS

        kube = _kube(args, env)
        try:
            configmap = kube.get(CONFIGMAPS, _namespace(env), args.repository_configmap)
        finally:
            kube.close()
        _, entry = repo.choose_entry(configmap, args.repository_key,
                                     where=f"ConfigMap {args.repository_configmap}")
    found = variables(args, env)
    secrets = args.secrets_dir or Path(env.get("ARGOSY_SECRETS_DIR", "/argo/secret"))
    ctx = Context(variables=found, secrets_dir=secrets, local_root=default_local_root(env),
                  created=_created(found), repository=entry)
    layers = Layers.build(read_annotations(args.annotations), entry)
    return ctx, template, layers


def transfer_settings(artifacts: int, env: Mapping[str, str]) -> TransferSettings:
    at_once = max(1, min(4, artifacts))
    return TransferSettings(concurrency=max(2, PARTS_IN_FLIGHT // at_once),
                            stream_part_size=8 * MiB,
                            direct_io=direct_io_asked(env))


def init(args: argparse.Namespace) -> int:
    from argosy.sidecar.inputs import fetch_inputs

    ctx, template, layers = context(args, os.environ)
    ensure_container_dir(args.var_dir)  # an unwritable var dir fails before any download
    results = fetch_inputs(template, ctx=ctx, layers=layers, root=args.root,
                           settings=transfer_settings(len(template.inputs), os.environ),
                           open_driver=DriverCache())
    report.write_json(args.var_dir / "inputs.json",
                      report.inputs_document(results, template=template.name))
    failed = [r for r in results if r.status == "failed"]
    quiet = args.quiet
    for r in results:
        if r.status == "failed":
            print(f"argosy init: input {r.name} failed: {r.reason}", file=sys.stderr)
        elif not quiet:
            print(f"argosy init: {r.name}: {r.status} {r.url} -> {r.path} ({r.size} B)",
                  file=sys.stderr)
    return 1 if failed else 0


def _provenance(ctx: Context) -> Provenance | None:
    uid, namespace = ctx.variables.get("workflow.uid"), ctx.variables.get("workflow.namespace")
    if not uid or not namespace:
        return None
    return Provenance(uid, namespace, ctx.variables.get("workflow.name", ""), "")


def wait(args: argparse.Namespace) -> int:
    from argosy.sidecar.exitwait import wait_for_exit_code
    from argosy.sidecar.outputs import upload_outputs

    env = os.environ
    ctx, template, layers = context(args, env)
    exit_code = wait_for_exit_code(args.var_dir, timeout=args.timeout)
    # From here SIGTERM means main is over and the pod is winding down (a native sidecar
    # is stopped once main exits): finish the uploads within the grace period.
    signal.signal(signal.SIGTERM, _finishing)
    log = args.var_dir / "ctr" / "main" / "combined"
    results = upload_outputs(
        template, ctx=ctx, layers=layers, root=args.root,
        settings=transfer_settings(len(template.outputs), os.environ), main_failed=exit_code != 0,
        open_driver=DriverCache(),
        provenance=_provenance(ctx), log=log if repository_archive_logs(ctx, template) or any(
            a.archive_logs for a in template.outputs) else None)
    reported = "none"
    report_failed = False
    if not args.no_report and (args.kubeconfig or env.get("KUBERNETES_SERVICE_HOST")):
        from argosy.sidecar.taskresult import PodIdentity, report_outputs

        pod = PodIdentity(namespace=ctx.variables.get("workflow.namespace", ""),
                               pod_name=ctx.variables.get("pod.name", ""),
                               pod_uid=env.get("ARGO_POD_UID", ""),
                               node_id=ctx.variables.get("node.id", ""),
                               workflow_name=ctx.variables.get("workflow.name", ""))
        try:
            kube = _kube(args, env)
            try:
                reported = report_outputs(kube, pod, report.argo_artifacts(template, results),
                                          exit_code=exit_code)
            finally:
                kube.close()
        except ArtifactError as error:
            reported = f"failed: {error}"
            # Argo's controller learns of the outputs only from the report: a failure
            # there fails the pod. Elsewhere the annotation is a courtesy.
            print(f"argosy wait: {'error' if pod.under_argo else 'warning'}: cannot report "
                  f"outputs: {error}", file=sys.stderr)
            report_failed = pod.under_argo
    report.write_json(args.var_dir / "outputs.json", report.outputs_document(
        results, exit_code=exit_code, template=template.name, reported_to=reported))
    failed = [r for r in results if r.status == "failed"]
    for r in results:
        if r.status == "failed":
            print(f"argosy wait: output {r.name} failed: {r.reason}", file=sys.stderr)
        elif not args.quiet:
            print(f"argosy wait: {r.name}: {r.status} {r.url or r.reason}", file=sys.stderr)
    return 1 if failed or report_failed else 0


def _finishing(signum: int, frame: object) -> None:
    print("argosy wait: SIGTERM after main exited: finishing the uploads", file=sys.stderr)


def emissary(args: argparse.Namespace) -> int:
    from argosy.sidecar.emissary import run_emissary

    command = list(args.argv)
    if command and command[0] == "--":
        command = command[1:]
    return run_emissary(command, var_dir=args.var_dir)

