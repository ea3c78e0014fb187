"""The OSS driver: the storage protocol's primitives over an oss2 Bucket.

Every PUT and UploadPart is CRC64'd over the very bytes handed to the HTTP layer and
compared with the server's `x-oss-hash-crc64ecma`; Complete compares the whole object's
CRC64 with the parts' combined; a GET of the whole object is checked at its last byte.
Ranged reads are left to the engine's CRC32C record: OSS only sends the whole object's
CRC64. GETs send `x-oss-range-behavior: standard`: by default OSS answers a range that does
not fit the object with the whole object (200), which would read as the wrong bytes.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import oss2.exceptions as ox
from oss2.models import PartInfo

from argosy.artifacts.drivers.oss.client import make_bucket, make_service
from argosy.artifacts.drivers.oss.crc import crc64_combine, require_crc_extension
from argosy.artifacts.drivers.oss.errors import map_error
from argosy.artifacts.drivers.oss.lifecycle import check_days, merge_rule
from argosy.artifacts.drivers.oss.settings import OssSettings
from argosy.artifacts.drivers.oss.streams import Crc64Body, OssReadStream
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    NotFound,
    PreconditionFailed,
)
from argosy.artifacts.protocol import (
    Body,
    BucketInfo,
    DeleteFailure,
    ListPage,
    ObjectInfo,
    Part,
    UploadInfo,
    answered_range,
)

log = logging.getLogger("argosy.oss")

_META = "x-oss-meta-"
_STANDARD_RANGES = {"x-oss-range-behavior": "standard"}


@dataclass(frozen=True)
class OssPart(Part):
    """A part as this driver uploaded it: with the CRC64 the server confirmed, so Complete
    can check the whole object. Parts listed from the server carry none."""

    crc64: int | None = None


def _when(unix: int | float | None) -> datetime:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else datetime.now(UTC)


def _meta_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    return {_META + k.lower(): v for k, v in metadata.items()}


class _NoBucket:
    """The client of a driver opened for the service alone: any bucket request is bad input."""

    def __getattr__(self, name: str) -> Any:
        raise InvalidSpec("an OSS URL needs a bucket: oss://BUCKET/KEY")


class OssDriver:
    scheme = "oss"
    copy_limit = 1_000_000_000  # CopyObject copies objects under 1 GB; larger copy by parts

    def __init__(
        self,
        settings: OssSettings,
        bucket: str,
        *,
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`client`: an oss2 Bucket to use instead of one built from `settings`; `clock`
        (Unix seconds): when STS credentials need refreshing. `bucket` "": the service
        alone, for `list_buckets`."""
        require_crc_extension()
        self.settings = settings
        self.bucket = bucket
        self._clock = clock
        with self._errors():  # oss2 checks the bucket's name here
            self._client = (
                client
                if client is not None
                else make_bucket(settings, bucket, clock=clock)
                if bucket
                else _NoBucket()
            )
        self._prepared = False
        self._prepare_lock = threading.Lock()

    def url(self, key: str) -> str:
        return f"oss://{self.bucket}/{key}"

    @contextmanager
    def _errors(self, key: str | None = None, request: str = "") -> Iterator[None]:
        """Failures of `request` (the OSS operation, for messages) mapped into the tree."""
        try:
            yield
        except ArtifactError:
            raise
        except Exception as error:  # noqa: BLE001 - mapped through the one table
            where = self.url(key) if key is not None else f"oss://{self.bucket}"
            raise map_error(error, where, self.settings.endpoint or "", request=request) from error

    def _before_write(self) -> None:
        """createBucketIfNotPresent and the lifecycle rule, once per driver."""
        if self._prepared:
            return
        with self._prepare_lock:
            if self._prepared:
                return
            if self.settings.create_bucket_if_not_present:
                self._create_if_missing()
            rule = self.settings.lifecycle
            if rule is not None:
                self.merge_lifecycle(
                    rule.mark_infrequent_access_after_days,
                    rule.mark_deletion_after_days,
                    prefix=rule.prefix,
                )
            self._prepared = True

    def _check_crc(self, key: str, what: str, sent: int, result: Any) -> None:
        if result.crc is not None and int(result.crc) != sent:
            raise IntegrityError(
                f"{self.url(key)}: {what}: CRC64 of the bytes sent "
                f"({sent:016x}) differs from the server's "
                f"({int(result.crc):016x})",
                code="Crc64Mismatch",
            )

    def _discard_corrupt(self, key: str, error: IntegrityError) -> IntegrityError:
        """An object whose bytes are known wrong is not left under its key."""
        try:
            with self._errors(key, "DeleteObject"):
                self._client.delete_object(key)
            return IntegrityError(f"{error}; the object was deleted", code=error.code)
        except ArtifactError as delete_error:
            return IntegrityError(
                f"{error}; deleting it failed too ({delete_error})", code=error.code
            )

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key, "HeadObject"):
            head = self._client.head_object(key)
        return ObjectInfo(
            key=key,
            size=int(head.content_length or 0),
            etag=str(head.etag or "").strip('"'),
            modified=_when(head.last_modified),
            metadata={
                k.lower()[len(_META) :]: v
                for k, v in head.headers.items()
                if k.lower().startswith(_META)
            },
        )

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> OssReadStream:
        headers = dict(_STANDARD_RANGES)
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        byte_range = (start, end) if start or end is not None else None
        request = f"GetObject bytes={start}-{'' if end is None else end}"
        with self._errors(key, request):
            result = self._client.get_object(key, byte_range=byte_range, headers=headers)
        try:
            first, last, total = answered_range(
                result.content_range, int(result.content_length or 0), where=self.url(key)
            )
        except IntegrityError:
            result.resp.response.close()
            raise
        whole = first == 0 and last == total - 1
        server_crc = result.headers.get("x-oss-hash-crc64ecma")
        return OssReadStream(
            result,
            first,
            last,
            total,
            str(result.etag or "").strip('"'),
            int(server_crc) if whole and server_crc else None,
            self.url(key),
            endpoint=self.settings.endpoint or "",
            request=request,
        )

    def put(self, key: str, body: Body, *, size: int, metadata: Mapping[str, str]) -> str:
        self._before_write()
        sent = Crc64Body(body, size)
        with self._errors(key, "PutObject"):
            result = self._client.put_object(key, sent, headers=_meta_headers(metadata))
        try:
            self._check_crc(key, "put", sent.crc, result)
        except IntegrityError as error:
            raise self._discard_corrupt(key, error) from None
        return str(result.etag or "").strip('"')

    def create_upload(self, key: str, *, metadata: Mapping[str, str]) -> str:
        self._before_write()
        with self._errors(key, "InitiateMultipartUpload"):
            result = self._client.init_multipart_upload(key, headers=_meta_headers(metadata))
        return str(result.upload_id)

    def upload_part(
        self, key: str, upload_id: str, number: int, body: Body, *, size: int
    ) -> OssPart:
        sent = Crc64Body(body, size)
        with self._errors(key, f"UploadPart {number}"):
            result = self._client.upload_part(key, upload_id, number, sent)
        self._check_crc(key, f"part {number}", sent.crc, result)
        return OssPart(number, str(result.etag).strip('"'), size, crc64=sent.crc)

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str:
        with self._errors(key, "CompleteMultipartUpload"):
            result = self._client.complete_multipart_upload(
                key, upload_id, [PartInfo(p.number, p.etag) for p in parts]
            )
        crcs = [p.crc64 for p in parts if isinstance(p, OssPart)]
        if len(crcs) == len(parts) and all(c is not None for c in crcs):
            whole = 0
            for part in sorted(parts, key=lambda p: p.number):
                whole = crc64_combine(whole, part.crc64, part.size)  # type: ignore[attr-defined]
            try:
                self._check_crc(key, "complete", whole, result)
            except IntegrityError as error:
                raise self._discard_corrupt(key, error) from None
        return str(result.etag or "").strip('"') or self.stat(key).etag

    def made_of(self, key: str, parts: Sequence[Part]) -> bool | None:
        """Whether the object under `key` is the one completing `parts` made: its size and
        the CRC64 OSS records for it against the parts' own, combined (OSS promises no
        formula for a multipart object's ETag). None when a part carries no CRC64."""
        crcs = [p.crc64 if isinstance(p, OssPart) else None for p in parts]
        if not parts or any(crc is None for crc in crcs):
            return None
        whole = 0
        for part in sorted(parts, key=lambda p: p.number):
            whole = crc64_combine(whole, part.crc64, part.size)  # type: ignore[attr-defined]
        with self._errors(key, "HeadObject"):
            head = self._client.head_object(key)
        stored = head.headers.get("x-oss-hash-crc64ecma")
        if not stored:
            return None
        return int(stored) == whole and int(head.content_length or 0) == sum(p.size for p in parts)

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._errors(key, "AbortMultipartUpload"):
            self._client.abort_multipart_upload(key, upload_id)

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """The server's parts, with the CRC64 it lists for each (oss2's own ListParts drops
        it), so that a resumed upload is still checked whole at Complete."""
        parts: list[Part] = []
        marker = "0"
        with self._errors(key, "ListParts"):
            while True:
                answer = self._client._do(
                    "GET",
                    self.bucket,
                    key,
                    params={
                        "uploadId": upload_id,
                        "part-number-marker": marker,
                        "max-parts": "1000",
                    },
                )
                root = ET.fromstring(answer.read())
                for node in root.findall("Part"):
                    crc = node.findtext("HashCrc64ecma")
                    parts.append(
                        OssPart(
                            int(node.findtext("PartNumber") or 0),
                            (node.findtext("ETag") or "").strip('"'),
                            int(node.findtext("Size") or 0),
                            crc64=int(crc) if crc else None,
                        )
                    )
                if (root.findtext("IsTruncated") or "").strip().lower() != "true":
                    return parts
                marker = root.findtext("NextPartNumberMarker") or ""

    def list(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        with self._errors(prefix, "ListObjectsV2"):
            result = self._client.list_objects_v2(
                prefix=prefix,
                delimiter=delimiter or "",
                continuation_token=token or "",
                max_keys=limit,
            )
        objects = [
            ObjectInfo(o.key, int(o.size), str(o.etag).strip('"'), _when(o.last_modified))
            for o in result.object_list
        ]
        token = result.next_continuation_token if result.is_truncated else None
        return ListPage(objects, list(result.prefix_list), token or None)

    def list_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        uploads: builtins.list[UploadInfo] = []
        key_marker = upload_marker = ""
        with self._errors(prefix, "ListMultipartUploads"):
            while True:
                result = self._client.list_multipart_uploads(
                    prefix=prefix, key_marker=key_marker, upload_id_marker=upload_marker
                )
                uploads += [
                    UploadInfo(u.key, u.upload_id, _when(u.initiation_date))
                    for u in result.upload_list
                ]
                if not result.is_truncated:
                    return uploads
                key_marker = result.next_key_marker
                upload_marker = result.next_upload_id_marker

    def delete(self, keys: Sequence[str]) -> builtins.list[DeleteFailure]:
        if not keys:
            return []
        if len(keys) > 1000:
            raise InvalidSpec("a batch delete takes at most 1000 keys")
        with self._errors(keys[0], "DeleteMultipleObjects"):
            result = self._client.batch_delete_objects(builtins.list(keys))
        # OSS lists every key it was asked to delete, missing ones included
        deleted = set(result.deleted_keys)
        return [
            DeleteFailure(k, "NotDeleted", "the server did not report it deleted")
            for k in keys
            if k not in deleted
        ]

    def replace_metadata(self, key: str, metadata: Mapping[str, str], *, if_match: str) -> str:
        # x-oss-copy-source-if-match is the real guard; the HEAD first also covers servers
        # that ignore the condition, and gives the Content-Type to keep.
        with self._errors(key, "HeadObject"):
            head = self._client.head_object(key)
        if str(head.etag or "").strip('"') != if_match:
            raise PreconditionFailed(f"{self.url(key)} changed before its metadata was set")
        headers = {
            "x-oss-metadata-directive": "REPLACE",
            "x-oss-copy-source-if-match": f'"{if_match}"',
            **_meta_headers(metadata),
        }
        if head.content_type:
            headers["Content-Type"] = head.content_type
        with self._errors(key, "CopyObject"):
            result = self._client.copy_object(self.bucket, key, key, headers=headers)
            body = result.resp.read()  # CopyObjectResult; reading it frees the connection
        etag = result.etag or (ET.fromstring(body).findtext("ETag") if body else None)
        return str(etag or "").strip('"')

    def copy_part(
        self, key: str, upload_id: str, number: int, *, start: int, end: int, if_match: str
    ) -> OssPart:
        """UploadPartCopy of bytes `start..end` of the object itself, pinned to `if_match`
        (412 -> PreconditionFailed). The part carries the CRC64 the server reports for it,
        when it reports one, so that Complete still checks the whole object."""
        headers = {"x-oss-copy-source-if-match": f'"{if_match}"'}
        with self._errors(key, f"UploadPartCopy {number}"):
            result = self._client.upload_part_copy(
                self.bucket, key, (start, end), key, upload_id, number, headers=headers
            )
            body = result.resp.read()  # CopyPartResult; reading it frees the connection
        etag = result.etag
        if not etag and body:
            try:
                etag = ET.fromstring(body).findtext("ETag")
            except ET.ParseError:
                etag = None
        if not etag:
            raise IntegrityError(
                f"{self.url(key)}: the copy of part {number} was answered without an ETag",
                code="NoETag",
            )
        crc = result.headers.get("x-oss-hash-crc64ecma")
        return OssPart(
            number, str(etag).strip('"'), end - start + 1, crc64=int(crc) if crc else None
        )

    def _create_if_missing(self) -> None:
        """createBucketIfNotPresent: create the bucket if it is missing. Refused for lack
        of permission is not an error here: the write that follows tells whether the
        bucket exists."""
        with self._errors(None, "PutBucket"):
            try:
                self._client.create_bucket()
            except ox.ServerError as error:
                if error.code in ("BucketAlreadyExists", "AccessDenied"):
                    log.debug("create bucket %s: %s", self.bucket, error.code)
                    return
                raise

    def create_bucket(self) -> bool:
        """GetBucketInfo first: OSS answers a second PutBucket of one's own bucket with
        BucketAlreadyExists, as it does for a name someone else holds."""
        try:
            with self._errors(None, "GetBucketInfo"):
                self._client.get_bucket_info()
            return False
        except NotFound:
            pass
        except AccessDenied as error:
            raise AccessDenied(
                f"oss://{self.bucket}: the bucket exists but these credentials may not use it "
                f"(another account's, or refused credentials) ({error.code})",
                code=error.code,
            ) from None
        with self._errors(None, "PutBucket"):
            self._client.create_bucket()
        return True

    def list_buckets(self) -> builtins.list[BucketInfo]:
        found: builtins.list[BucketInfo] = []
        marker = ""
        with self._errors(None, "ListBuckets"):
            service = make_service(self.settings, clock=self._clock)
            while True:
                result = service.list_buckets(marker=marker, max_keys=1000)
                found += [
                    BucketInfo(b.name, _when(b.creation_date) if b.creation_date else None)
                    for b in result.buckets
                ]
                if not result.is_truncated:
                    return sorted(found, key=lambda b: b.name)
                marker = result.next_marker

    def merge_lifecycle(
        self,
        mark_infrequent_access_after_days: int | None,
        mark_deletion_after_days: int | None,
        *,
        prefix: str = "",
    ) -> None:
        """Set Argosy's own lifecycle rule (`lifecycle.LIFECYCLE_RULE_ID`), keeping every
        other rule of the bucket as it was (Argo replaces them all). Both None removes it."""
        ia, expire = mark_infrequent_access_after_days, mark_deletion_after_days
        check_days(ia, expire)
        with self._errors(None, "PutBucketLifecycle"):
            try:
                current: bytes | None = self._client._do(
                    "GET", self.bucket, "", params={"lifecycle": ""}
                ).read()
            except ox.NoSuchLifecycle:
                current = None
            document = merge_rule(current, prefix=prefix, ia=ia, expire=expire)
            if document is not None:
                self._client.put_bucket_lifecycle(document)
            else:
                self._client.delete_bucket_lifecycle()
