"""`argosy repo check [FILE | --namespace NS]`: probe every entry of an Argo
`artifact-repositories` ConfigMap the way workflows will use it, and say which work.

For cluster admins: an entry is only known good once something has written, read,
listed and deleted with the credentials workflows get, so each entry is parsed as a pod
parses it (secrets from `$ARGOSY_SECRETS_DIR/<name>/<key>` for a FILE, from the API with
--namespace), opened with `artifacts.connect` and probed (`repo_probe.py`). The report is
a table, one row per entry, then one line per failure (`ENTRY: PROBE: reason`), or JSON
lines with --json. Exit 0 when every probe of every entry passed, 1 when any failed, 2
when the ConfigMap itself is unusable (not YAML, no data, not there).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from argosy.argo import yamlpos
from argosy.argo.names import DEFAULT_REPOSITORY_ANNOTATION as DEFAULT_ANNOTATION
from argosy.argo.names import REPOSITORY_KINDS
from argosy.argo.repository import parse_entry, repository_driver, static_prefix
from argosy.argo.secrets import DEFAULT_SECRETS_DIR, ApiSecrets, FileSecrets, SecretSource
from argosy.argo.secrets import read as read_secret
from argosy.artifacts.connect import default_local_root
from argosy.artifacts.errors import ArtifactError, InvalidSpec, NotFound
from argosy.commands.config import Config
from argosy.commands.repo_probe import FAIL, PROBES, SKIPPED, Outcome, ProbeSettings, probe

_KINDS = REPOSITORY_KINDS


@dataclass(frozen=True)
class Source:
    """The entries to check: a ConfigMap's data (YAML text per key), or one entry."""

    name: str  # the file, or NAMESPACE/CONFIGMAP: what messages name
    entries: list[tuple[str, Any]]
    default: str | None = None
    problems: list[str] = field(default_factory=list)  # about the ConfigMap as a whole


@dataclass(frozen=True)
class Row:
    entry: str
    default: bool
    kind: str
    bucket: str
    prefix: str | None  # None: not known, the entry did not parse
    outcomes: Mapping[str, Outcome]
    failures: list[tuple[str, str]]  # (probe or stage, one-line reason)


def _from_document(doc: Any, name: str) -> Source:
    if not isinstance(doc, Mapping):
        raise InvalidSpec(
            f"{name}: neither an artifact-repositories ConfigMap nor a repository entry"
        )
    if doc.get("kind") != "ConfigMap":
        return Source(name, [(name, doc)])
    data = doc.get("data")
    if not isinstance(data, Mapping) or not data:
        raise InvalidSpec(f"{name}: the ConfigMap has no data (no repository entries)")
    annotations = (doc.get("metadata") or {}).get("annotations") or {}
    default = annotations.get(DEFAULT_ANNOTATION)
    problems = []
    if default is not None and default not in data:
        problems.append(f"{DEFAULT_ANNOTATION} names {default!r}, which is not in data")
    return Source(name, [(str(k), v) for k, v in data.items()], default, problems)


def read_file(path: str) -> Source:
    return _from_document(yamlpos.load_file(path, path), path)


def _secret_refs(raw: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(field, reference) of every `...Secret: {name, key}` in an entry."""
    if not isinstance(raw, Mapping):
        return
    for name, value in raw.items():
        where = f"{path}.{name}" if path else str(name)
        if (
            str(name).endswith("Secret")
            and isinstance(value, Mapping)
            and "name" in value
            and "key" in value
        ):
            yield where, value
        else:
            yield from _secret_refs(value, where)


def _namespace_source(cfg: Config, stack: contextlib.ExitStack) -> tuple[Source, SecretSource]:
    try:
        from argosy.argo.kube import Kube
        from argosy.argo.resources import CONFIGMAPS
    except ImportError:
        raise InvalidSpec(
            "--namespace needs the kubernetes client: pip install 'argosy[k8s]'"
        ) from None
    args = cfg.args
    kube = Kube.connect(
        args.kubeconfig,
        context=args.context,
        in_cluster=bool(cfg.env.get("KUBERNETES_SERVICE_HOST")) and not args.kubeconfig,
    )
    stack.callback(kube.close)
    name = f"{args.namespace}/{args.configmap}"
    try:
        doc = kube.get(CONFIGMAPS, args.namespace, args.configmap)
    except NotFound:
        raise InvalidSpec(f"no ConfigMap {name}") from None
    namespace = args.namespace
    source = ApiSecrets(lambda secret: kube.secret_data(namespace, secret), namespace=namespace)
    stack.callback(source.close)
    return _from_document(doc, f"ConfigMap {name}"), source


def _peek(value: Any) -> tuple[str, str]:
    """The kind and bucket an entry means, even when it does not parse."""
    if isinstance(value, Mapping):
        for kind in _KINDS:
            if kind in value:
                inner = value[kind]
                bucket = inner.get("bucket") if isinstance(inner, Mapping) else None
                return kind, str(bucket or "")
    return "?", ""


def check_entry(
    name: str,
    raw: Any,
    *,
    default: bool,
    secrets: SecretSource,
    local_root: str,
    settings: ProbeSettings,
    api: bool = False,
) -> Row:
    """One entry's row. With `api` (Secrets read through the Kubernetes API) the Secrets
    it names are read first, as a stage of their own; from files they are read while
    the entry is parsed."""

    def failed(stage: str, error: ArtifactError | str, kind: str = "?", bucket: str = "") -> Row:
        """A row for an entry that never reached its probes: the write, which it makes
        impossible, fails with the stage that stopped it; the rest are skipped."""
        reason = str(error).removeprefix(f"{name}: ")
        outcomes = {p: Outcome(SKIPPED) for p in PROBES}
        outcomes[PROBES[0]] = Outcome(FAIL, stage, reason)
        return Row(name, default, kind, bucket, None, outcomes, [(stage, reason)])

    try:
        value = yamlpos.safe_load(raw) if isinstance(raw, str) else raw
    except yamlpos.TooDeep as error:
        return failed("parse", str(error.problem))
    except yaml.YAMLError:
        return failed("parse", "not valid YAML")
    kind, bucket = _peek(value)
    stage = "secrets"
    try:
        for where, ref in _secret_refs(value) if api else ():
            read_secret(secrets, ref, where)
        stage = "parse"
        repository = parse_entry(value, secrets=secrets, source=name)
        stage = "open"
        driver = repository_driver(repository, default_local_root=local_root)
    except ArtifactError as error:
        return failed(stage, error, kind, bucket)
    prefix = static_prefix(repository.key_format)
    report = probe(driver, prefix, settings=settings)
    failures = [(p, o.reason) for p, o in report.outcomes.items() if o.status == FAIL]
    if report.leftover:
        failures.append(("cleanup", report.leftover))
    return Row(name, default, kind, driver.bucket, prefix, report.outcomes, failures)


def _table(rows: list[Row]) -> list[str]:
    header = ["ENTRY", "KIND", "BUCKET", "PREFIX", *(p.upper() for p in PROBES)]
    body = [
        [
            f"{r.entry} (default)" if r.default else r.entry,
            r.kind,
            r.bucket or "-",
            "-" if r.prefix is None else r.prefix or "(root)",
            *(r.outcomes[p].cell for p in PROBES),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]


def _json(row: Row) -> str:
    return json.dumps(
        {
            "entry": row.entry,
            "default": row.default,
            "kind": row.kind,
            "bucket": row.bucket or None,
            "prefix": row.prefix,
            "ok": not row.failures,
            "probes": {
                p: {
                    "status": o.status.lower(),
                    "cause": o.cause or None,
                    "reason": o.reason or None,
                }
                for p, o in row.outcomes.items()
            },
            "failures": [{"stage": stage, "reason": reason} for stage, reason in row.failures],
        }
    )


def run(cfg: Config) -> int:
    args, env = cfg.args, cfg.env
    if args.timeout <= 0:
        raise InvalidSpec("--timeout must be a positive number of seconds")
    settings = ProbeSettings(timeout=args.timeout)
    with contextlib.ExitStack() as stack:
        secrets: SecretSource
        if args.namespace:
            source, secrets = _namespace_source(cfg, stack)
        else:
            source = read_file(args.file)
            secrets = FileSecrets(env.get("ARGOSY_SECRETS_DIR", DEFAULT_SECRETS_DIR))
        rows = []
        for name, raw in source.entries:
            row = check_entry(
                name,
                raw,
                default=name == source.default,
                secrets=secrets,
                api=bool(args.namespace),
                local_root=default_local_root(env),
                settings=settings,
            )
            rows.append(row)
            if args.json:
                print(_json(row), flush=True)
    if not args.json:
        lines = _table(rows)
        failures = [f"{r.entry}: {stage}: {reason}" for r in rows for stage, reason in r.failures]
        failures += [f"{source.name}: {problem}" for problem in source.problems]
        print("\n".join(lines + ([""] + failures if failures else [])))
    elif source.problems:
        for problem in source.problems:
            print(json.dumps({"configmap": source.name, "problem": problem}))
    ok = all(not r.failures for r in rows) and not source.problems
    sys.stdout.flush()
    return 0 if ok else 1
