"""The probes `argosy repo check` runs against one repository's bucket: write, read back,
multipart, list, delete, through the same engine and driver calls real artifacts use.

Why probe rather than inspect the entry: most broken repositories look fine on paper (a
missing bucket, a key without PutObject, a proxy that strips user metadata, a gateway
that refuses multipart), and the first to find out should be the admin, not a workflow's
wait container. Every probe object lives under `<keyFormat's static prefix>.argosy-probe/
<random hex>/`, where workflows' credentials must be able to write, and is removed again
whatever happens: a multipart upload is aborted, written keys are deleted, and if that
cleanup fails the report says what may remain.
"""

from __future__ import annotations

import functools
import io
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from argosy.artifacts.download import download_stream
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    IntegrityError,
    NotFound,
    PermanentError,
    ThrottledError,
    TransientError,
)
from argosy.artifacts.protocol import DeleteFailure, Driver, Part
from argosy.artifacts.retry import Retrier, RetryPolicy
from argosy.artifacts.settings import MIN_PART, TransferSettings
from argosy.artifacts.tree import list_all
from argosy.artifacts.upload import upload_stream

PROBES = ("write", "read", "multipart", "list", "delete")
FOLDER = ".argosy-probe"
OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"
_SERVER_CODES = {"InternalError", "RequestTimeout", "ServiceUnavailable"}
T = TypeVar("T")


@dataclass(frozen=True)
class ProbeSettings:
    """timeout: seconds one probe may take, its retries included (60: a 5 MiB part fits on
        a slow link, and a black-holed endpoint fails in a minute rather than after every
        retry's connect timeout).
    retry: tries per request (3: rides out a blip; a check should answer soon).
    small: bytes of the single-PUT probe object.
    tail: bytes of the multipart probe's last part; the first is MIN_PART (5 MiB), the
        smallest S3 and OSS accept for a part that is not the last.
    """

    timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3))
    small: int = 64 * 1024
    tail: int = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    status: str  # OK, FAIL or SKIPPED
    cause: str = ""  # a short name for the failure: AccessDenied, NoSuchBucket, unreachable
    reason: str = ""  # the one-line message

    @property
    def cell(self) -> str:
        return f"{FAIL} {self.cause}" if self.status == FAIL else self.status


@dataclass(frozen=True)
class ProbeReport:
    folder: str  # URL of the probe folder
    outcomes: Mapping[str, Outcome]  # one per name in PROBES
    leftover: str | None  # why probe objects may remain, when they may


class ProbeTimeout(ArtifactError):
    """A probe did not finish within its time budget."""


def cause_of(error: ArtifactError) -> str:
    """A failure's short name for the table; the message says the rest."""
    code = error.code or ""
    if isinstance(error, ProbeTimeout):
        return "timeout"
    if isinstance(error, NotFound):
        return code if code.startswith("NoSuch") else "NotFound"
    if isinstance(error, AccessDenied):
        return "AccessDenied"
    if isinstance(error, ThrottledError):
        return "throttled"
    if isinstance(error, TransientError):  # a server's 5xx, else the connection failed
        return "ServerError" if code.isdigit() or code in _SERVER_CODES else "unreachable"
    if code == "TLSError":
        return "TLS"
    return code or type(error).__name__


def _within(seconds: float, fn: Callable[[], T]) -> T:
    """Run `fn`, waiting at most `seconds`: drivers time out per request and the retrier
    tries again, so a black-holed endpoint could hold one probe for minutes. The thread is
    a daemon, so one left stuck does not keep the command from exiting."""
    results: list[T] = []
    errors: list[Exception] = []

    def target() -> None:
        try:
            results.append(fn())
        except Exception as error:  # noqa: BLE001 - handed to the waiting thread as is
            errors.append(error)

    thread = threading.Thread(target=target, name="argosy-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ProbeTimeout(f"no answer within {seconds:g}s (--timeout)", code="Timeout")
    if errors:
        raise errors[0]
    return results[0]


def _delete_error(driver: Driver, failure: DeleteFailure) -> ArtifactError:
    message = f"delete {driver.url(failure.key)}: {failure.message} ({failure.code})"
    if failure.code in ("AccessDenied", "403"):
        return AccessDenied(message, code=failure.code)
    return PermanentError(message, code=failure.code)


class _Run:
    """One check of one bucket. `present` is every key that exists or may exist (a write
    that timed out may still land), so cleanup removes exactly what the probes made."""

    def __init__(self, driver: Driver, folder: str, settings: ProbeSettings) -> None:
        self.driver, self.folder = driver, folder
        self.retrier = Retrier(settings.retry)
        self.transfer = TransferSettings(
            part_size=MIN_PART,
            multipart_threshold=MIN_PART,
            stream_part_size=MIN_PART,
            concurrency=1,
            retry=settings.retry,
        )
        self.small_key, self.large_key = folder + "put", folder + "multipart"
        self.small = os.urandom(settings.small)
        self.tail = settings.tail
        self.present: set[str] = set()
        self.written: dict[str, int] = {}  # key -> size, of objects known to exist
        self.upload: str | None = None  # a multipart upload neither completed nor aborted

    def _landing(self, key: str, write: Callable[[], object]) -> None:
        """Run a write of `key`. One refused outright (a PermanentError) or that never
        reached the server left nothing; any other failure may have landed."""
        self.present.add(key)
        try:
            write()
        except ArtifactError as error:
            if isinstance(error, PermanentError) or error.code == "EndpointUnreachable":
                self.present.discard(key)
            raise

    def write(self) -> None:
        self._landing(
            self.small_key,
            lambda: upload_stream(
                self.driver, self.small_key, io.BytesIO(self.small), settings=self.transfer
            ),
        )
        self.written[self.small_key] = len(self.small)

    def read(self) -> None:
        out = io.BytesIO()
        result = download_stream(self.driver, self.small_key, out, settings=self.transfer)
        url = self.driver.url(self.small_key)
        if out.getvalue() != self.small:
            raise IntegrityError(
                f"{url}: the bytes read back differ from those written", code="BytesDiffer"
            )
        if not result.verified:
            raise IntegrityError(
                f"{url}: read back unverified ({result.note}); is user "
                "metadata dropped on the way?",
                code="Unverified",
            )

    def multipart(self) -> None:
        key, url = self.large_key, self.driver.url(self.large_key)
        self.upload = upload_id = self.retrier.call(
            lambda: self.driver.create_upload(key, metadata={}), what=f"create upload {url}"
        )
        bodies = [os.urandom(MIN_PART), os.urandom(self.tail)]
        parts: list[Part] = []
        for number, body in enumerate(bodies, start=1):
            parts.append(
                self.retrier.call(
                    functools.partial(
                        self.driver.upload_part, key, upload_id, number, body, size=len(body)
                    ),
                    what=f"part {number} of {url}",
                )
            )
        self._landing(
            key,
            lambda: self.retrier.call(
                lambda: self.driver.complete_upload(key, upload_id, parts), what=f"complete {url}"
            ),
        )
        self.upload = None
        size = sum(len(body) for body in bodies)
        info = self.retrier.call(lambda: self.driver.stat(key), what=f"stat {url}")
        self.written[key] = info.size
        if info.size != size:
            raise IntegrityError(
                f"{url}: completed with {info.size} bytes, not the {size} sent", code="SizeDiffers"
            )

    def list(self) -> None:
        listed = {
            info.key: info.size for info in list_all(self.driver, self.folder, retrier=self.retrier)
        }
        missing = sorted(key for key in self.written if key not in listed)
        if missing:
            raise PermanentError(
                f"listing {self.driver.url(self.folder)} lacks {', '.join(missing)}",
                code="ListingIncomplete",
            )
        wrong = sorted(key for key, size in self.written.items() if listed[key] != size)
        if wrong:
            raise IntegrityError(
                f"listing {self.driver.url(self.folder)} gives the wrong "
                f"size for {', '.join(wrong)}",
                code="SizeDiffers",
            )

    def delete(self) -> None:
        keys = sorted(self.present)
        failures = self.retrier.call(
            lambda: self.driver.delete(keys), what=f"delete under {self.driver.url(self.folder)}"
        )
        if failures:
            raise _delete_error(self.driver, failures[0])
        for key in keys:
            try:
                self.retrier.call(
                    functools.partial(self.driver.stat, key),
                    what=f"stat {self.driver.url(key)}",
                )
            except NotFound:
                continue
            raise PermanentError(
                f"{self.driver.url(key)} is still there after its delete succeeded",
                code="StillThere",
            )
        self.present.clear()

    def cleanup(self) -> None:
        """Abort what is unfinished and delete what may exist; a missing bucket, key or
        upload means there is nothing left to remove."""
        upload, self.upload = self.upload, None
        if upload:
            try:
                self.retrier.call(
                    lambda: self.driver.abort_upload(self.large_key, upload),
                    what="abort the multipart probe",
                )
            except NotFound:
                pass
        if self.present:
            try:
                failures = self.retrier.call(
                    lambda: self.driver.delete(sorted(self.present)),
                    what="delete the probe objects",
                )
            except NotFound:
                failures = []
            if failures:
                raise _delete_error(self.driver, failures[0])
            self.present.clear()


def _attempt(seconds: float, step: Callable[[], None]) -> Outcome:
    try:
        _within(seconds, step)
    except ArtifactError as error:
        return Outcome(
            FAIL, cause_of(error), str(error).splitlines()[0] if str(error) else cause_of(error)
        )
    return Outcome(OK)


def probe(driver: Driver, prefix: str, *, settings: ProbeSettings) -> ProbeReport:
    """Run every probe under `prefix` (a folder, '' or ending in '/'). A failed write
    skips the rest, which all need its object; later probes run whatever the others did."""
    folder = f"{prefix}{FOLDER}/{secrets.token_hex(8)}/"
    run = _Run(driver, folder, settings)
    steps: dict[str, Callable[[], None]] = {
        "write": run.write,
        "read": run.read,
        "multipart": run.multipart,
        "list": run.list,
        "delete": run.delete,
    }
    outcomes: dict[str, Outcome] = {}
    leftover: str | None = None
    try:
        for name in PROBES:
            if name != "write" and outcomes["write"].status != OK:
                outcomes[name] = Outcome(SKIPPED)
            else:
                outcomes[name] = _attempt(settings.timeout, steps[name])
    finally:
        cleaned = _attempt(settings.timeout, run.cleanup)
        if cleaned.status == FAIL:
            leftover = f"probe objects may remain under {driver.url(folder)}: {cleaned.reason}"
    return ProbeReport(driver.url(folder), outcomes, leftover)
