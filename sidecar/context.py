"""What a pod tells the sidecar, read once: its template, Argo's pod variables, the
repository, where its Secrets are, its annotations, and its Kubernetes API.

The template is `--template` or Argo's `ARGO_TEMPLATE`; the variables come from Argo's pod
environment (ARGO_WORKFLOW_NAME, ARGO_POD_NAME, ...) and `--set workflow.name=...`; the
repository is `--repository FILE` or the namespace's ConfigMap read through the API
(`--repository-configmap NAME`); Secrets are files in Argo's layout (`--secrets-dir`,
default $ARGOSY_SECRETS_DIR or /argo/secret); annotations come from the downward API.
The command line builds `PodOptions`; the environment is passed in, never read here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argosy.argo import repository as repo
from argosy.argo.resources import SA_NAMESPACE
from argosy.argo.secrets import DEFAULT_SECRETS_DIR
from argosy.argo.template import Template, load_template
from argosy.artifacts.connect import default_local_root
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.provenance import Provenance
from argosy.artifacts.settings import MiB, TransferSettings, direct_io_asked
from argosy.sidecar.options import Layers, read_annotations
from argosy.sidecar.resolve import Context

if TYPE_CHECKING:
    from argosy.argo.kube import Kube

PARTS_IN_FLIGHT = 8
_ENV_VARIABLES = {
    "ARGO_WORKFLOW_NAME": "workflow.name",
    "ARGO_WORKFLOW_UID": "workflow.uid",
    "ARGO_POD_NAME": "pod.name",
    "ARGO_NODE_ID": "node.id",
    "ARGO_WORKFLOW_NAMESPACE": "workflow.namespace",
}


@dataclass(frozen=True)
class PodOptions:
    """What `argosy init` and `argosy wait` were asked to do (their flags)."""

    var_dir: Path
    template: str | None = None
    repository: str | None = None
    repository_key: str | None = None
    repository_configmap: str | None = None
    secrets_dir: Path | None = None
    annotations: Path | None = None
    root: Path | None = None
    sets: Sequence[str] = field(default_factory=tuple)
    kubeconfig: str | None = None
    no_report: bool = False
    timeout: float | None = None


def _template(options: PodOptions, env: Mapping[str, str]) -> Template:
    if options.template:
        try:
            text = Path(options.template).read_text()
        except OSError as error:
            raise InvalidSpec(
                f"cannot read template {options.template}: {error.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise InvalidSpec(f"template {options.template} is not text") from None
        return load_template(text, source=options.template)
    if env.get("ARGO_TEMPLATE"):
        return load_template(env["ARGO_TEMPLATE"], source="ARGO_TEMPLATE")
    raise InvalidSpec("no template: give --template FILE or set ARGO_TEMPLATE")


def namespace(env: Mapping[str, str]) -> str:
    for name in ("ARGO_WORKFLOW_NAMESPACE", "POD_NAMESPACE", "ARGO_NAMESPACE"):
        if env.get(name):
            return env[name]
    try:
        return SA_NAMESPACE.read_text().strip()
    except OSError:
        return ""


def kube(options: PodOptions, env: Mapping[str, str]) -> Kube:
    """The pod's Kubernetes API (its service account), or the one `--kubeconfig` names."""
    from argosy.argo.kube import Kube

    if not options.kubeconfig and not env.get("KUBERNETES_SERVICE_HOST"):
        raise InvalidSpec("no Kubernetes API: not in a pod and no --kubeconfig")
    return Kube.connect(options.kubeconfig)


def variables(options: PodOptions, env: Mapping[str, str]) -> dict[str, str]:
    found = {var: env[name] for name, var in _ENV_VARIABLES.items() if env.get(name)}
    ns = namespace(env)
    if ns:
        found.setdefault("workflow.namespace", ns)
    for item in options.sets:
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


def _repository_entry(options: PodOptions, env: Mapping[str, str]) -> dict[str, Any] | None:
    if options.repository:
        entry, _ = repo.read_entry(options.repository, key=options.repository_key)
        return entry
    if options.repository_configmap:
        from argosy.argo.resources import CONFIGMAPS

        api = kube(options, env)
        try:
            configmap = api.get(CONFIGMAPS, namespace(env), options.repository_configmap)
        finally:
            api.close()
        return repo.choose_entry(
            configmap, options.repository_key, where=f"ConfigMap {options.repository_configmap}"
        )[1]
    return None


@dataclass(frozen=True)
class Pod:
    """A pod's context, read once: what resolution needs, the template, the settings
    layers (annotation, repository, artifact), and the warnings the template gave."""

    ctx: Context
    template: Template
    layers: Layers


def load(options: PodOptions, env: Mapping[str, str]) -> Pod:
    template = _template(options, env)
    entry = _repository_entry(options, env)
    found = variables(options, env)
    secrets = options.secrets_dir or Path(env.get("ARGOSY_SECRETS_DIR", DEFAULT_SECRETS_DIR))
    ctx = Context(
        variables=found,
        secrets_dir=secrets,
        local_root=default_local_root(env),
        created=_created(found),
        repository=entry,
    )
    annotations = read_annotations(options.annotations) if options.annotations else {}
    return Pod(ctx, template, Layers.build(annotations, entry))


def transfer_settings(artifacts: int, env: Mapping[str, str]) -> TransferSettings:
    """Each artifact moves with `concurrency` parts in flight; a streamed archive holds a
    pool of `min(concurrency, 4) + 1` part buffers of 8 MiB. The sidecar splits 8 parts in
    flight across the artifacts it moves at once (at least 2 each), so its buffers stay
    within 5 x 8 MiB = 40 MiB for one archive and about 64 MiB for four, whatever their
    sizes."""
    at_once = max(1, min(4, artifacts))
    return TransferSettings(
        concurrency=max(2, PARTS_IN_FLIGHT // at_once),
        stream_part_size=8 * MiB,
        direct_io=direct_io_asked(env),
    )


def provenance(ctx: Context) -> Provenance | None:
    uid, ns = ctx.variables.get("workflow.uid"), ctx.variables.get("workflow.namespace")
    if not uid or not ns:
        return None
    return Provenance(uid, ns, ctx.variables.get("workflow.name", ""), "")
