"""The S3 driver (AWS, MinIO, Ceph RGW): object requests on the direct path where it
sends what botocore would (`direct.py`, `route.py`), everything else through botocore
(`sdk.py`), which is loaded only when a request needs it.

Transport choices (the botocore ones are in `sdk.py`):
- Part bodies are file slices read in 1 MiB chunks, not part-sized buffers, so an upload
  holds (parts in flight x 1 MiB) of data, not (parts in flight x part size).
- A GET's connection goes back to the pool once its body is read.
- Every answer is acknowledged at once (TCP_QUICKACK, `wire.ack_at_once`): servers
  that write the headers and a small body separately (Ceph RGW's beast) otherwise hold
  the body until the client's delayed ACK fires, 40 ms later: on every small GET, and
  on every answer with a body on the direct path (Complete, the record's copy, errors).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from argosy.artifacts.drivers.s3.dates import timestamp
from argosy.artifacts.drivers.s3.direct import DIRECT_MAX, Direct, Failure, Signer
from argosy.artifacts.drivers.s3.errors import map_transport, refused
from argosy.artifacts.drivers.s3.multiplex import Multiplexer
from argosy.artifacts.drivers.s3.route import Route, static_route
from argosy.artifacts.drivers.s3.settings import EXPECT_CONTINUE_MIN, S3Settings
from argosy.artifacts.drivers.s3.wire import ack_at_once
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    Conflict,
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

T = TypeVar("T")


def map_error(
    error: BaseException,
    where: str,
    endpoint: str = "",
    *,
    request: str = "",
    phase: str = "answer",
) -> ArtifactError:
    """Any failure of an S3 request in Argosy's tree: botocore's own exceptions through
    `sdk.map_botocore`, every other one through `errors.map_transport`. `request` (the
    S3 operation: `UploadPart 3`) and `phase` name what a timeout waited for."""
    if type(error).__module__.startswith("botocore"):
        # botocore is in use (the error is its own): only then is sdk.py worth loading
        from argosy.artifacts.drivers.s3.sdk import map_botocore

        mapped = map_botocore(error, where, request)
        if mapped is not None:
            return mapped
    return map_transport(error, where, endpoint, request=request, phase=phase)


def _get(start: int, end: int | None) -> str:
    """How messages name a ranged GET."""
    return f"GetObject bytes={start}-{'' if end is None else end}"


def _odd_date(value: Any) -> datetime:
    """A Last-Modified in none of the forms S3 sends, by botocore's parser (`sdk.py`,
    loaded for such a date only)."""
    from argosy.artifacts.drivers.s3.sdk import parse_any_timestamp

    return parse_any_timestamp(value)


def _body(body: Body, size: int) -> Any:
    """Bodies that already know their length and read in large chunks pass through. A
    small buffer goes as bytes: http.client then sends it in the same write as the
    headers (one segment, no Expect), where a file-like body costs a write of its own."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        if size >= EXPECT_CONTINUE_MIN:
            return _Slice(body, size)
        return (
            body
            if isinstance(body, bytes) and len(body) == size
            else bytes(memoryview(body)[:size])
        )
    if not hasattr(body, "__len__"):
        return _Slice(body, size)
    return body


class _Slice:
    """A seekable window onto a file or buffer, read in large chunks so the HTTP layer
    makes few syscalls; botocore sees a file-like body with a length."""

    CHUNK = 1 << 20

    def __init__(self, body: Body, size: int) -> None:
        self._body: Any = body
        self._size = size
        self._pos = 0
        self._origin = (
            body.tell()
            if hasattr(body, "tell") and not isinstance(body, (bytes, bytearray, memoryview))
            else 0
        )

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = {0: offset, 1: self._pos + offset, 2: self._size + offset}[whence]
        return self._pos

    def read(self, amount: int = -1) -> bytes | memoryview:
        remaining = self._size - self._pos
        if remaining <= 0:
            return b""
        count = (
            remaining if amount is None or amount < 0 else min(remaining, max(amount, self.CHUNK))
        )
        data: bytes | memoryview
        if isinstance(self._body, (bytes, bytearray, memoryview)):
            # a view, not a copy: the hashing and the socket take any buffer, and a copy
            # per read of every streamed part cost CPU and, freed by other threads, RSS
            data = memoryview(self._body)[self._pos : self._pos + count]
        else:
            self._body.seek(self._origin + self._pos)
            data = self._body.read(count)
        self._pos += len(data)
        return data


class S3ReadStream:
    """A GET's body: a direct answer (`wire.Response`, which receives straight into the
    caller's buffer) or botocore's. urllib3 2's `readinto` reads into a fresh bytes
    object and copies it (two extra copies of every byte); when botocore's body is not
    content-encoded we read from the underlying `http.client` response instead. The
    engine checks the byte count either way.

    Once the body has been read to its end the connection goes back to the pool (urllib3
    would only do that on its own read path); a body closed early drops its connection.
    `info` describes the object as this GET's headers saw it; `where` (its URL) names it
    in the error of a body that breaks off."""

    def __init__(
        self,
        body: Any,
        start: int,
        end: int,
        total: int,
        etag: str,
        info: ObjectInfo,
        *,
        where: str = "reading an object",
        endpoint: str = "",
        request: str = "GetObject",
    ) -> None:
        self._body = body
        self.start, self.end, self.total, self.etag = start, end, total, etag
        self.info = info
        self._where, self._endpoint, self._request = where, endpoint, request
        raw = getattr(body, "_raw_stream", None)
        self._raw = raw
        direct = getattr(raw, "_fp", None)
        encoded = raw is not None and raw.headers.get("content-encoding") not in (
            None,
            "",
            "identity",
        )
        self._direct = (
            direct if direct is not None and hasattr(direct, "readinto") and not encoded else None
        )
        ack_at_once(getattr(getattr(raw, "_connection", None), "sock", None))

    def readinto(self, buffer: memoryview) -> int:
        try:
            if self._direct is not None:
                return int(self._direct.readinto(buffer))
            return int(self._body.readinto(buffer))
        except Exception as error:  # noqa: BLE001 - mapped, never leaked
            raise map_error(
                error, self._where, self._endpoint, request=self._request, phase="body"
            ) from error

    def close(self) -> None:
        finished = self._direct.isclosed() if self._direct is not None else False
        if finished and self._raw is not None:
            self._raw.release_conn()
        self._body.close()


class _Body:
    """A direct GET's answer, shaped as botocore's streaming body."""

    def __init__(self, response: Any) -> None:
        self._raw_stream = response

    def readinto(self, buffer: memoryview) -> int:
        return int(self._raw_stream.readinto(buffer))

    def close(self) -> None:
        self._raw_stream.close()


def _ascii(metadata: Mapping[str, str]) -> bool:
    return all(k.isascii() and v.isascii() for k, v in metadata.items())


class S3Driver:
    scheme = "s3"
    copy_limit = 5 << 30  # CopyObject's limit on AWS; larger objects copy by parts

    def __init__(self, settings: S3Settings, bucket: str, *, client: Any | None = None):
        """`bucket` "": the service alone, for `list_buckets` (through botocore)."""
        if settings.addressing_style not in ("auto", "path", "virtual"):
            raise InvalidSpec(
                f"addressing style must be path or virtual, not {settings.addressing_style!r}"
            )
        self.settings = settings
        self.bucket = bucket
        self._enc = settings.encryption
        self._sdk_client = client
        self._lock = threading.Lock()
        route = static_route(settings, bucket) if client is None and bucket else None
        # on a static route every object request goes direct (`wire`); otherwise only
        # small PUTs and GETs do, on the URL and credentials botocore resolved
        self._wire = route is not None
        if route is None and bucket:
            from argosy.artifacts.drivers.s3.sdk import resolved_route

            route = resolved_route(self._client, settings, bucket)
        self._direct = self._open_direct(route) if route is not None else None

    batch_limit = DIRECT_MAX

    def batch(self, connections: int, memory: int) -> Multiplexer | None:
        """Whole small objects many at once from one thread (`multiplex.py`), on a static
        route; None elsewhere."""
        direct = self._all_direct()
        if direct is None:
            return None
        return Multiplexer(
            direct,
            self._info_from_headers,
            connections=connections,
            memory=memory,
            limit=self.batch_limit,
        )

    def _open_direct(self, route: Route) -> Direct:
        extra = {"x-amz-server-side-encryption": "AES256"} if self._enc.mode == "s3" else {}
        return Direct(
            route.base,
            Signer(route.region, route.credentials),
            extra=extra,
            pool_size=self.settings.max_connections,
            timeout=(self.settings.connect_timeout, self.settings.read_timeout),
            ca_certs=route.ca_certs,
            verify=route.verify,
        )

    @property
    def _client(self) -> Any:
        """botocore's client, made the first time a request needs it."""
        if self._sdk_client is None:
            with self._lock:
                if self._sdk_client is None:
                    from argosy.artifacts.drivers.s3.sdk import make_client

                    self._sdk_client = make_client(self.settings)
        return self._sdk_client

    def _all_direct(self) -> Direct | None:
        return self._direct if self._wire else None

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def bucket_url(self) -> str | None:
        """Where the bucket's object requests go (`https://b.host/` or `http://host/b/`),
        as resolved when the driver was made; None when botocore sends them all."""
        return self._direct.origin + self._direct.path("") if self._direct is not None else None

    @property
    def _endpoint(self) -> str:
        """The server messages name: the direct path's origin, else the endpoint set."""
        return self._direct.origin if self._direct is not None else self.settings.endpoint or ""

    @contextmanager
    def _errors(self, key: str | None = None, request: str = "") -> Iterator[None]:
        """Failures of `request` (the S3 operation, for messages) mapped into the tree."""
        try:
            yield
        except ArtifactError:
            raise
        except Exception as error:  # noqa: BLE001 - mapped through the one table
            raise map_error(
                error,
                self.url(key) if key is not None else f"s3://{self.bucket}",
                self._endpoint,
                request=request,
            ) from error

    def _ask(self, key: str, request: Callable[[], T | Failure], name: str) -> T:
        """One direct request (the S3 operation `name`): its answer, or the error its
        refusal or failure maps to."""
        with self._errors(key, name):
            answer = request()
        if isinstance(answer, Failure):
            raise refused(answer.code, answer.status, answer.message, self.url(key))
        return answer

    @staticmethod
    def _info(key: str, head: Mapping[str, Any]) -> ObjectInfo:
        modified = head.get("LastModified") or datetime.now(UTC)
        return ObjectInfo(
            key=key,
            size=int(head.get("ContentLength", head.get("Size", 0))),
            etag=str(head.get("ETag", "")).strip('"'),
            modified=modified.astimezone(UTC),
            metadata={k.lower(): v for k, v in (head.get("Metadata") or {}).items()},
        )

    @staticmethod
    def _info_from_headers(key: str, size: int, head: Any) -> ObjectInfo:
        modified = head.get("Last-Modified")
        return ObjectInfo(
            key=key,
            size=size,
            etag=str(head.get("ETag", "")).strip('"'),
            modified=timestamp(modified, otherwise=_odd_date).astimezone(UTC)
            if modified
            else datetime.now(UTC),
            metadata={
                k[11:].lower(): v for k, v in head.items() if k.lower().startswith("x-amz-meta-")
            },
        )

    def stat(self, key: str) -> ObjectInfo:
        direct = self._all_direct()
        if direct is not None:
            answer = self._ask(key, lambda: direct.head(key), "HeadObject")
            return self._info_from_headers(
                key, int(answer.headers.get("Content-Length", 0)), answer.headers
            )
        with self._errors(key, "HeadObject"):
            head = self._client.head_object(
                Bucket=self.bucket, Key=key, **self._enc.customer_args()
            )
        return self._info(key, head)

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> S3ReadStream:
        if self._direct is not None and (
            self._wire or (end is not None and end - start < DIRECT_MAX)
        ):
            return self._read_direct(self._direct, key, start, end, if_match)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, **self._enc.customer_args()}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        if if_match:
            args["IfMatch"] = f'"{if_match}"'
        name = _get(start, end)
        with self._errors(key, name):
            resp = self._client.get_object(**args)
        try:
            first, last, total = answered_range(
                resp.get("ContentRange"), int(resp["ContentLength"]), where=self.url(key)
            )
        except IntegrityError:
            resp["Body"].close()
            raise
        etag = str(resp["ETag"]).strip('"')
        info = self._info(key, {**resp, "ContentLength": total})
        return S3ReadStream(
            resp["Body"],
            first,
            last,
            total,
            etag,
            info,
            where=self.url(key),
            endpoint=self._endpoint,
            request=name,
        )

    def _read_direct(
        self, direct: Direct, key: str, start: int, end: int | None, if_match: str | None
    ) -> S3ReadStream:
        headers = {}
        if start or end is not None:
            headers["range"] = f"bytes={start}-{'' if end is None else end}"
        if if_match:
            headers["if-match"] = f'"{if_match}"'
        name = _get(start, end)
        answer = self._ask(key, lambda: direct.get(key, headers), name)
        head = answer.headers
        try:
            first, last, total = answered_range(
                head.get("Content-Range"), int(head.get("Content-Length", "0")), where=self.url(key)
            )
        except IntegrityError:
            answer.release_conn()
            raise
        info = self._info_from_headers(key, total, head)
        return S3ReadStream(
            _Body(answer),
            first,
            last,
            total,
            info.etag,
            info,
            where=self.url(key),
            endpoint=direct.origin,
            request=name,
        )

    def read_described(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, S3ReadStream]:
        """A ranged read whose answer also describes the object: a GET's headers carry
        the size (Content-Range), the ETag and the user metadata a HEAD would give."""
        stream = self.read(key, start=start, end=end)
        return stream.info, stream

    def put(self, key: str, body: Body, *, size: int, metadata: Mapping[str, str]) -> str:
        direct = self._direct
        if (
            direct is not None
            and _ascii(metadata)
            and (
                self._wire or (isinstance(body, bytes) and len(body) == size and size < DIRECT_MAX)
            )
        ):
            return self._ask(
                key, lambda: direct.put(key, _body(body, size), size, metadata), "PutObject"
            )
        with self._errors(key, "PutObject"):
            resp = self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=_body(body, size),
                ContentLength=size,
                Metadata=dict(metadata),
                **self._enc.write_args(),
            )
        return str(resp.get("ETag", "")).strip('"')

    def create_upload(self, key: str, *, metadata: Mapping[str, str]) -> str:
        direct = self._all_direct()
        if direct is not None and _ascii(metadata):
            return self._ask(
                key, lambda: direct.create_upload(key, metadata), "CreateMultipartUpload"
            )
        with self._errors(key, "CreateMultipartUpload"):
            resp = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=dict(metadata), **self._enc.write_args()
            )
        return str(resp["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: Body, *, size: int) -> Part:
        direct = self._all_direct()
        if direct is not None:
            etag = self._ask(
                key,
                lambda: direct.upload_part(key, upload_id, number, _body(body, size), size),
                f"UploadPart {number}",
            )
            return Part(number, etag, size)
        with self._errors(key, f"UploadPart {number}"):
            resp = self._client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=_body(body, size),
                ContentLength=size,
                **self._enc.customer_args(),
            )
        return Part(number, str(resp["ETag"]).strip('"'), size)

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str:
        direct = self._all_direct()
        if direct is not None:
            numbered = [(p.number, p.etag) for p in parts]
            etag = self._ask(
                key, lambda: direct.complete(key, upload_id, numbered), "CompleteMultipartUpload"
            )
        else:
            with self._errors(key, "CompleteMultipartUpload"):
                resp = self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in parts]
                    },
                )
            etag = str(resp.get("ETag") or "").strip('"')
        if not etag:  # Ceph RGW 16 answers an empty ETag; HEAD has the right one
            etag = self.stat(key).etag
        return etag

    def abort_upload(self, key: str, upload_id: str) -> None:
        direct = self._all_direct()
        if direct is not None:
            self._ask(key, lambda: direct.abort(key, upload_id), "AbortMultipartUpload")
            return
        with self._errors(key, "AbortMultipartUpload"):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        parts: list[Part] = []
        marker = 0
        with self._errors(key, "ListParts"):
            while True:
                resp = self._client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
                parts += [
                    Part(int(p["PartNumber"]), str(p["ETag"]).strip('"'), int(p["Size"]))
                    for p in resp.get("Parts", [])
                ]
                if not resp.get("IsTruncated"):
                    return parts
                marker = int(resp["NextPartNumberMarker"])

    def list(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        direct = self._all_direct()
        if direct is not None:
            page = self._ask(
                prefix,
                lambda: direct.list_objects(prefix, delimiter=delimiter, token=token, limit=limit),
                "ListObjectsV2",
            )
            return ListPage(
                [
                    ObjectInfo(
                        key=key,
                        size=size,
                        etag=etag,
                        modified=timestamp(modified, otherwise=_odd_date).astimezone(UTC)
                        if modified
                        else datetime.now(UTC),
                    )
                    for key, size, etag, modified in page.objects
                ],
                page.prefixes,
                page.next_token,
            )
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": limit}
        if delimiter:
            args["Delimiter"] = delimiter
        if token:
            args["ContinuationToken"] = token
        with self._errors(prefix, "ListObjectsV2"):
            resp = self._client.list_objects_v2(**args)
        objects = [self._info(o["Key"], o) for o in resp.get("Contents", [])]
        prefixes = [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        return ListPage(
            objects,
            prefixes,
            resp.get("NextContinuationToken") if resp.get("IsTruncated") else None,
        )

    def list_uploads(self, prefix: str = "") -> builtins.list[UploadInfo]:
        uploads: builtins.list[UploadInfo] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        with self._errors(prefix, "ListMultipartUploads"):
            while True:
                resp = self._client.list_multipart_uploads(**args)
                uploads += [
                    UploadInfo(u["Key"], u["UploadId"], u["Initiated"])
                    for u in resp.get("Uploads", [])
                ]
                if not resp.get("IsTruncated"):
                    return uploads
                args["KeyMarker"] = resp["NextKeyMarker"]
                args["UploadIdMarker"] = resp["NextUploadIdMarker"]

    def delete(self, keys: Sequence[str]) -> builtins.list[DeleteFailure]:
        if not keys:
            return []
        if len(keys) > 1000:
            raise InvalidSpec("a batch delete takes at most 1000 keys")
        body = {"Objects": [{"Key": k} for k in keys], "Quiet": True}
        with self._errors(keys[0], "DeleteObjects"):
            resp = self._client.delete_objects(Bucket=self.bucket, Delete=body)
        return [
            DeleteFailure(e["Key"], e.get("Code", ""), e.get("Message", ""))
            for e in resp.get("Errors", [])
            if e.get("Code") != "NoSuchKey"
        ]

    def replace_metadata(self, key: str, metadata: Mapping[str, str], *, if_match: str) -> str:
        # CopySourceIfMatch is the real guard; the HEAD first also covers servers that
        # ignore the condition (moto).
        if self.stat(key).etag != if_match:
            raise PreconditionFailed(f"{self.url(key)} changed before its metadata was set")
        direct = self._all_direct()
        if direct is not None and _ascii(metadata):
            source = f"{self.bucket}/{key}"
            return self._ask(
                key, lambda: direct.copy_in_place(key, source, metadata, if_match), "CopyObject"
            )
        with self._errors(key, "CopyObject"):
            resp = self._client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceIfMatch=f'"{if_match}"',
                MetadataDirective="REPLACE",
                Metadata=dict(metadata),
                **self._enc.write_args(),
                **self._enc.copy_source_args(),
            )
        return str(resp.get("CopyObjectResult", {}).get("ETag", "")).strip('"')

    def copy_part(
        self, key: str, upload_id: str, number: int, *, start: int, end: int, if_match: str
    ) -> Part:
        direct = self._all_direct()
        if direct is not None:
            source = f"{self.bucket}/{key}"
            etag = self._ask(
                key,
                lambda: direct.copy_part(key, upload_id, number, source, start, end, if_match),
                f"UploadPartCopy {number}",
            )
            return Part(number, etag, end - start + 1)
        with self._errors(key, f"UploadPartCopy {number}"):
            resp = self._client.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": key},
                CopySourceRange=f"bytes={start}-{end}",
                CopySourceIfMatch=f'"{if_match}"',
                **self._enc.customer_args(),
                **self._enc.copy_source_args(),
            )
        return Part(number, str(resp["CopyPartResult"]["ETag"]).strip('"'), end - start + 1)

    def create_bucket(self) -> bool:
        """HEAD first: an existing bucket these credentials reach is left as it is (a
        second CreateBucket is not harmless everywhere: on AWS us-east-1 it answers 200
        and resets the bucket's ACL)."""
        try:
            with self._errors(None, "HeadBucket"):
                self._client.head_bucket(Bucket=self.bucket)
            return False
        except NotFound:
            pass
        except AccessDenied as error:
            raise AccessDenied(
                f"s3://{self.bucket}: the bucket exists but these credentials may not use it "
                f"(another account's, or refused credentials) ({error.code})",
                code=error.code,
            ) from None
        args: dict[str, Any] = {"Bucket": self.bucket}
        region = self.settings.region
        if self.settings.endpoint is None and region and region != "us-east-1":
            # AWS wants the region named (as `aws s3 mb` does); other servers take none
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            with self._errors(None, "CreateBucket"):
                self._client.create_bucket(**args)
        except Conflict as error:
            if error.code == "BucketAlreadyOwnedByYou":
                return False
            raise
        return True

    def list_buckets(self) -> builtins.list[BucketInfo]:
        with self._errors(None, "ListBuckets"):
            resp = self._client.list_buckets()
        return sorted(
            (
                BucketInfo(
                    str(b["Name"]),
                    b["CreationDate"].astimezone(UTC) if b.get("CreationDate") else None,
                )
                for b in resp.get("Buckets", [])
            ),
            key=lambda b: b.name,
        )
