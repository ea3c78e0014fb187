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

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
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


def _watch(context: grpc.ServicerContext) -> Callable[[int], None]:
    """A progress callback that stops a transfer once its call is cancelled (the caller
    left, or the plugin is stopping past its grace period): the engine then aborts the
    multipart upload or removes the temporary file, as for any failure."""

    def progress(_: int) -> None:
        if not context.is_active():
            raise Cancelled("the call was cancelled")

    return progress


class _ChunkStream:
    """SaveStream's chunks as a readable stream, read in order into the upload's parts.
    The end of the messages is the end of the object only if the call is still alive:
    a cancelled call also ends them, and its bytes must never be completed as an
    object."""

    def __init__(self, requests: Iterator[Any], context: grpc.ServicerContext) -> None:
        self._requests = requests
        self._context = context
        self._pending = memoryview(b"")
        self.size = 0

    def readinto(self, buffer: memoryview) -> int:
        while not self._pending:
            try:
                message = next(self._requests, None)
            except grpc.RpcError:
                message = None
            if message is None:
                if not self._context.is_active():
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


class ArtifactService(rpc.ArtifactServiceServicer):
    def __init__(self, places: Places, *, say: Callable[[str], None]) -> None:
        self.places = places
        self.say = say

    def _done(self, call: str, where: str, started: float, outcome: str) -> None:
        self.say(f"{call} {where} {outcome} in {time.monotonic() - started:.2f} s")

    # -- unary calls -------------------------------------------------------------------
    def Save(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        started, where = time.monotonic(), _named(request.output_artifact)
        try:
            place = self.places.of(request.output_artifact)
            where = place.url
            path = request.path
            if os.path.isdir(path):
                result = tree.upload_tree(
                    place.driver, place.key, path, settings=place.settings, progress=_watch(context)
                )
                outcome = f"ok: {result.files} file(s), {result.bytes} B"
            elif os.path.isfile(path):
                up = upload_file(
                    place.driver, place.key, path, settings=place.settings, progress=_watch(context)
                )
                outcome = f"ok: {up.size} B" + (" verified" if up.record else "")
            else:
                raise NotFound(f"no file or folder at {path}")
        except Exception as error:  # noqa: BLE001 - every failure is answered, never raised
            self._done("Save", where, started, "failed")
            return pb.SaveArtifactResponse(success=False, error=_line(error, where))
        self._done("Save", where, started, outcome)
        return pb.SaveArtifactResponse(success=True)

    def Load(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        started, where = time.monotonic(), _named(request.input_artifact)
        try:
            place = self.places.of(request.input_artifact)
            where = place.url
            outcome = self._load(place, Path(request.path), context)
        except Exception as error:  # noqa: BLE001
            self._done("Load", where, started, "failed")
            return pb.LoadArtifactResponse(success=False, error=_line(error, where))
        self._done("Load", where, started, outcome)
        return pb.LoadArtifactResponse(success=True)

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
                    progress=_watch(context),
                )
                return f"ok: {got.size} B" + (" verified" if got.verified else "")
        result = tree.download_tree(
            place.driver, key, dest, settings=place.settings, progress=_watch(context)
        )
        return f"ok: {result.files} file(s), {result.bytes} B"

    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        started, where = time.monotonic(), _named(request.artifact)
        try:
            place = self.places.of(request.artifact)
            where = place.url
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
            deleted = outcome.objects
        except Exception as error:  # noqa: BLE001
            self._done("Delete", where, started, "failed")
            return pb.DeleteArtifactResponse(success=False, error=_line(error, where))
        self._done("Delete", where, started, f"ok: {deleted} object(s)")
        return pb.DeleteArtifactResponse(success=True)

    def ListObjects(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        started, where = time.monotonic(), _named(request.artifact)
        try:
            place = self.places.of(request.artifact)
            where = place.url
            folder = tree.as_folder(place.key)
            legacy = legacy_manifest_key(folder)  # older versions kept it under the folder
            keys = [o.key for o in tree.list_all(place.driver, folder) if o.key != legacy]
        except Exception as error:  # noqa: BLE001
            self._done("ListObjects", where, started, "failed")
            return pb.ListObjectsResponse(error=_line(error, where))
        self._done("ListObjects", where, started, f"ok: {len(keys)} object(s)")
        return pb.ListObjectsResponse(objects=keys)

    def IsDirectory(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        started, where = time.monotonic(), _named(request.artifact)
        try:
            place = self.places.of(request.artifact)
            where = place.url
            page = place.driver.list(tree.as_folder(place.key), limit=1)
            folder = bool(page.objects)
        except Exception as error:  # noqa: BLE001
            self._done("IsDirectory", where, started, "failed")
            return pb.IsDirectoryResponse(error=_line(error, where))
        self._done("IsDirectory", where, started, f"ok: {folder}")
        return pb.IsDirectoryResponse(is_directory=folder)

    def GetCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        return pb.GetCapabilitiesResponse(supports_save_stream=True)

    # -- streams -----------------------------------------------------------------------
    def OpenStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        started, where, sent = time.monotonic(), _named(request.artifact), 0
        try:
            place = self.places.of(request.artifact)
            where = place.url
            for chunk in iter_object(place.driver, place.key, settings=place.settings):
                view = memoryview(chunk)
                for at in range(0, len(view), FRAME):
                    if not context.is_active():
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
            stream = _ChunkStream(request_iterator, context)
            if first.chunk:
                stream._pending = memoryview(first.chunk)
            up = upload_stream(
                place.driver,
                place.key,
                stream,  # type: ignore[arg-type]
                settings=place.settings,
                progress=_watch(context),
            )
        except Exception as error:  # noqa: BLE001
            self._done("SaveStream", where, started, "failed")
            return pb.SaveArtifactResponse(success=False, error=_line(error, where))
        self._done("SaveStream", where, started, f"ok: {up.size} B")
        return pb.SaveArtifactResponse(success=True)
