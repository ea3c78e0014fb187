"""Argo's ArtifactService, served with Argosy's transfer engine.

Each call names a plugin location (`plugin: {name, configuration, key}`); its
configuration is parsed once per distinct string (`argo.plugin_config`) and its driver
opened once per configuration (one client per bucket, shared by the calls in flight).
Argo's semantics, call by call:

- Save: a file goes to exactly `key` as one object (parallel multipart, checksum
  record); a folder one object per file under `key/`, and nothing else (Argo's layout:
  no manifest). Argo has already archived what it wants archived: never re-archive.
- Load: the object at `key` into `path`, verified (a mismatch fails and leaves nothing),
  or, when `key` is a folder, the tree under it (an object at exactly `key` wins over a
  folder `key/`). Never unpacks.
- OpenStream: the object's bytes in frames of at most 2 MiB (gRPC's default receive
  limit is 4 MiB per message), read with parallel ranges in bounded memory and verified
  as they go; the last frame says `is_end`. A failure, a checksum mismatch included,
  ends the stream with an `error` frame and never with `is_end`, so a truncated
  download never looks complete.
- SaveStream (GetCapabilities says it is supported): the first message names the
  artifact, the rest carry chunks, streamed into a multipart upload with no temp file.
- Delete: a file, or a whole folder with or without its trailing slash, never a
  sibling prefix (`run1` never touches `run10/`); a missing key is deleted already.
- ListObjects: the full keys under `key/`. IsDirectory: true for a folder, false for a
  file and for a missing key.
Failures answer `success: false` (or `error`) with one line naming the location and the
cause's class in the project's error tree.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from argosy.argo import plugin_config
from argosy.argo.plugin_config import PluginConfig
from argosy.argo.repository import storage_for
from argosy.argo.secrets import SecretSource
from argosy.artifacts import tree
from argosy.artifacts.connect import open_driver
from argosy.artifacts.download import download_file, iter_object
from argosy.artifacts.errors import ArtifactError, InvalidSpec, NotFound, TransientError
from argosy.artifacts.manifest import legacy_manifest_key
from argosy.artifacts.protocol import Driver
from argosy.artifacts.settings import MiB, TransferSettings
from argosy.artifacts.upload import upload_file, upload_stream
from argosy.plugin import artifact_pb2 as pb
from argosy.plugin import artifact_pb2_grpc as rpc
from argosy.plugin import memory

log = logging.getLogger("argosy.plugin")
FRAME = 2 * MiB  # the most data one OpenStream frame carries


class Cancelled(TransientError):
    """The caller went away, or the plugin is stopping past its grace period."""


@dataclass(frozen=True)
class Place:
    """Where one call's object (or folder) is."""

    config: PluginConfig
    driver: Driver
    key: str
    settings: TransferSettings

    @property
    def url(self) -> str:
        return self.driver.url(self.key)


class Places:
    """Plugin locations to drivers, one per configuration string."""

    def __init__(
        self, secrets: Callable[[], SecretSource], *, local_root: str, base: TransferSettings
    ) -> None:
        self._secrets = secrets
        self._local_root = local_root
        self._base = base
        self._drivers: dict[str, Driver] = {}
        self._lock = threading.Lock()

    def of(self, artifact: Any) -> Place:
        plugin = artifact.plugin
        if not plugin.key:
            raise InvalidSpec(f"artifact {artifact.name or '?'}: its plugin location has no key")
        config = plugin_config.parse(plugin.configuration)
        with self._lock:  # building under the lock: botocore sessions are not thread-safe
            driver = self._drivers.get(plugin.configuration)
            if driver is None:
                storage = storage_for(
                    config.kind,
                    config.location,
                    self._secrets(),
                    key_format=config.key_format or "",
                )
                driver = open_driver(storage, config.bucket, default_local_root=self._local_root)
                self._drivers[plugin.configuration] = driver
        settings = self._base
        if config.concurrency:
            settings = replace(settings, concurrency=config.concurrency)
        if config.files:
            settings = replace(settings, files=config.files)
        if config.part_size:
            settings = replace(
                settings, part_size=config.part_size, multipart_threshold=config.part_size
            )
        return Place(config, driver, plugin.key, settings)


def _named(artifact: Any) -> str:
    """How a message names an artifact before its location is known."""
    return f"artifact {artifact.name or '?'} (key {artifact.plugin.key or '?'})"


def _line(error: BaseException, where: str) -> str:
    """One line for Argo: where, the error's class, what happened."""
    kind = type(error).__name__ if isinstance(error, ArtifactError) else "Error"
    text = " ".join(str(error).split()) or repr(error)
    return f"{where}: {kind}: {text}"


class Calls:
    """The calls in flight, and the switch that cancels them all: gRPC's own
    cancellation at the end of the grace period does not reach a handler reliably (one
    blocked reading a stream's next message may never wake), so each handler also
    watches this switch, and the server waits for them to unwind before it exits."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._count = 0
        self._changed = threading.Condition()

    @contextmanager
    def one(self) -> Iterator[None]:
        with self._changed:
            self._count += 1
        try:
            yield
        finally:
            with self._changed:
                self._count -= 1
                idle = self._count == 0
                self._changed.notify_all()
            if idle:
                memory.give_back()

    def alive(self, context: grpc.ServicerContext) -> bool:
        return context.is_active() and not self.cancelled.is_set()

    def cancel_all(self, wait: float) -> int:
        """Cancel every call; wait up to `wait` seconds for them to unwind (their
        uploads aborted, their temporary files removed). Returns those still running."""
        self.cancelled.set()
        deadline = time.monotonic() + wait
        with self._changed:
            while self._count and time.monotonic() < deadline:
                self._changed.wait(max(0.0, deadline - time.monotonic()))
            return self._count


def _watch(context: grpc.ServicerContext, calls: Calls) -> Callable[[int], None]:
    """A progress callback that stops a transfer once its call is cancelled (the caller
    left, or the plugin is stopping past its grace period): the engine then aborts the
    multipart upload or removes the temporary file, as for any failure."""

    def progress(_: int) -> None:
        if not calls.alive(context):
            raise Cancelled("the call was cancelled")

    return progress


_END = object()


class _ChunkStream:
    """SaveStream's chunks as a readable stream, read in order into the upload's parts.
    The end of the messages is the end of the object only if the call is still alive:
    a cancelled call also ends them, and its bytes must never be completed as an
    object. A thread takes the messages off the call (at most two held: memory stays
    bounded), so a reader waiting for the next one still sees a cancellation."""

    def __init__(
        self, requests: Iterator[Any], context: grpc.ServicerContext, calls: Calls
    ) -> None:
        self._context = context
        self._calls = calls
        self._pending = memoryview(b"")
        self._messages: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._finished = threading.Event()
        self.size = 0
        threading.Thread(
            target=self._pump, args=(requests,), name="argosy-savestream", daemon=True
        ).start()

    def _pump(self, requests: Iterator[Any]) -> None:
        try:
            for message in requests:
                if not self._offer(message):
                    return
        except grpc.RpcError:
            pass
        self._offer(_END)

    def _offer(self, item: Any) -> bool:
        while not self._finished.is_set():
            try:
                self._messages.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self._finished.set()

    def _next(self) -> Any:
        while True:
            if not self._calls.alive(self._context):
                raise Cancelled("the call was cancelled before its last chunk")
            try:
                return self._messages.get(timeout=0.2)
            except queue.Empty:
                continue

    def readinto(self, buffer: memoryview) -> int:
        while not self._pending:
            message = self._next()
            if message is _END:
                if not self._calls.alive(self._context):
                    raise Cancelled("the call was cancelled before its last chunk")
                return 0
            self._pending = memoryview(message.chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.size += n
        return n

    def read(self, amount: int = -1) -> bytes:
        out = bytearray(amount if amount >= 0 else FRAME)
        return bytes(out[: self.readinto(memoryview(out))])


Handler = Callable[["ArtifactService", Any, grpc.ServicerContext], Any]


def _tracked(method: Handler) -> Handler:
    """A unary call (or SaveStream) counted among the calls in flight."""

    @functools.wraps(method)
    def call(self: ArtifactService, request: Any, context: grpc.ServicerContext) -> Any:
        with self.calls.one():
            return method(self, request, context)

    return call


Outcome = tuple[str, Any]  # what the log line says, and the answer
Work = Callable[["ArtifactService", Place, Any, grpc.ServicerContext], Outcome]


def _answered(
    artifact_of: Callable[[Any], Any], answer: Callable[..., Any]
) -> Callable[[Work], Handler]:
    """A unary call on one artifact's location, counted among the calls in flight, logged
    with its outcome and time, and answered on every failure (never raised to gRPC): the
    answer type's `error` says where and what, and `success`, where it has one, is false."""

    def wrap(work: Work) -> Handler:
        fields = answer.DESCRIPTOR.fields_by_name  # type: ignore[attr-defined]
        failed: dict[str, Any] = {"success": False} if "success" in fields else {}

        @functools.wraps(work)
        def call(self: ArtifactService, request: Any, context: grpc.ServicerContext) -> Any:
            with self.calls.one():
                artifact = artifact_of(request)
                started, where = time.monotonic(), _named(artifact)
                try:
                    place = self.places.of(artifact)
                    where = place.url
                    outcome, reply = work(self, place, request, context)
                except Exception as error:  # noqa: BLE001 - every failure is answered
                    self._done(work.__name__, where, started, "failed")
                    return answer(**failed, error=_line(error, where))
                self._done(work.__name__, where, started, outcome)
                return reply

        return call

    return wrap


def _tracked_stream(method: Handler) -> Handler:
    """A streaming answer counted among the calls in flight until its last frame."""

    @functools.wraps(method)
    def call(self: ArtifactService, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with self.calls.one():
            yield from method(self, request, context)

    return call


class ArtifactService(rpc.ArtifactServiceServicer):
    def __init__(self, places: Places, *, say: Callable[[str], None]) -> None:
        self.places = places
        self.say = say
        self.calls = Calls()

    def _done(self, call: str, where: str, started: float, outcome: str) -> None:
        self.say(f"{call} {where} {outcome} in {time.monotonic() - started:.2f} s")

    # -- unary calls -------------------------------------------------------------------
    @_answered(lambda request: request.output_artifact, pb.SaveArtifactResponse)
    def Save(self, place: Place, request: Any, context: grpc.ServicerContext) -> Outcome:  # noqa: N802
        path = request.path
        if os.path.isdir(path):
            result = tree.upload_tree(
                place.driver,
                place.key,
                path,
                settings=place.settings,
                progress=_watch(context, self.calls),
            )
            outcome = f"ok: {result.files} file(s), {result.bytes} B"
        elif os.path.isfile(path):
            up = upload_file(
                place.driver,
                place.key,
                path,
                settings=place.settings,
                progress=_watch(context, self.calls),
            )
            outcome = f"ok: {up.size} B" + (" verified" if up.record else "")
        else:
            raise NotFound(f"no file or folder at {path}")
        return outcome, pb.SaveArtifactResponse(success=True)

    @_answered(lambda request: request.input_artifact, pb.LoadArtifactResponse)
    def Load(self, place: Place, request: Any, context: grpc.ServicerContext) -> Outcome:  # noqa: N802
        outcome = self._load(place, Path(request.path), context)
        return outcome, pb.LoadArtifactResponse(success=True)

    def _load(self, place: Place, dest: Path, context: grpc.ServicerContext) -> str:
        key = place.key
        if not key.endswith("/"):
            try:
                info = place.driver.stat(key)
            except NotFound:
                info = None
            if info is not None:  # an object at exactly the key wins over a folder
                got = download_file(
                    place.driver,
                    key,
                    dest,
                    settings=place.settings,
                    info=info,
                    progress=_watch(context, self.calls),
                )
                return f"ok: {got.size} B" + (" verified" if got.verified else "")
        result = tree.download_tree(
            place.driver, key, dest, settings=place.settings, progress=_watch(context, self.calls)
        )
        return f"ok: {result.files} file(s), {result.bytes} B"

    @_answered(lambda request: request.artifact, pb.DeleteArtifactResponse)
    def Delete(self, place: Place, request: Any, context: grpc.ServicerContext) -> Outcome:  # noqa: N802
        outcome = tree.delete_folder(place.driver, place.key, with_object=True)
        if outcome.error is not None:
            raise outcome.error
        if outcome.failures:
            first = outcome.failures[0]
            raise ArtifactError(
                f"{len(outcome.failures)} object(s) not deleted, e.g. "
                f"{place.driver.url(first.key)}: {first.code} "
                f"{first.message}"
            )
        return f"ok: {outcome.objects} object(s)", pb.DeleteArtifactResponse(success=True)

    @_answered(lambda request: request.artifact, pb.ListObjectsResponse)
    def ListObjects(self, place: Place, request: Any, context: grpc.ServicerContext) -> Outcome:  # noqa: N802
        folder = tree.as_folder(place.key)
        legacy = legacy_manifest_key(folder)  # older versions kept it under the folder
        keys = [o.key for o in tree.list_all(place.driver, folder) if o.key != legacy]
        return f"ok: {len(keys)} object(s)", pb.ListObjectsResponse(objects=keys)

    @_answered(lambda request: request.artifact, pb.IsDirectoryResponse)
    def IsDirectory(self, place: Place, request: Any, context: grpc.ServicerContext) -> Outcome:  # noqa: N802
        page = place.driver.list(tree.as_folder(place.key), limit=1)
        folder = bool(page.objects)
        return f"ok: {folder}", pb.IsDirectoryResponse(is_directory=folder)

    def GetCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return pb.GetCapabilitiesResponse(supports_save_stream=True)

    # -- streams -----------------------------------------------------------------------
    @_tracked_stream
    def OpenStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        started, where, sent = time.monotonic(), _named(request.artifact), 0
        try:
            place = self.places.of(request.artifact)
            where = place.url
            for chunk in iter_object(place.driver, place.key, settings=place.settings):
                view = memoryview(chunk)
                for at in range(0, len(view), FRAME):
                    if not self.calls.alive(context):
                        raise Cancelled("the caller went away")
                    piece = view[at : at + FRAME]
                    sent += len(piece)
                    yield pb.OpenStreamResponse(data=bytes(piece))
        except Exception as error:  # noqa: BLE001 - an error frame, never `is_end`
            self._done("OpenStream", where, started, f"failed after {sent} B")
            yield pb.OpenStreamResponse(error=_line(error, where))
            return
        self._done("OpenStream", where, started, f"ok: {sent} B verified")
        yield pb.OpenStreamResponse(is_end=True)

    @_tracked
    def SaveStream(
        self,
        request_iterator: Iterator[Any],  # noqa: N802
        context: grpc.ServicerContext,
    ) -> Any:
        started, where = time.monotonic(), "?"
        try:
            first = next(request_iterator, None)
            if first is None or not first.HasField("output_artifact"):
                raise InvalidSpec("SaveStream: the first message must name the artifact")
            where = _named(first.output_artifact)
            place = self.places.of(first.output_artifact)
            where = place.url
            stream = _ChunkStream(request_iterator, context, self.calls)
            if first.chunk:
                stream._pending = memoryview(first.chunk)
            try:
                up = upload_stream(
                    place.driver,
                    place.key,
                    stream,  # type: ignore[arg-type]
                    settings=place.settings,
                    progress=_watch(context, self.calls),
                )
            finally:
                stream.close()
        except Exception as error:  # noqa: BLE001
            self._done("SaveStream", where, started, "failed")
            return pb.SaveArtifactResponse(success=False, error=_line(error, where))
        self._done("SaveStream", where, started, f"ok: {up.size} B")
        return pb.SaveArtifactResponse(success=True)
