"""The object commands: cp, ls, rm, cat, stat, and mb for buckets.

Uploads, folders and archives are imported where they are used: a plain download, the
common case in a pod, should not pay for the archive codecs and the tree code at start.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from argosy.artifacts import download
from argosy.artifacts.errors import ArtifactError, InvalidSpec, LocalIOError, NotFound
from argosy.artifacts.location import Location, parse
from argosy.artifacts.protocol import BucketDriver, Driver, ObjectInfo
from argosy.artifacts.record import read_record
from argosy.commands.config import Config
from argosy.commands.printable import printable
from argosy.commands.progress import Progress

if TYPE_CHECKING:
    from argosy.artifacts.archive.limits import ExtractLimits


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _say(cfg: Config, text: str) -> None:
    if not getattr(cfg.args, "quiet", False):
        print(printable(text), file=sys.stderr)


def _line(text: str) -> None:
    """One line of a command's output. A full disk or an I/O error where the output goes
    is an error; a closed pipe (`argosy ls | head`) is the reader's choice, left to main."""
    try:
        print(text)
    except BrokenPipeError:
        raise
    except OSError as error:
        raise LocalIOError(f"cannot write to the output: {error.strerror or error}") from None


@contextmanager
def _telling_what_is_missing(driver: Driver, key: str) -> Iterator[None]:
    """A NotFound that does not say what is missing (an S3 HEAD's 404 has no body: the
    key, or its bucket?) becomes the bucket's when asking the bucket finds none."""
    try:
        yield
    except NotFound as error:
        if error.code != "404":
            raise
        try:
            driver.list(key, limit=1)
        except NotFound:
            raise  # the bucket's
        except ArtifactError:
            pass  # e.g. no permission to list: the key's 404 is all there is to say
        raise error from None


def cp(cfg: Config) -> int:
    src, dst = parse(cfg.args.src), parse(cfg.args.dst)
    settings = cfg.transfer()
    if not src.remote and not dst.remote:
        raise InvalidSpec("one side of cp must be a URL (s3://, oss://, local://)")
    if cfg.args.archive:
        return _cp_archive(cfg, src, dst)
    if cfg.args.include:
        raise InvalidSpec("--include needs --archive")
    if cfg.args.max_expansion is not None:
        raise InvalidSpec("--max-expansion needs --archive")
    if cfg.args.recursive:
        return _cp_tree(cfg, src, dst)
    if src.remote and src.is_prefix:
        raise InvalidSpec(f"{src} names a folder of keys; use cp -r")
    if src.scheme == "file" and os.path.isdir(src.key):
        raise InvalidSpec(f"{src} is a folder: use -r (one object per file) or --archive FORMAT")

    if dst.remote:
        from argosy.artifacts import upload

        # a stream's first part is read before any request: open the driver meanwhile
        driver = cfg.driver_soon(dst) if src.scheme == "stdio" else cfg.driver(dst)
        key = dst.key
        if dst.is_prefix:
            if src.scheme == "stdio":
                raise InvalidSpec("uploading from - needs a full key, not a folder")
            key += Path(src.key).name if src.scheme == "file" else src.key.rsplit("/", 1)[-1]
        if src.scheme == "file":
            size = os.path.getsize(src.key) if os.path.isfile(src.key) else None
            bar = Progress(size, enabled=not cfg.args.quiet)
            result = upload.upload_file(
                driver, key, src.key, settings=settings, progress=bar, checkpoints=cfg.checkpoints()
            )
        elif src.scheme == "stdio":
            bar = Progress(None, enabled=not cfg.args.quiet)
            result = upload.upload_stream(
                driver, key, sys.stdin.buffer, settings=settings, progress=bar
            )
        else:
            from argosy.artifacts.copy import copy_object

            bar = Progress(None, enabled=not cfg.args.quiet)
            copied = copy_object(
                cfg.driver(src),
                src.key,
                driver,
                key,
                settings=settings,
                progress=bar,
                on_info=_total_of(bar),
            )
            result = copied.upload
            if not copied.source.verified:
                _say(cfg, f"{copied.source.url}: {_verdict(copied.source)}")
        bar.finish()
        record = f"crc32c recorded: {result.record.checksum}" if result.record else result.note
        resumed = (
            f"  resumed: {result.resumed_parts} of {result.parts} parts were already uploaded"
            if result.resumed_parts
            else ""
        )
        _say(
            cfg,
            f"uploaded {src} -> {result.url}  {result.size} bytes  {bar.rate()}  {record}{resumed}",
        )
        return 0

    driver = cfg.driver(src)
    if dst.scheme == "stdio":
        return _cat(cfg, driver, src.key, sys.stdout.buffer)
    target = Path(dst.key)
    if dst.key.endswith("/") or target.is_dir():
        target = target / src.key.rsplit("/", 1)[-1]
    bar = Progress(None, enabled=not cfg.args.quiet)
    with _telling_what_is_missing(driver, src.key):
        got = download.download_file(
            driver, src.key, target, settings=settings, progress=bar, on_info=_total_of(bar)
        )
    bar.finish()
    resumed = (
        f"  resumed: {got.resumed_parts} of {got.parts} parts were already downloaded"
        if got.resumed_parts
        else ""
    )
    _say(
        cfg,
        f"downloaded {got.url} -> {target}  {got.size} bytes  {bar.rate()}  "
        + _verdict(got)
        + resumed,
    )
    return 0


def _total_of(bar: Progress) -> Callable[[ObjectInfo], None]:
    """Sets the bar's total once the object's size is known."""

    def sized(info: ObjectInfo) -> None:
        bar.total = info.size

    return sized


def _verdict(result: download.DownloadResult) -> str:
    if result.verified:
        return f"verified {result.checksum}"
    return f"unverified: {result.note} (computed {result.checksum})"


def _cp_tree(cfg: Config, src: Location, dst: Location) -> int:
    from argosy.artifacts import tree

    settings = cfg.transfer()
    if src.scheme == "file" and dst.remote:
        bar = Progress(None, enabled=not cfg.args.quiet)
        result = tree.upload_tree(
            cfg.driver(dst), dst.key, src.key, settings=settings, progress=bar
        )
        verb = "uploaded"
    elif src.remote and dst.scheme == "file":
        bar = Progress(None, enabled=not cfg.args.quiet)
        result = tree.download_tree(
            cfg.driver(src), src.key, dst.key, settings=settings, progress=bar
        )
        verb = "downloaded"
    else:
        raise InvalidSpec("cp -r copies a local folder to a URL/ or a URL/ to a local folder")
    bar.finish()
    notes = f"; {len(result.notes)} note(s): {result.notes[0]}" if result.notes else ""
    checked = (
        result.verdict
        if verb == "downloaded"
        else f"crc32c recorded for {result.verified} of {result.files}"
    )
    _say(
        cfg,
        f"{verb} {result.files} files, {result.bytes} bytes  {bar.rate()}  "
        f"{bar.files_rate(result.files)}  {checked}{notes}",
    )
    return 0


def _cp_archive(cfg: Config, src: Location, dst: Location) -> int:
    """A folder to one archived object (or one object per file with `none`), and back."""
    from argosy.artifacts import directory
    from argosy.artifacts.archive.limits import ExpansionRefused

    fmt = cfg.args.archive
    settings = cfg.transfer()
    if src.scheme == "file" and dst.remote:
        if fmt == "auto":
            raise InvalidSpec("--archive auto is for downloads; name a format to upload")
        if cfg.args.max_expansion is not None:
            raise InvalidSpec("--max-expansion is for downloads: it limits extraction")
        key = dst.key
        if dst.is_prefix and fmt != "none":  # a folder of objects fills the prefix itself
            name = Path(src.key.rstrip("/")).name
            key += f"{name}.{'tgz' if fmt == 'tar.gz' else fmt}"
        bar = Progress(None, enabled=not cfg.args.quiet)
        result = directory.upload_directory(
            cfg.driver_soon(dst),
            key,
            src.key,
            fmt=fmt,
            settings=settings,
            level=cfg.args.level,
            keep_mtime=cfg.args.keep_mtime,
            progress=bar,
            checkpoints=cfg.checkpoints(),
        )
        bar.finish()
        record = f"crc32c recorded: {result.checksum}" if result.checksum else result.note
        if result.verdict:
            record = result.verdict + (f"; {result.note}" if result.note else "")
        _say(
            cfg,
            f"uploaded {src} -> {result.url} as {fmt}  {result.bytes} bytes  "
            f"{bar.rate()}  {record}",
        )
        return 0
    if src.remote and dst.scheme == "file":
        if fmt == "none" and not src.is_prefix:
            src = src.child("/")
        limits = _limits(cfg.args.max_expansion)
        bar = Progress(None, enabled=not cfg.args.quiet)
        driver = cfg.driver(src)
        try:
            with _telling_what_is_missing(driver, src.key):
                result = directory.download_directory(
                    driver,
                    src.key,
                    dst.key,
                    fmt=fmt,
                    settings=settings,
                    include=cfg.args.include or (),
                    keep_mtime=cfg.args.keep_mtime,
                    limits=limits,
                    progress=bar,
                )
        except ExpansionRefused as refused:
            raise InvalidSpec(f"{src}: {refused.explain('--max-expansion RATIO')}") from None
        bar.finish()
        if result.verdict:  # a folder of objects says what it verified, against what
            verdict = result.verdict + (f"; {result.note}" if result.note else "")
        elif result.verified:
            verdict = f"verified {result.checksum}" + (f"; {result.note}" if result.note else "")
        else:
            verdict = f"unverified: {result.note}"
        _say(
            cfg,
            f"extracted {result.url} -> {dst}  {result.files} files  {bar.rate()}  "
            f"{bar.files_rate(result.files)}  {verdict}",
        )
        return 0
    raise InvalidSpec("cp --archive moves a local folder to a URL or a URL to a local folder")


def _limits(max_expansion: str | None) -> ExtractLimits:
    """The extraction limits, with --max-expansion's ratio when given."""
    from argosy.artifacts.archive.limits import DEFAULT_LIMITS, ExtractLimits, valid_expansion

    if max_expansion is None:
        return DEFAULT_LIMITS
    try:
        ratio = float(max_expansion)
    except ValueError:
        ratio = -1.0
    if not valid_expansion(ratio):
        raise InvalidSpec(
            "--max-expansion takes a ratio of at least 1, such as 1000 (0: no limit),"
            f" not {max_expansion!r}"
        )
    return ExtractLimits(max_expansion=ratio)


def _cat(cfg: Config, driver: Driver, key: str, out: BinaryIO) -> int:
    bar = Progress(None, enabled=False)
    with _telling_what_is_missing(driver, key):
        result = download.download_stream(driver, key, out, settings=cfg.transfer(), progress=bar)
    if not result.verified:
        _say(cfg, f"{result.url}: {_verdict(result)}")
    return 0


def cat(cfg: Config) -> int:
    loc = parse(cfg.args.url)
    if not loc.remote or loc.is_prefix:
        raise InvalidSpec(f"cat needs an object URL, not {loc}")
    return _cat(cfg, cfg.driver(loc), loc.key, sys.stdout.buffer)


def _object_json(driver: Driver, info: ObjectInfo) -> dict[str, Any]:
    verdict = read_record(info.metadata, size=info.size)
    checksum = None
    if verdict.record:
        checksum = {"algorithm": "crc32c", "value": verdict.record.checksum.split(":", 1)[1]}
    return {
        "url": driver.url(info.key),
        "size": info.size,
        "etag": info.etag,
        "modified": _iso(info.modified),
        "checksum": checksum,
        "verified": verdict.record is not None,
        **({"unverified_reason": verdict.reason} if verdict.reason else {}),
        "metadata": dict(info.metadata),
    }


def stat(cfg: Config) -> int:
    loc = parse(cfg.args.url)
    if not loc.remote or loc.is_prefix:
        raise InvalidSpec(f"stat needs an object URL, not {loc}")
    driver = cfg.driver(loc)
    with _telling_what_is_missing(driver, loc.key):
        info = driver.stat(loc.key)
    _line(json.dumps(_object_json(driver, info), indent=2))
    return 0


def ls(cfg: Config) -> int:
    loc = parse(cfg.args.url, service=True)
    if not loc.remote:
        raise InvalidSpec(f"ls needs a URL, not {loc}")
    if not loc.bucket:
        return _ls_buckets(cfg, loc)
    driver = cfg.driver(loc)
    if cfg.args.archive_contents:
        return _ls_archive(cfg, driver, loc)
    if cfg.args.max_expansion is not None:
        raise InvalidSpec("--max-expansion needs --archive-contents")
    delimiter = None if cfg.args.recursive else "/"
    token: str | None = None
    found = False
    while True:
        page = driver.list(loc.key, delimiter=delimiter, token=token)
        for prefix in page.prefixes:
            found = True
            url = driver.url(prefix)
            _line(
                json.dumps({"prefix": url})
                if cfg.args.json
                else f"{'PRE':>12}  {'':20}  {printable(url)}"
            )
        for info in page.objects:
            found = True
            if cfg.args.json:
                _line(
                    json.dumps(
                        {
                            "url": driver.url(info.key),
                            "size": info.size,
                            "etag": info.etag,
                            "modified": _iso(info.modified),
                        }
                    )
                )
            else:
                url = printable(driver.url(info.key))
                _line(f"{info.size:>12}  {_iso(info.modified):20}  {url}")
        if not page.next_token:
            break
        token = page.next_token
    if not found and loc.key and not loc.key.endswith("/"):
        raise NotFound(f"nothing at {loc}")
    return 0


def _bucket_driver(cfg: Config, loc: Location) -> BucketDriver:
    driver = cfg.driver(loc)
    if not isinstance(driver, BucketDriver):
        raise InvalidSpec(f"{loc.scheme}:// repositories cannot make or list buckets")
    return driver


def _ls_buckets(cfg: Config, loc: Location) -> int:
    """`ls s3://`: the buckets these credentials own, as `aws s3 ls` lists them."""
    for bucket in _bucket_driver(cfg, loc).list_buckets():
        url = f"{loc.scheme}://{bucket.name}/"
        created = _iso(bucket.created) if bucket.created else ""
        if cfg.args.json:
            print(json.dumps({"bucket": url, "created": created or None}))
        else:
            print(f"{'BUCKET':>12}  {created:20}  {url}")
    return 0


def mb(cfg: Config) -> int:
    """`argosy mb URL`: make a bucket; one that exists and is yours already is no error."""
    loc = parse(cfg.args.url)
    if not loc.remote:
        raise InvalidSpec(
            f"mb needs a bucket URL (s3://BUCKET, oss://BUCKET, local://BUCKET), not {loc}"
        )
    if loc.key:
        raise InvalidSpec(
            f"mb makes a bucket: name it alone ({loc.scheme}://{loc.bucket}), not {loc}"
        )
    made = _bucket_driver(cfg, loc).create_bucket()
    where = f"{loc.scheme}://{loc.bucket}"
    _say(cfg, f"made bucket {where}" if made else f"bucket {where} already exists and is yours")
    return 0


def _ls_archive(cfg: Config, driver: Driver, loc: Location) -> int:
    from argosy.artifacts import directory
    from argosy.artifacts.archive.limits import ExpansionRefused

    limits = _limits(cfg.args.max_expansion)
    try:
        with _telling_what_is_missing(driver, loc.key):
            entries = directory.list_archive(
                driver, loc.key, settings=cfg.transfer(), limits=limits
            )
    except ExpansionRefused as refused:
        raise InvalidSpec(f"{loc}: {refused.explain('--max-expansion RATIO')}") from None
    for entry in entries:
        if cfg.args.json:
            _line(
                json.dumps(
                    {
                        "path": entry.path,
                        "type": str(entry.type),
                        "size": entry.size,
                        "mode": oct(entry.mode),
                        "mtime": entry.mtime,
                        **({"link": entry.linkname} if entry.linkname else {}),
                    }
                )
            )
        else:
            link = f" -> {printable(entry.linkname)}" if entry.linkname else ""
            path = printable(entry.path)
            _line(f"{entry.type!s:8} {oct(entry.mode)[2:]:>4} {entry.size:>12}  {path}{link}")
    return 0


def rm(cfg: Config) -> int:
    loc = parse(cfg.args.url)
    if not loc.remote:
        raise InvalidSpec(f"rm needs a URL, not {loc}")
    driver = cfg.driver(loc)
    if cfg.args.recursive:
        from argosy.artifacts import tree

        if not loc.key:
            raise InvalidSpec(f"refusing to delete everything in {loc}; name a folder")
        # the folder, its tree manifest beside it, and nothing that merely starts alike
        outcome = tree.delete_folder(driver, loc.key)
        failures, deleted = outcome.failures, outcome.objects
    else:
        if loc.is_prefix:
            raise InvalidSpec(f"{loc} names a folder of keys; use rm -r")
        failures = driver.delete([loc.key])
        deleted = 1 - len(failures)
    for failure in failures[:10]:
        text = f"could not delete {driver.url(failure.key)}: {failure.code} {failure.message}"
        print(f"argosy: {printable(text)}", file=sys.stderr)
    if cfg.args.recursive and outcome.error is not None:
        raise outcome.error
    _say(
        cfg, f"deleted {deleted} object(s) under {loc}" if cfg.args.recursive else f"deleted {loc}"
    )
    return 1 if failures else 0


def demo(cfg: Config) -> int:
    """`argosy demo`: the round trip and the workflows, on this machine alone."""
    from argosy.demo.roundtrip import run

    return run(cfg.args, cfg.env, settings=cfg.transfer())
