"""The outcome of GC recorded on the workflow itself, as one bounded annotation.

`argosy.io/artifact-gc` holds JSON: which artifacts are done (the first 50 by id, for
people, and all as short digests, so a re-run skips them), how many objects and bytes
were deleted, the last failures with their cause, the number of failed attempts (the
finalizer's way out counts them), and the prefixes leaked when the finalizer was removed
anyway. Every list is capped and every message cut short, so the annotation stays a few
KiB whatever the workflow's size: Kubernetes refuses objects whose annotations exceed
256 KiB, and a record that grew with the number of keys (100k) would wedge the very
workflow it describes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from argosy.argo.workflow import parse_time

ANNOTATION = "argosy.io/artifact-gc"
MAX_DONE = 2000  # digests of 10 characters: ~26 KiB at most
MAX_NAMES = 50  # artifact ids listed readably
MAX_NOTES = 20  # failures and leaks kept, each
MAX_MESSAGE = 240  # characters of one failure's message


def digest(artifact_id: str) -> str:
    return hashlib.sha1(artifact_id.encode()).hexdigest()[:10]


def _cut(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Failure:
    artifact: str
    url: str
    cause: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {
            "artifact": _cut(self.artifact, 120),
            "url": _cut(self.url, 200),
            "cause": self.cause,
            "message": _cut(self.message),
        }


@dataclass(frozen=True)
class Leak:
    """What was left behind when the finalizer was removed anyway: a prefix (or key) and
    how many objects were known to remain under it (None: could not be listed)."""

    url: str
    objects: int | None
    cause: str

    def as_json(self) -> dict[str, Any]:
        return {"url": _cut(self.url, 200), "objects": self.objects, "cause": self.cause}


@dataclass(frozen=True)
class GcRecord:
    done: frozenset[str] = frozenset()  # digests: what a re-run skips
    deleted: tuple[str, ...] = ()  # the same, readable, for people (the first MAX_NAMES)
    objects: int = 0
    bytes: int = 0
    failures: tuple[Failure, ...] = ()
    more_failures: int = 0
    attempts: int = 0
    first_failure: datetime | None = None
    leaks: tuple[Leak, ...] = ()
    more_leaks: int = 0
    forced: bool = False

    def is_done(self, artifact_id: str) -> bool:
        return digest(artifact_id) in self.done

    def with_done(self, artifact_ids: Iterable[str], objects: int, size: int) -> GcRecord:
        ids = list(artifact_ids)
        done = set(self.done) | {digest(a) for a in ids}
        if len(done) > MAX_DONE:  # forgetting means redoing (idempotent), never skipping
            done = set(sorted(done)[:MAX_DONE])
        names = tuple(dict.fromkeys([*self.deleted, *ids]))[:MAX_NAMES]
        return replace(
            self,
            done=frozenset(done),
            deleted=names,
            objects=self.objects + objects,
            bytes=self.bytes + size,
        )

    def with_failures(self, failures: list[Failure], now: datetime) -> GcRecord:
        if not failures:
            return replace(self, failures=(), more_failures=0)
        return replace(
            self,
            failures=tuple(failures[:MAX_NOTES]),
            more_failures=max(0, len(failures) - MAX_NOTES),
            attempts=self.attempts + 1,
            first_failure=self.first_failure or now,
        )

    def with_leaks(self, leaks: list[Leak]) -> GcRecord:
        return replace(
            self,
            leaks=tuple(leaks[:MAX_NOTES]),
            more_leaks=max(0, len(leaks) - MAX_NOTES),
            forced=True,
        )


def read_record(annotations: Mapping[str, str]) -> GcRecord:
    """The record on a workflow; a missing or damaged one reads as empty (redo, not skip)."""
    raw = annotations.get(ANNOTATION)
    if not raw:
        return GcRecord()
    try:
        data = json.loads(raw)
        return GcRecord(
            done=frozenset(str(d) for d in data.get("done") or []),
            deleted=tuple(str(d) for d in data.get("deleted") or [])[:MAX_NAMES],
            objects=int(data.get("objects") or 0),
            bytes=int(data.get("bytes") or 0),
            failures=tuple(
                Failure(
                    str(f.get("artifact", "")),
                    str(f.get("url", "")),
                    str(f.get("cause", "")),
                    str(f.get("message", "")),
                )
                for f in data.get("failures") or []
            ),
            more_failures=int(data.get("moreFailures") or 0),
            attempts=int(data.get("attempts") or 0),
            first_failure=parse_time(data.get("firstFailure")),
            leaks=tuple(
                Leak(str(x.get("url", "")), x.get("objects"), str(x.get("cause", "")))
                for x in data.get("leaks") or []
            ),
            more_leaks=int(data.get("moreLeaks") or 0),
            forced=bool(data.get("forced")),
        )
    except (ValueError, TypeError, AttributeError):
        return GcRecord()


def encode_record(record: GcRecord, now: datetime) -> str:
    data: dict[str, Any] = {
        "version": 1,
        "deleted": [_cut(d, 120) for d in record.deleted],
        "done": sorted(record.done),
        "objects": record.objects,
        "bytes": record.bytes,
        "updated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if record.failures:
        data["failures"] = [f.as_json() for f in record.failures]
        if record.more_failures:
            data["moreFailures"] = record.more_failures
    if record.attempts:
        data["attempts"] = record.attempts
    if record.first_failure:
        data["firstFailure"] = record.first_failure.strftime("%Y-%m-%dT%H:%M:%SZ")
    if record.leaks:
        data["leaks"] = [leak.as_json() for leak in record.leaks]
        if record.more_leaks:
            data["moreLeaks"] = record.more_leaks
    if record.forced:
        data["forced"] = True
    return json.dumps(data, separators=(",", ":"))
