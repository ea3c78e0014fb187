"""Opt-in sweeps of a namespace's repositories (ArtifactGCPolicy `spec.sweeps`).

Two things leak past per-workflow GC, and each sweep takes one of them, nothing else:
- multipart uploads that were never completed nor aborted (a killed pod) keep their
  parts, billed and invisible to listings: those initiated more than
  `incompleteUploadsAfter` ago under the folder of a finished workflow of the namespace
  (its keyFormat expanded with its own variables, `argo.keys.workflow_prefix`) are
  aborted. Nowhere else: ListMultipartUploads tells nothing of who started an upload, so
  another tool's upload in the same bucket must never be taken for a leak;
- objects Argosy wrote for a workflow that no longer exists (deleted while the
  controller was down, or without its finalizer): deleted when older than `orphansAfter`
  and only if the object's own metadata (`argosy.artifacts.provenance`) names a workflow
  uid of this namespace that is absent from a fresh list, and a strategy that deletes on
  deletion or completion. Never, unknown strategies and foreign objects stay.
Only keys under the repository's static prefix (the text of `keyFormat` before its first
variable) are considered. When that prefix is empty (Argo's default keyFormat starts with
`{{workflow.name}}`) it would be the whole bucket: such a repository is swept only under
an explicit `sweeps.prefix`, otherwise the sweep is refused (`SweepRefused`, written to the
policy's `Swept` condition).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argosy.argo.location import Target
from argosy.argo.names import DEFAULT_KEY_FORMAT, STORAGE_KINDS, Strategy
from argosy.argo.repository import static_prefix
from argosy.artifacts.errors import ArtifactError, InvalidSpec, NotFound
from argosy.artifacts.protocol import Driver
from argosy.artifacts.provenance import read_provenance
from argosy.artifacts.retry import Retrier
from argosy.artifacts.tree import BATCH, list_all
from argosy.gc.deleter import LeadershipLost

log = logging.getLogger("argosy.gc")
DELETABLE = {Strategy.ON_DELETION.value, Strategy.ON_COMPLETION.value}


@dataclass
class SweepReport:
    repository: str
    uploads_aborted: int = 0
    orphans_deleted: int = 0
    orphan_bytes: int = 0
    kept: int = 0  # old objects looked at and kept (foreign, live, Never, ...)
    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # no folder to confine the sweep to
    plan: list[str] = field(default_factory=list)  # dry run: what would go


def repository_target(name: str, entry: Mapping[str, Any]) -> Target | None:
    """The bucket and static prefix an `artifact-repositories` entry writes under."""
    for kind in STORAGE_KINDS:
        location = entry.get(kind)
        if isinstance(location, Mapping) and location.get("bucket"):
            key_format = str(
                entry.get("keyFormat") or location.get("keyFormat") or DEFAULT_KEY_FORMAT
            )
            config = {k: v for k, v in location.items() if k not in ("keyFormat", "keyPrefix")}
            return Target(kind, str(location["bucket"]), static_prefix(key_format), config)
    return None


class SweepRefused(InvalidSpec):
    """A repository the policy's sweeps cannot be confined to a folder of."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="NoKeyPrefix")


def sweep_scope(target: Target, explicit: str | None, where: str) -> str:
    """The folder a repository's sweeps stay in: its static prefix, or the policy's
    `sweeps.prefix` (which must lie within it)."""
    if explicit is not None:
        if not explicit.startswith(target.key):
            raise SweepRefused(
                f"{where}: spec.sweeps.prefix {explicit!r} is outside the "
                f"repository's keys ({target.key!r})"
            )
        return explicit
    if not target.key:
        raise SweepRefused(
            f"{where}: its keyFormat starts with a variable, so its keys "
            "have no common folder and a sweep would cover the whole bucket; "
            "set spec.sweeps.prefix to the folder to sweep"
        )
    return target.key


def abort_stale_uploads(
    driver: Driver,
    prefixes: Iterable[str],
    *,
    older_than: timedelta,
    now: datetime,
    report: SweepReport,
    dry_run: bool = False,
    fence: Callable[[], bool] = lambda: True,
) -> None:
    """Abort the uploads under each of `prefixes` (finished workflows' folders) started
    more than `older_than` before `now`."""
    uploads = {
        (u.key, u.upload_id): u
        for prefix in sorted(set(prefixes))
        for u in driver.list_uploads(prefix)
    }
    for upload in uploads.values():
        if now - upload.initiated < older_than:
            continue
        if dry_run:
            report.plan.append(f"abort upload {driver.url(upload.key)} ({upload.upload_id})")
            continue
        if not fence():
            raise LeadershipLost()
        try:
            driver.abort_upload(upload.key, upload.upload_id)
        except NotFound:
            pass
        report.uploads_aborted += 1


def sweep_orphans(
    driver: Driver,
    prefix: str,
    *,
    namespace: str,
    live_uids: set[str],
    older_than: timedelta,
    now: datetime,
    report: SweepReport,
    dry_run: bool = False,
    retrier: Retrier | None = None,
    fence: Callable[[], bool] = lambda: True,
) -> None:
    retrier = retrier or Retrier()
    batch: list[tuple[str, int]] = []

    def flush() -> None:
        if not batch:
            return
        if not fence():
            raise LeadershipLost()
        keys = [k for k, _ in batch]
        failed = {f.key for f in retrier.call(lambda: driver.delete(keys), what="sweep")}
        report.orphans_deleted += sum(1 for k, _ in batch if k not in failed)
        report.orphan_bytes += sum(size for k, size in batch if k not in failed)
        report.errors += [f"{driver.url(k)} not deleted" for k in sorted(failed)[:5]]
        batch.clear()

    for info in list_all(driver, prefix, retrier=retrier):
        if now - info.modified < older_than:
            continue
        try:  # listings carry no metadata: one HEAD per old object
            metadata = retrier.call(functools.partial(driver.stat, info.key), what="stat").metadata
        except NotFound:
            continue
        owner = read_provenance(metadata)
        if (
            owner is None
            or owner.namespace != namespace
            or owner.uid in live_uids
            or owner.strategy not in DELETABLE
        ):
            report.kept += 1
            continue
        if dry_run:
            report.plan.append(
                f"delete orphan {driver.url(info.key)} (workflow "
                f"{owner.namespace}/{owner.name} {owner.uid} is gone)"
            )
            continue
        batch.append((info.key, info.size))
        if len(batch) == BATCH:
            flush()
    flush()


def run_sweeps(
    driver: Driver,
    scope: str,
    *,
    namespace: str,
    uploads_after: timedelta | None,
    orphans_after: timedelta | None,
    live_uids: Callable[[], set[str]],
    workflow_prefixes: Callable[[], Iterable[str]],
    now: datetime,
    dry_run: bool,
    fence: Callable[[], bool],
    retrier: Retrier | None = None,
) -> SweepReport:
    """Both sweeps of one repository, confined to `scope` (see `sweep_scope`)."""
    report = SweepReport(driver.url(scope))
    try:
        if uploads_after is not None:
            abort_stale_uploads(
                driver,
                [p for p in workflow_prefixes() if p.startswith(scope) and p],
                older_than=uploads_after,
                now=now,
                report=report,
                dry_run=dry_run,
                fence=fence,
            )
        if orphans_after is not None:
            sweep_orphans(
                driver,
                scope,
                namespace=namespace,
                live_uids=live_uids(),
                older_than=orphans_after,
                now=now,
                report=report,
                dry_run=dry_run,
                retrier=retrier,
                fence=fence,
            )
    except ArtifactError as error:
        report.errors.append(str(error))
        log.warning("sweep of %s: %s", report.repository, error)
    return report
