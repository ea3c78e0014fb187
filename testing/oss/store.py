"""On-disk bucket/object/multipart storage behind the OSS test server.

Objects are written to disk while their request body streams in (a 2 GiB
object never sits in memory) and served back from the file.  Each stored
version gets its own immutable data file named by a UUID, so an overwrite or
delete never disturbs a GET that already opened the previous file (POSIX keeps
an unlinked open file readable).  Metadata is kept in memory (a dict plus a
sorted key list for listings) and mirrored to one JSON file per object, so a
server restarted on the same directory sees the same buckets, objects,
lifecycle rules and in-progress multipart uploads.

Layout under ``root``::

    <bucket>/bucket.json            creation time, ACL, lifecycle XML
    <bucket>/meta/<sha1(key)>.json  one object's metadata
    <bucket>/data/<uuid>            one object's bytes
    <bucket>/uploads/<id>/          upload.json, part-<n>.json and part data files
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .crc import crc64, crc64_of_parts
from .xml import OssError

MIN_PART_SIZE = 100 * 1024
MAX_PARTS = 10000
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass
class ObjectMeta:
    key: str
    size: int
    etag: str  # upper-case hex, "-N" suffix for multipart, no quotes
    crc64: int
    content_type: str
    last_modified: float
    object_type: str  # "Normal" or "Multipart"
    data_file: str
    content_md5: str | None = None
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class PartMeta:
    number: int
    size: int
    etag: str
    crc64: int
    last_modified: float
    data_file: str


@dataclass
class Upload:
    upload_id: str
    key: str
    initiated: float
    content_type: str
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    parts: dict[int, PartMeta] = field(default_factory=dict)


@dataclass
class Bucket:
    name: str
    created: float
    acl: str = "private"
    lifecycle: str | None = None
    objects: dict[str, ObjectMeta] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    uploads: dict[str, Upload] = field(default_factory=dict)


@dataclass
class Received:
    """A request body now on disk, with the digests OSS reports for it."""

    path: Path
    size: int
    md5: bytes
    crc64: int


@dataclass
class Listing:
    entries: list[ObjectMeta]
    prefixes: list[str]
    truncated: bool
    next_marker: str


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


class Store:
    """Thread-safe storage; metadata changes happen under one lock, data I/O outside it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.buckets: dict[str, Bucket] = {}
        self._load()

    # -- persistence --------------------------------------------------------------------------
    def _load(self) -> None:
        for bucket_dir in sorted(self.root.iterdir()):
            info_path = bucket_dir / "bucket.json"
            if not info_path.is_file():
                continue
            for sub in ("meta", "data", "uploads"):
                (bucket_dir / sub).mkdir(exist_ok=True)
            info = json.loads(info_path.read_text(encoding="utf-8"))
            bucket = Bucket(
                info["name"], info["created"], info.get("acl", "private"), info.get("lifecycle")
            )
            for meta_path in (bucket_dir / "meta").glob("*.json"):
                meta = ObjectMeta(**json.loads(meta_path.read_text(encoding="utf-8")))
                bucket.objects[meta.key] = meta
            bucket.keys = sorted(bucket.objects)
            live = {m.data_file for m in bucket.objects.values()}
            for data in (bucket_dir / "data").iterdir():
                if data.name not in live:
                    _unlink(data)  # left by an interrupted upload
            for upload_dir in (bucket_dir / "uploads").iterdir():
                self._load_upload(bucket, upload_dir)
            self.buckets[bucket.name] = bucket

    def _load_upload(self, bucket: Bucket, upload_dir: Path) -> None:
        raw = json.loads((upload_dir / "upload.json").read_text(encoding="utf-8"))
        upload = Upload(**{k: v for k, v in raw.items() if k != "parts"})
        for part_path in upload_dir.glob("part-*.json"):
            part = PartMeta(**json.loads(part_path.read_text(encoding="utf-8")))
            upload.parts[part.number] = part
        bucket.uploads[upload.upload_id] = upload

    def _dir(self, bucket: str) -> Path:
        return self.root / bucket

    def _save_bucket(self, bucket: Bucket) -> None:
        _write_json(
            self._dir(bucket.name) / "bucket.json",
            {
                "name": bucket.name,
                "created": bucket.created,
                "acl": bucket.acl,
                "lifecycle": bucket.lifecycle,
            },
        )

    def _meta_path(self, bucket: str, key: str) -> Path:
        return self._dir(bucket) / "meta" / (hashlib.sha1(key.encode()).hexdigest() + ".json")

    # -- buckets ------------------------------------------------------------------------------
    def bucket(self, name: str) -> Bucket:
        with self.lock:
            found = self.buckets.get(name)
        if found is None:
            raise OssError("NoSuchBucket", extra={"BucketName": name})
        return found

    def create_bucket(self, name: str, acl: str = "private", exist_ok: bool = False) -> Bucket:
        if not _BUCKET_NAME.match(name):
            raise OssError("InvalidBucketName", extra={"BucketName": name})
        with self.lock:
            if name in self.buckets:
                if exist_ok:
                    return self.buckets[name]
                raise OssError("BucketAlreadyExists", extra={"BucketName": name})
            for sub in ("meta", "data", "uploads"):
                (self._dir(name) / sub).mkdir(parents=True, exist_ok=True)
            bucket = Bucket(name, time.time(), acl)
            self._save_bucket(bucket)
            self.buckets[name] = bucket
            return bucket

    def delete_bucket(self, name: str) -> None:
        with self.lock:
            bucket = self.bucket(name)
            if bucket.objects or bucket.uploads:
                raise OssError("BucketNotEmpty", extra={"BucketName": name})
            del self.buckets[name]
            shutil.rmtree(self._dir(name), ignore_errors=True)

    def set_lifecycle(self, name: str, xml_text: str | None) -> None:
        with self.lock:
            bucket = self.bucket(name)
            bucket.lifecycle = xml_text
            self._save_bucket(bucket)

    # -- receiving bodies ---------------------------------------------------------------------
    def receive(
        self,
        bucket: str,
        chunks: Iterable[bytes],
        upload_id: str | None = None,
    ) -> Received:
        """Stream ``chunks`` to a new file, hashing as it goes; the caller commits or drops it."""
        self.bucket(bucket)
        folder = self._dir(bucket) / ("uploads/" + upload_id if upload_id else "data")
        path = folder / uuid.uuid4().hex
        md5 = hashlib.md5()
        crc = 0
        size = 0
        try:
            out = open(path, "wb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError as exc:  # aborted (or bucket deleted) meanwhile
            raise (
                OssError("NoSuchUpload", extra={"UploadId": upload_id})
                if upload_id
                else OssError("NoSuchBucket", extra={"BucketName": bucket})
            ) from exc
        try:
            with out:
                for chunk in chunks:
                    md5.update(chunk)
                    crc = crc64(chunk, crc)
                    size += len(chunk)
                    out.write(chunk)
        except BaseException:
            _unlink(path)
            raise
        return Received(path, size, md5.digest(), crc)

    # -- objects ------------------------------------------------------------------------------
    def commit_object(
        self, bucket_name: str, meta: ObjectMeta, forbid_overwrite: bool = False
    ) -> None:
        data = self._dir(bucket_name) / "data" / meta.data_file
        with self.lock:
            bucket = self.buckets.get(bucket_name)
            if bucket is None or (forbid_overwrite and meta.key in bucket.objects):
                _unlink(data)
                raise OssError("NoSuchBucket" if bucket is None else "FileAlreadyExists")
            _write_json(self._meta_path(bucket_name, meta.key), dataclasses.asdict(meta))
            old = bucket.objects.get(meta.key)
            bucket.objects[meta.key] = meta
            if old is None:
                bisect.insort(bucket.keys, meta.key)
            else:
                _unlink(self._dir(bucket_name) / "data" / old.data_file)

    def head(self, bucket_name: str, key: str) -> ObjectMeta:
        with self.lock:
            meta = self.bucket(bucket_name).objects.get(key)
        if meta is None:
            raise OssError("NoSuchKey", extra={"Key": key})
        return meta

    def open_object(self, bucket_name: str, key: str) -> tuple[ObjectMeta, BinaryIO]:
        with self.lock:  # open under the lock so the file cannot be replaced in between
            meta = self.head(bucket_name, key)
            return meta, open(self._dir(bucket_name) / "data" / meta.data_file, "rb")

    def link_copy(self, source_bucket: str, source: ObjectMeta, target_bucket: str) -> str:
        """A new data file sharing the source's bytes (hard link; data files never change)."""
        name = uuid.uuid4().hex
        with self.lock:
            os.link(
                self._dir(source_bucket) / "data" / source.data_file,
                self._dir(target_bucket) / "data" / name,
            )
        return name

    def delete(self, bucket_name: str, key: str) -> bool:
        with self.lock:
            bucket = self.bucket(bucket_name)
            meta = bucket.objects.pop(key, None)
            if meta is None:
                return False
            del bucket.keys[bisect.bisect_left(bucket.keys, key)]
            _unlink(self._meta_path(bucket_name, key))
            _unlink(self._dir(bucket_name) / "data" / meta.data_file)
            return True

    def list_keys(
        self, bucket_name: str, prefix: str, delimiter: str, marker: str, max_keys: int
    ) -> Listing:
        """Keys after ``marker`` under ``prefix``; ``delimiter`` rolls keys into prefixes."""
        with self.lock:
            bucket = self.bucket(bucket_name)
            keys = bucket.keys
            index = max(bisect.bisect_right(keys, marker), bisect.bisect_left(keys, prefix))
            entries: list[ObjectMeta] = []
            prefixes: list[str] = []
            last = ""
            while index < len(keys) and keys[index].startswith(prefix):
                key = keys[index]
                pos = key.find(delimiter, len(prefix)) if delimiter else -1
                common = key[: pos + len(delimiter)] if pos >= 0 else None
                if common is not None and common == marker:
                    index = bisect.bisect_left(keys, common + "\U0010ffff")
                    continue
                if len(entries) + len(prefixes) >= max_keys:
                    return Listing(entries, prefixes, True, last)
                if common is not None:
                    prefixes.append(common)
                    last = common
                    index = bisect.bisect_left(keys, common + "\U0010ffff")
                else:
                    entries.append(bucket.objects[key])
                    last = key
                    index += 1
            return Listing(entries, prefixes, False, "")

    # -- multipart ----------------------------------------------------------------------------
    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        return self._dir(bucket) / "uploads" / upload_id

    def upload(self, bucket_name: str, key: str, upload_id: str) -> Upload:
        with self.lock:
            upload = self.bucket(bucket_name).uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise OssError("NoSuchUpload", extra={"UploadId": upload_id})
        return upload

    def initiate(
        self,
        bucket_name: str,
        key: str,
        content_type: str,
        user_meta: dict[str, str],
        headers: dict[str, str],
    ) -> Upload:
        upload_id = f"{time.time_ns():016X}{uuid.uuid4().hex[:16].upper()}"
        upload = Upload(upload_id, key, time.time(), content_type, user_meta, headers)
        with self.lock:
            bucket = self.bucket(bucket_name)
            folder = self._upload_dir(bucket_name, upload_id)
            folder.mkdir(parents=True)
            raw = dataclasses.asdict(upload)
            raw.pop("parts")
            _write_json(folder / "upload.json", raw)
            bucket.uploads[upload_id] = upload
        return upload

    def commit_part(self, bucket_name: str, upload: Upload, part: PartMeta) -> None:
        folder = self._upload_dir(bucket_name, upload.upload_id)
        with self.lock:
            if upload.upload_id not in self.bucket(bucket_name).uploads:
                _unlink(folder / part.data_file)
                raise OssError("NoSuchUpload", extra={"UploadId": upload.upload_id})
            _write_json(folder / f"part-{part.number}.json", dataclasses.asdict(part))
            old = upload.parts.get(part.number)
            upload.parts[part.number] = part
            if old is not None:
                _unlink(folder / old.data_file)

    def abort(self, bucket_name: str, upload: Upload) -> None:
        with self.lock:
            self.bucket(bucket_name).uploads.pop(upload.upload_id, None)
            shutil.rmtree(self._upload_dir(bucket_name, upload.upload_id), ignore_errors=True)

    def assemble(self, bucket_name: str, upload: Upload, chosen: list[PartMeta]) -> ObjectMeta:
        """Concatenate the chosen parts into a new object data file (not yet committed)."""
        folder = self._upload_dir(bucket_name, upload.upload_id)
        name = uuid.uuid4().hex
        target = self._dir(bucket_name) / "data" / name
        try:
            with open(target, "wb") as out:
                for part in chosen:
                    with open(folder / part.data_file, "rb") as src:
                        _copy(src, out, part.size)
        except FileNotFoundError as exc:
            _unlink(target)
            raise OssError("InvalidPart", extra={"UploadId": upload.upload_id}) from exc
        md5s = b"".join(bytes.fromhex(p.etag) for p in chosen)
        etag = f"{hashlib.md5(md5s).hexdigest().upper()}-{len(chosen)}"
        return ObjectMeta(
            upload.key,
            sum(p.size for p in chosen),
            etag,
            crc64_of_parts((p.crc64, p.size) for p in chosen),
            upload.content_type,
            time.time(),
            "Multipart",
            name,
            None,
            dict(upload.user_meta),
            dict(upload.headers),
        )

    def finish_upload(self, bucket_name: str, upload: Upload, meta: ObjectMeta) -> None:
        """Commit an assembled object and forget its upload, unless it was aborted meanwhile."""
        with self.lock:
            bucket = self.bucket(bucket_name)
            if bucket.uploads.get(upload.upload_id) is not upload:
                _unlink(self._dir(bucket_name) / "data" / meta.data_file)
                raise OssError("NoSuchUpload", extra={"UploadId": upload.upload_id})
            self.commit_object(bucket_name, meta)
            self.abort(bucket_name, upload)

    def iter_uploads(self, bucket_name: str) -> Iterator[Upload]:
        with self.lock:
            uploads = sorted(
                self.bucket(bucket_name).uploads.values(), key=lambda u: (u.key, u.upload_id)
            )
        return iter(uploads)


def _copy(src: BinaryIO, out: BinaryIO, size: int) -> None:
    """Append ``size`` bytes of ``src`` to ``out`` in the kernel (copy_file_range)."""
    out.flush()
    copied = 0
    while copied < size:
        sent = os.copy_file_range(src.fileno(), out.fileno(), min(size - copied, 1 << 30))
        if sent == 0:
            raise FileNotFoundError("part shorter than recorded")
        copied += sent
