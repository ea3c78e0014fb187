"""A repository in a local folder: the default when nothing else is configured.

Layout under the root folder (bucket names cannot start with a dot, so nothing clashes):

    ROOT/BUCKET/KEY                      the object's bytes
    ROOT/.argosy-meta/BUCKET/KEY.json    its metadata, and the ETag of the bytes it describes
    ROOT/.argosy-uploads/BUCKET/ID/      parts of an upload in progress, and its key

Objects are written to a temporary file beside their final name and renamed into
place, so a reader never sees half an object.

The ETag is the file's version as the file system shows it, its inode, size and
modification time: a replaced object is a new file (a new inode), and bytes rewritten
in place move the mtime, so a read or a copy pinned by If-Match notices either. The
metadata (with it Argosy's checksum record) belongs to the file, not to that version:
it stays with the object while the file is the one it was written for (the same inode,
or, for a repository copied elsewhere with its times kept, the same size and mtime),
whatever happens to the mtime. So a byte changed in an object Argosy wrote is caught by
the record's checksum when the object is read (IntegrityError), whether or not the
mtime moved; an object replaced by another file loses the record and reads as
unverified, as on S3 when another tool overwrites an object. (An inode number reused by
a file made outside Argosy after the object was removed outside it too could take the
old record: that reads as a mismatch, never as verified.)

Every key and prefix passes one check (`LocalDriver._checked`) before any operation
touches the filesystem, so nothing a key says can reach outside the bucket folder: it
may not be absolute, hold a NUL byte, or have an empty, `.` or `..` segment, and the
path it names, with symbolic links resolved, must lie inside the bucket folder (itself
resolved, so a bucket folder that is a link works). A link inside the bucket to a place
inside it is followed; a link out of it is refused, never followed. Listing does not
follow links at all. The check is made when the operation starts: it guards against
hostile keys, not against someone swapping folders for links under a running command
(whoever can do that can already write the repository). The metadata and upload folders
mirror the checked keys; they are Argosy's own and are not resolved again.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from argosy.artifacts.errors import (
    IntegrityError,
    InvalidSpec,
    LocalIOError,
    NotFound,
    PermanentError,
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
)

_COPY_CHUNK = 1 << 20


def _etag(st: os.stat_result) -> str:
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


def _describes(etag: object, st: os.stat_result) -> bool:
    """Whether metadata written for the version `etag` belongs to the file `st`: the same
    inode (whatever became of its mtime and size), or a copy of that file with its size
    and mtime kept (see the module's docstring)."""
    if not isinstance(etag, str):
        return False
    inode, _, rest = etag.partition("-")
    return inode == f"{st.st_ino:x}" or rest == f"{st.st_size:x}-{st.st_mtime_ns:x}"


def _key_fault(key: str, *, prefix: bool) -> str | None:
    """What makes `key` unfit to name a place in a bucket folder, or None. A prefix may be
    empty (the whole bucket); a key ending in '/' is a folder, as it always was."""
    if not key:
        return None if prefix else "it is empty"
    if "\0" in key:
        return "it holds a NUL byte"
    if key.startswith("/"):
        return "it is absolute"
    segments = key.split("/")
    if any(s in (".", "..") for s in segments):
        return "it has a '.' or '..' segment"
    if "" in segments[:-1]:
        return "it has an empty segment"
    return None


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path`, its links resolved, lies in `folder` (its links resolved too)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder))


class LocalFileStream:
    """A byte range of a repository file. A read the disk fails (EIO, say) is a
    LocalIOError naming the object (`where`), not a bare OSError."""

    def __init__(
        self,
        handle: io.BufferedReader,
        start: int,
        end: int,
        total: int,
        etag: str,
        where: str = "a local:// object",
    ):
        self._handle = handle
        self._remaining = end - start + 1
        self._where = where
        self.start, self.end, self.total, self.etag = start, end, total, etag

    def readinto(self, buffer: memoryview) -> int:
        if self._remaining <= 0:
            return 0
        view = buffer[: min(len(buffer), self._remaining)]
        with self._failures():
            n = self._handle.readinto(view)
        self._remaining -= n
        return int(n)

    def read(self, amount: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        with self._failures():
            data = self._handle.read(
                self._remaining if amount < 0 else min(amount, self._remaining)
            )
        self._remaining -= len(data)
        return data

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except OSError as error:
            raise LocalIOError(f"cannot read {self._where}: {error.strerror or error}") from None

    def __len__(self) -> int:
        return self.end - self.start + 1

    def close(self) -> None:
        self._handle.close()


class LocalDriver:
    scheme = "local"
    copy_limit = 1 << 62  # replace_metadata rewrites a small file, whatever the size

    def __init__(self, root: str | os.PathLike[str], bucket: str) -> None:
        """`bucket` "": the root alone, for `list_buckets`; every other operation refuses."""
        if bucket.startswith(".") or "/" in bucket or "\0" in bucket:
            raise InvalidSpec(f"invalid bucket name for a local repository: {bucket!r}")
        self.root = Path(root)
        self.bucket = bucket
        self._data = self.root / bucket
        self._meta = self.root / ".argosy-meta" / bucket
        self._uploads = self.root / ".argosy-uploads" / bucket

    def url(self, key: str) -> str:
        return f"local://{self.bucket}/{key}"

    # -- paths -------------------------------------------------------------------------
    def _checked(self, key: str, *, prefix: bool = False) -> Path:
        """The one check every operation makes of its key (or listing prefix) before it
        touches the filesystem, so none can reach outside the bucket folder (see the
        module's docstring). Returns the key's path; for a prefix, the folder its listing
        starts from."""
        self._need_bucket()
        fault = _key_fault(key, prefix=prefix)
        what = "prefix" if prefix else "key"
        if fault:
            raise InvalidSpec(f"invalid {what} for a local repository: {key!r} ({fault})")
        path = self._data / (key.rpartition("/")[0] if prefix else key)
        if not _inside(path, self._data):
            raise InvalidSpec(
                f"invalid {what} for a local repository: {key!r} (a symbolic "
                f"link takes it outside {self._data})"
            )
        return path

    def _meta_path(self, key: str) -> Path:
        return self._meta / (key + ".json")

    def _need_bucket(self) -> None:
        if not self.bucket:  # opened for list_buckets: the root itself is no bucket
            raise InvalidSpec("a local URL needs a bucket: local://BUCKET/KEY")

    def _ensure_bucket(self) -> None:
        self._need_bucket()
        if not self._data.is_dir():
            raise NotFound(
                f"no such bucket: local://{self.bucket} (under {self.root}; "
                f"make it with `argosy mb local://{self.bucket}`)",
                code="NoSuchBucket",
            )

    # -- buckets ---------------------------------------------------------------------------
    def create_bucket(self) -> bool:
        self._need_bucket()
        try:
            self._data.mkdir(parents=True)
        except FileExistsError:
            if not self._data.is_dir():
                raise InvalidSpec(
                    f"local://{self.bucket}: {self._data} exists and is not a folder"
                ) from None
            return False
        except OSError as error:
            raise LocalIOError(
                f"cannot create local://{self.bucket} in {self.root}: {error.strerror}"
            ) from None
        return True

    def list_buckets(self) -> builtins.list[BucketInfo]:
        """Every folder of the root but Argosy's own (their names start with a dot). A
        folder keeps no creation time, so none is given."""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise LocalIOError(f"cannot list {self.root}: {error.strerror}") from None
        return [
            BucketInfo(e.name, None) for e in entries if not e.name.startswith(".") and e.is_dir()
        ]

    # -- reading -----------------------------------------------------------------------
    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        etag = _etag(st)
        metadata: dict[str, str] = {}
        try:
            stored = json.loads(self._meta_path(key).read_text())
            if isinstance(stored, dict) and _describes(stored.get("etag"), st):
                metadata = dict(stored.get("metadata", {}))
        except (OSError, ValueError):
            pass
        modified = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        return ObjectInfo(key, st.st_size, etag, modified, metadata)

    def stat(self, key: str) -> ObjectInfo:
        path = self._checked(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            self._ensure_bucket()
            raise NotFound(f"no such key: {self.url(key)}", code="NoSuchKey") from None
        except NotADirectoryError:
            raise NotFound(f"no such key: {self.url(key)}", code="NoSuchKey") from None
        if not path.is_file():
            raise NotFound(f"no such key: {self.url(key)}", code="NoSuchKey")
        return self._info(key, st)

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> LocalFileStream:
        path = self._checked(key)
        try:
            handle = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            self._ensure_bucket()
            raise NotFound(f"no such key: {self.url(key)}", code="NoSuchKey") from None
        st = os.fstat(handle.fileno())
        etag = _etag(st)
        if if_match is not None and if_match != etag:
            handle.close()
            raise PreconditionFailed(f"{self.url(key)} changed while it was being read")
        last = st.st_size - 1 if end is None else min(end, st.st_size - 1)
        if start > max(last, 0) and not (start == 0 and st.st_size == 0):
            handle.close()
            raise IntegrityError(
                f"range {start}-{end} is outside {self.url(key)} ({st.st_size} bytes)",
                code="InvalidRange",
            )
        handle.seek(start)
        return LocalFileStream(handle, start, last, st.st_size, etag, self.url(key))

    # -- writing -----------------------------------------------------------------------
    def _temp_beside(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.argosy-{uuid.uuid4().hex[:12]}.tmp")

    def _publish(self, key: str, temp: Path, metadata: Mapping[str, str]) -> str:
        path = self._checked(key)
        try:
            os.replace(temp, path)
        except IsADirectoryError:
            temp.unlink(missing_ok=True)
            raise InvalidSpec(f"{self.url(key)}: a folder of keys already has this name") from None
        etag = _etag(path.stat())
        self._write_meta(key, etag, metadata)
        return etag

    def _write_meta(self, key: str, etag: str, metadata: Mapping[str, str]) -> None:
        meta_path = self._meta_path(key)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._temp_beside(meta_path)
        temp.write_text(json.dumps({"etag": etag, "metadata": dict(metadata)}))
        os.replace(temp, meta_path)

    def _open_temp(self, key: str) -> tuple[Path, BinaryIO]:
        self._ensure_bucket()
        path = self._checked(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidSpec(f"{self.url(key)}: a parent of this key is an object") from None
        temp = self._temp_beside(path)
        return temp, open(temp, "wb")

    def put(self, key: str, body: Body, *, size: int, metadata: Mapping[str, str]) -> str:
        temp, handle = self._open_temp(key)
        try:
            with handle:
                if isinstance(body, (bytes, bytearray, memoryview)):
                    handle.write(body)
                else:
                    shutil.copyfileobj(body, handle, _COPY_CHUNK)
            if temp.stat().st_size != size:
                raise IntegrityError(
                    f"{self.url(key)}: wrote {temp.stat().st_size} bytes, expected {size}"
                )
            return self._publish(key, temp, metadata)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def replace_metadata(self, key: str, metadata: Mapping[str, str], *, if_match: str) -> str:
        info = self.stat(key)
        if info.etag != if_match:
            raise PreconditionFailed(f"{self.url(key)} changed before its metadata was set")
        self._write_meta(key, info.etag, metadata)
        return info.etag

    # -- multipart ---------------------------------------------------------------------
    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise InvalidSpec(f"invalid upload id {upload_id!r}")
        return self._uploads / upload_id

    def _open_upload(self, key: str, upload_id: str) -> Path:
        self._checked(key)
        folder = self._upload_dir(upload_id)
        try:
            stored = json.loads((folder / "upload.json").read_text())
        except (OSError, ValueError):
            raise NotFound(
                f"no such upload {upload_id} for {self.url(key)}", code="NoSuchUpload"
            ) from None
        if stored["key"] != key:
            raise NotFound(f"no such upload {upload_id} for {self.url(key)}", code="NoSuchUpload")
        return folder

    def create_upload(self, key: str, *, metadata: Mapping[str, str]) -> str:
        self._ensure_bucket()
        self._checked(key)
        upload_id = uuid.uuid4().hex
        folder = self._upload_dir(upload_id)
        folder.mkdir(parents=True)
        now = datetime.now(UTC).isoformat()
        (folder / "upload.json").write_text(
            json.dumps({"key": key, "metadata": dict(metadata), "initiated": now})
        )
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, body: Body, *, size: int) -> Part:
        folder = self._open_upload(key, upload_id)
        final = folder / f"{number:05d}.part"
        temp = self._temp_beside(final)
        try:
            with open(temp, "wb") as handle:
                if isinstance(body, (bytes, bytearray, memoryview)):
                    handle.write(body)
                else:
                    shutil.copyfileobj(body, handle, _COPY_CHUNK)
            written = temp.stat().st_size
            if written != size:
                raise IntegrityError(
                    f"part {number} of {self.url(key)}: got {written} bytes, expected {size}"
                )
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        st = final.stat()
        return Part(number, _etag(st), st.st_size)

    def copy_part(
        self, key: str, upload_id: str, number: int, *, start: int, end: int, if_match: str
    ) -> Part:
        stream = self.read(key, start=start, end=end, if_match=if_match)
        try:
            if stream.end != end:
                raise IntegrityError(
                    f"range {start}-{end} is outside {self.url(key)} ({stream.total} bytes)",
                    code="InvalidRange",
                )
            return self.upload_part(key, upload_id, number, stream, size=end - start + 1)
        finally:
            stream.close()

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        folder = self._open_upload(key, upload_id)
        parts = []
        for path in sorted(folder.glob("*.part")):
            st = path.stat()
            parts.append(Part(int(path.stem), _etag(st), st.st_size))
        return parts

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[Part]) -> str:
        folder = self._open_upload(key, upload_id)
        stored = json.loads((folder / "upload.json").read_text())
        have = {p.number: p for p in self.list_parts(key, upload_id)}
        numbers = [p.number for p in parts]
        if numbers != sorted(set(numbers)):
            raise PermanentError(
                f"parts of {self.url(key)} must be ascending and unique", code="InvalidPartOrder"
            )
        for part in parts:
            if part.number not in have or have[part.number].etag != part.etag:
                raise PermanentError(
                    f"part {part.number} of {self.url(key)} is missing or different",
                    code="InvalidPart",
                )
        temp, handle = self._open_temp(key)
        try:
            with handle:
                for part in parts:
                    with open(folder / f"{part.number:05d}.part", "rb") as source:
                        shutil.copyfileobj(source, handle, _COPY_CHUNK)
            etag = self._publish(key, temp, stored["metadata"])
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)
        return etag

    def abort_upload(self, key: str, upload_id: str) -> None:
        folder = self._open_upload(key, upload_id)
        shutil.rmtree(folder, ignore_errors=True)

    def list_uploads(self, prefix: str = "") -> list[UploadInfo]:
        self._checked(prefix, prefix=True)
        uploads: builtins.list[UploadInfo] = []
        if not self._uploads.is_dir():
            return uploads
        for folder in sorted(self._uploads.iterdir()):
            try:
                stored = json.loads((folder / "upload.json").read_text())
            except (OSError, ValueError):
                continue
            if stored["key"].startswith(prefix):
                uploads.append(
                    UploadInfo(
                        stored["key"], folder.name, datetime.fromisoformat(stored["initiated"])
                    )
                )
        return sorted(uploads, key=lambda u: (u.key, u.initiated))

    # -- listing and deleting -------------------------------------------------------------
    def _walk(self, folder: Path, rel: str) -> Iterator[str]:
        """Every key under `folder`, in lexicographic key order."""
        try:
            entries = sorted(
                os.scandir(folder),
                key=lambda e: e.name + ("/" if e.is_dir(follow_symlinks=False) else ""),
            )
        except (FileNotFoundError, NotADirectoryError):  # `file/` lists nothing, as on S3
            return
        for entry in entries:
            if entry.name.endswith(".tmp") and ".argosy-" in entry.name:
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), f"{rel}{entry.name}/")
            elif entry.is_file(follow_symlinks=False):
                yield rel + entry.name

    def list(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        token: str | None = None,
        limit: int = 1000,
    ) -> ListPage:
        self._ensure_bucket()
        base = self._checked(prefix, prefix=True)
        start_dir = prefix.rpartition("/")[0]
        rel = f"{start_dir}/" if start_dir else ""
        objects: builtins.list[ObjectInfo] = []
        prefixes: builtins.list[str] = []
        last_prefix = None
        for key in self._walk(base, rel):
            if not key.startswith(prefix) or (token is not None and key <= token):
                continue
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    if common != last_prefix and (token is None or common > token):
                        if len(objects) + len(prefixes) >= limit:
                            return ListPage(objects, prefixes, last_prefix or objects[-1].key)
                        prefixes.append(common)
                        last_prefix = common
                    continue
            if len(objects) + len(prefixes) >= limit:
                last = max([o.key for o in objects[-1:]] + prefixes[-1:])
                return ListPage(objects, prefixes, last)
            try:
                objects.append(self._info(key, (self._data / key).stat()))
            except FileNotFoundError:
                continue
        return ListPage(objects, prefixes, None)

    def delete(self, keys: Sequence[str]) -> builtins.list[DeleteFailure]:
        failures = []
        for key in keys:
            try:
                path = self._checked(key)
                path.unlink(missing_ok=True)
                self._meta_path(key).unlink(missing_ok=True)
                self._prune(path.parent)
            except InvalidSpec as error:
                failures.append(DeleteFailure(key, "InvalidKey", str(error)))
            except IsADirectoryError:
                continue
            except OSError as error:
                failures.append(DeleteFailure(key, "LocalIOError", error.strerror or ""))
        return failures

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty by a delete, as an object store has no folders."""
        while folder != self._data and self._data in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent
