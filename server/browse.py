"""Folders and archives in the browser: listings (HTML or JSON), members of `.tgz`,
`.tar.zst` and `.zip` artifacts, `index.html` redirects, and whole folders downloaded as
one archive streamed while it is made.

Member paths are what a consumer step sees after Argo's unwrapping: an archive holding
exactly one top-level folder is browsed from inside it, any other from its own root
(`init`'s rule). Names are normalised by the archive layer's rules (no `..`, no
absolute names, no NUL); symlinks and hardlinks are listed, never followed or served, so
nothing reaches outside the artifact. A zip member costs its central directory and one
ranged read; a tar member a stream from the archive's start to the member
(`tar_member`: a seekable tar.zst is read through its member index, only the frames
that hold the member).
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from argosy.artifacts.archive import seekable
from argosy.artifacts.archive import tarformat as tf
from argosy.artifacts.archive.codecs import compress
from argosy.artifacts.archive.entry import Entry, EntryType
from argosy.artifacts.archive.paths import member_path
from argosy.artifacts.archive.tarreader import read_tar
from argosy.artifacts.archive.zipreader import read_index, read_zip
from argosy.artifacts.archive.zipwriter import ZipStream
from argosy.artifacts.errors import IntegrityError, InvalidSpec, NotFound
from argosy.artifacts.manifest import LEGACY_NAME
from argosy.artifacts.protocol import Driver, ObjectInfo
from argosy.artifacts.tree import as_folder, is_folder, list_all
from argosy.server import http
from argosy.server.indexes import IndexCache

if TYPE_CHECKING:
    from argosy.server.resolve import Resolved

TAR_SUFFIXES = (".tgz", ".tar.gz", ".tar.zst", ".tzst", ".tar")
FOLDER_FORMATS = {
    "tar.gz": "application/gzip",
    "tar.zst": "application/zstd",
    "zip": "application/zip",
}
__all__ = ["IndexCache", "is_folder", "serve_path", "tar_member"]


@dataclass(frozen=True)
class Item:
    name: str  # relative to the folder being listed; folders end with '/'
    size: int
    modified: datetime | None


def archive_kind(key: str) -> str | None:
    lower = key.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    return None


# -- reading archives -------------------------------------------------------------------


def _read_range(driver: Driver, info: ObjectInfo) -> Any:
    def read(start: int, end: int) -> bytes:  # bytes [start, end)
        stream = driver.read(info.key, start=start, end=end - 1, if_match=info.etag)
        try:
            out = bytearray(end - start)
            view, got = memoryview(out), 0
            while got < len(out):
                n = stream.readinto(view[got:])
                if n == 0:
                    raise InvalidSpec(f"{driver.url(info.key)}: short read at {start + got}")
                got += n
            return bytes(out)
        finally:
            stream.close()

    return read


def _whole(driver: Driver, info: ObjectInfo) -> Iterator[bytes]:
    from argosy.server.stream import read_span

    return read_span(driver, info, 0, info.size - 1) if info.size else iter(())


def entries(driver: Driver, info: ObjectInfo, indexes: IndexCache) -> list[Entry]:
    """Every member, names as stored (blocking): from the index of a seekable tar.zst,
    else by reading the archive."""
    if archive_kind(info.key) == "zip":
        return [m.entry for m in read_index(_read_range(driver, info), info.size)]
    index = indexes.get(driver, info)
    if index is not None:
        return [Entry(m.path, m.type, m.size, m.mode, m.mtime, m.linkname) for m in index.members]
    found = []
    for member in read_tar(_whole(driver, info)):
        found.append(member.entry)
        for _ in member.data:
            pass
    return found


def root_of(found: list[Entry]) -> str:
    """The one top-level folder members are browsed from, or '' (init's rule)."""
    tops = set()
    nested = False
    for entry in found:
        try:
            path = member_path(entry.path)
        except InvalidSpec:
            continue
        if not path:
            continue
        head, sep, _ = path.partition("/")
        tops.add(head)
        nested = nested or bool(sep) or entry.type is EntryType.DIR
    if len(tops) == 1 and nested:
        only = next(iter(tops))
        if any(
            member_path(e.path) == only and e.type is not EntryType.DIR
            for e in found
            if _safe(e.path)
        ):
            return ""
        return only + "/"
    return ""


def _safe(name: str) -> bool:
    try:
        member_path(name)
        return True
    except InvalidSpec:
        return False


def member_listing(found: list[Entry], root: str, folder: str) -> list[Item]:
    """The members directly under `folder` (relative to `root`)."""
    base = root + folder
    items: dict[str, Item] = {}
    for entry in found:
        if not _safe(entry.path):
            continue
        path = member_path(entry.path)
        if entry.type is EntryType.DIR:
            path += "/"
        if not path.startswith(base) or path == base:
            continue
        rest = path[len(base) :]
        head, sep, _ = rest.partition("/")
        name = head + sep
        if sep:
            items.setdefault(name, Item(name, 0, None))
        else:
            items[name] = Item(
                name, entry.size, datetime.fromtimestamp(entry.mtime, UTC) if entry.mtime else None
            )
    return sorted(items.values(), key=lambda i: i.name)


def page_of(items: list[Item], token: str | None, limit: int) -> tuple[list[Item], str | None]:
    """One page of a listing sorted by name: the `limit` items after the name `token`,
    and the token of the next page (the page's last name), None at the end."""
    rest = [i for i in items if token is None or i.name > token]
    page = rest[:limit]
    return page, (page[-1].name if len(rest) > limit else None)


def tar_member(
    driver: Driver, info: ObjectInfo, path: str, stored: str, indexes: IndexCache
) -> Iterator[bytes]:
    """One file of a tar archive: `path` as browsed, `stored` as the archive names it. A
    seekable tar.zst is read through its index, only the frames that hold the member;
    any other tar (gzip, zstd or plain) from its start until the member."""
    index = indexes.get(driver, info)
    if index is not None:
        yield from seekable.iter_member(driver, info.key, index, stored)
        return
    for member in read_tar(_whole(driver, info)):
        if _safe(member.entry.path) and member_path(member.entry.path) == path:
            if member.entry.type is not EntryType.FILE:
                raise NotFound(f"{path} is not a file in the archive")
            yield from member.data
            return
        for _ in member.data:
            pass
    raise NotFound(f"no member {path} in the archive")


def member_data_at(
    driver: Driver, info: ObjectInfo, kind: str, path: str, stored: str, indexes: IndexCache
) -> int | None:
    """Where the member's bytes can be read at any offset (blocking): for a stored
    (uncompressed) zip member, the object offset of its data (its local header read);
    for a member of a seekable tar.zst, -1 (read through its frames); else None."""
    if kind != "zip":
        index = indexes.get(driver, info)
        return -1 if index is not None and index.member(stored) is not None else None
    read = _read_range(driver, info)
    for member in read_index(read, info.size):
        if _safe(member.entry.path) and member_path(member.entry.path) == path:
            if member.method != 0:
                return None
            local = read(member.offset, member.offset + 30)
            if local[:4] != b"PK\x03\x04":
                raise IntegrityError(f"{driver.url(info.key)}: no local header for {path}")
            names = int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
            return member.offset + 30 + names
    return None


def member_range(
    driver: Driver,
    info: ObjectInfo,
    at: int,
    stored: str,
    indexes: IndexCache,
    start: int,
    end: int,
) -> Iterator[bytes]:
    """Bytes start..end of a member whose data `member_data_at` placed at `at`."""
    if at >= 0:
        from argosy.server.stream import read_span

        yield from read_span(driver, info, at + start, at + end)
        return
    index = indexes.get(driver, info)
    assert index is not None
    yield from seekable.iter_member_range(driver, info.key, index, stored, start, end)


def zip_member(driver: Driver, info: ObjectInfo, path: str) -> Iterator[bytes]:
    wanted = False
    for member in read_zip(_read_range(driver, info), info.size, select=lambda p: p == path):
        if _safe(member.entry.path) and member_path(member.entry.path) == path:
            wanted = True
            if member.entry.type is not EntryType.FILE:
                raise NotFound(f"{path} is not a file in the archive")
            yield from member.data
            return
    if not wanted:
        raise NotFound(f"no member {path} in the archive")


# -- folders ----------------------------------------------------------------------------


def folder_page(
    driver: Driver, prefix: str, *, token: str | None, limit: int
) -> tuple[list[Item], str | None]:
    page = driver.list(prefix, delimiter="/", token=token, limit=limit)
    items = [Item(p[len(prefix) :], 0, None) for p in page.prefixes]
    for obj in page.objects:
        name = obj.key[len(prefix) :]
        if not name or name == LEGACY_NAME:
            continue  # Argosy's manifest (older versions wrote it inside) is not a file
        items.append(Item(name, obj.size, obj.modified))
    return sorted(items, key=lambda i: i.name), page.next_token


def folder_archive(driver: Driver, prefix: str, fmt: str) -> Iterator[bytes]:
    """The folder as one archive, each object verified as it is read."""
    from argosy.server.stream import read_span

    objects = [
        o
        for o in list_all(driver, prefix)
        if o.key[len(prefix) :] not in ("", LEGACY_NAME) and not o.key.endswith("/")
    ]
    if fmt == "zip":
        out = ZipStream()
        for obj in objects:
            info = driver.stat(obj.key)
            body = read_span(driver, info, 0, info.size - 1) if info.size else iter(())
            yield from out.add(obj.key[len(prefix) :], body, size=info.size)
        yield from out.finish()
        return

    def tar() -> Iterator[bytes]:
        written = 0
        for obj in objects:
            info = driver.stat(obj.key)
            header = tf.encode_header(
                obj.key[len(prefix) :].encode(),
                mode=0o644,
                size=info.size,
                mtime=int(info.modified.timestamp()),
                typeflag=tf.REGULAR,
            )
            yield header
            written += len(header)
            if info.size:
                yield from read_span(driver, info, 0, info.size - 1)
            pad = tf.padding(info.size)
            written += info.size + len(pad)
            if pad:
                yield pad
        yield tf.end_of_archive(written)

    yield from compress(tar(), "zstd" if fmt == "tar.zst" else "gzip", threads=0)


# -- pages ------------------------------------------------------------------------------

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.2em 1em;text-align:left}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even){background:#f4f4f4}"
)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def render_html(title: str, crumbs: list[str], items: list[Item], next_url: str | None) -> str:
    """A small page: breadcrumbs, then name, size and modified; no scripts, no styles
    or fonts from elsewhere. Every name is escaped and linked relatively ('./name')."""
    e = html.escape
    links = []
    for depth, crumb in enumerate(crumbs):
        up = "../" * (len(crumbs) - depth - 1) or "./"
        links.append(f'<a href="{e(up)}">{e(crumb)}</a>')
    rows = ['<tr><td><a href="../">../</a></td><td></td><td></td></tr>']
    for item in items:
        href = "./" + quote(item.name, safe="/")
        size = "" if item.name.endswith("/") else _size(item.size)
        when = item.modified.strftime("%Y-%m-%d %H:%M:%S UTC") if item.modified else ""
        rows.append(
            f'<tr><td><a href="{e(href)}">{e(item.name)}</a></td>'
            f'<td class="n">{e(size)}</td><td>{e(when)}</td></tr>'
        )
    more = f'<p><a href="{e(next_url)}">next page</a></p>' if next_url else ""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<nav>{' / '.join(links)}</nav>"
        "<table><thead><tr><th>name</th><th>size</th><th>modified</th></tr></thead><tbody>"
        + "".join(rows)
        + f"</tbody></table>{more}</body></html>"
    )


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _listing(
    request: web.Request, title: str, crumbs: list[str], items: list[Item], token: str | None
) -> web.Response:
    from argosy.server.context import CONTEXT

    ctx = request.app[CONTEXT]
    headers = http.security_headers(
        ctx.settings.content_security_policy, ctx.settings.x_frame_options
    )
    headers["Cache-Control"] = "no-store"
    next_url = f"?token={quote(token, safe='')}" if token else None
    if _wants_json(request):
        body = {
            "items": [
                {
                    "name": i.name,
                    "type": "folder" if i.name.endswith("/") else "file",
                    "size": i.size,
                    "modified": i.modified.isoformat() if i.modified else None,
                }
                for i in items
            ],
            "next": token,
        }
        return web.json_response(body, headers=headers)
    return web.Response(
        text=render_html(title, crumbs, items, next_url),
        content_type="text/html",
        headers=headers,
    )


# -- the route --------------------------------------------------------------------------


async def serve_path(
    request: web.Request, resolved: Resolved, segments: list[str], trailing: bool
) -> web.StreamResponse:
    from argosy.server.context import CONTEXT, blocking
    from argosy.server.respond import _stat, serve_object

    ctx = request.app[CONTEXT]
    driver, key = resolved.driver, resolved.key
    info = await _stat(driver, key) if not key.endswith("/") else None
    crumbs = [resolved.name, *segments]
    if info is not None:
        kind = archive_kind(key)
        if not segments and not trailing:
            return await serve_object(request, driver, info, key.rsplit("/", 1)[-1])
        if kind is None:
            raise NotFound(f"{resolved.name} is a file, not a folder or an archive")
        return await _archive(request, resolved, info, kind, segments, trailing, crumbs)
    folder = as_folder(key) + "".join(s + "/" for s in segments)
    if segments and not trailing:
        sub = folder[:-1]
        if segments[-1] != LEGACY_NAME:
            found = await _stat(driver, sub)
            if found is not None:
                return await serve_object(request, driver, found, segments[-1])
    if not await blocking(is_folder, driver, folder[:-1]):
        raise NotFound(f"{'/'.join(crumbs)} is not in storage")
    if not trailing:
        raise web.HTTPTemporaryRedirect(request.path + "/")
    fmt = request.query.get("format")
    if fmt:
        return await _download_folder(request, driver, folder, fmt, crumbs[-1])
    token = request.query.get("token")
    items, next_token = await blocking(
        folder_page, driver, folder, token=token, limit=ctx.settings.listing_page
    )
    if not token and not _wants_json(request) and any(i.name == "index.html" for i in items):
        raise web.HTTPTemporaryRedirect(request.path + "index.html")
    return _listing(request, "/".join(crumbs), crumbs, items, next_token)


async def _download_folder(
    request: web.Request, driver: Driver, folder: str, fmt: str, name: str
) -> web.StreamResponse:
    from argosy.server.context import CONTEXT
    from argosy.server.respond import _send

    if fmt not in FOLDER_FORMATS:
        raise web.HTTPBadRequest(text=f"format must be one of {', '.join(FOLDER_FORMATS)}\n")
    ctx = request.app[CONTEXT]
    headers = http.security_headers(
        ctx.settings.content_security_policy, ctx.settings.x_frame_options
    )
    headers["Content-Type"] = FOLDER_FORMATS[fmt]
    headers["Content-Disposition"] = http.disposition(f"{name}.{fmt}", "download")
    response = web.StreamResponse(status=200, headers=headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method != "HEAD":
        with ctx.budget.lease(1):
            await _send(request, response, folder_archive(driver, folder, fmt))
    await response.write_eof()
    return response


async def _archive(
    request: web.Request,
    resolved: Resolved,
    info: ObjectInfo,
    kind: str,
    segments: list[str],
    trailing: bool,
    crumbs: list[str],
) -> web.StreamResponse:
    from argosy.server.context import CONTEXT, blocking
    from argosy.server.respond import _send

    ctx = request.app[CONTEXT]
    driver = resolved.driver
    with ctx.budget.lease(1):
        found: list[Entry] = await blocking(entries, driver, info, ctx.indexes)
    root = root_of(found)
    rel = "/".join(segments)
    if trailing:
        items = member_listing(found, root, rel + "/" if rel else "")
        if (
            rel
            and not items
            and not any(_safe(e.path) and member_path(e.path) == root + rel for e in found)
        ):
            raise NotFound(f"no folder {rel} in {resolved.name}")
        page, next_token = page_of(items, request.query.get("token"), ctx.settings.listing_page)
        return _listing(request, "/".join(crumbs), crumbs, page, next_token)
    path = root + rel
    entry = next((e for e in found if _safe(e.path) and member_path(e.path) == path), None)
    if entry is None:
        raise NotFound(f"no member {rel} in {resolved.name}")
    if entry.type is EntryType.DIR:
        raise web.HTTPTemporaryRedirect(request.path + "/")
    if entry.type is not EntryType.FILE:
        raise NotFound(f"{rel} in {resolved.name} is a {entry.type}, not served")
    etag = '"' + hashlib.sha256(f"{info.etag}\0{path}".encode()).hexdigest()[:32] + '"'
    at = await blocking(member_data_at, driver, info, kind, path, entry.path, ctx.indexes)
    headers = http.security_headers(
        ctx.settings.content_security_policy, ctx.settings.x_frame_options
    )
    headers.update(
        {
            "ETag": etag,
            "Last-Modified": http.http_date(info.modified),
            "Accept-Ranges": "none" if at is None else "bytes",
            "Content-Type": http.content_type(segments[-1]),
            "Content-Disposition": http.disposition(segments[-1], request.query.get("mode")),
        }
    )
    meta = http.ObjectMeta(entry.size, etag, info.modified)
    if http.not_modified(request.headers, meta):
        return web.Response(status=304, headers=http.not_modified_headers(headers))
    ranges = None
    if at is not None and http.range_applies(request.headers, meta):
        try:
            ranges = http.parse_ranges(request.headers.get("Range"), entry.size)
        except http.Unsatisfiable:
            return web.Response(status=416, headers=http.unsatisfiable_headers(headers, entry.size))
    if ranges is not None and len(ranges) == 1 and at is not None:
        # one range of the member: its bytes alone, checked by no member CRC
        start, end = ranges[0]
        headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        headers["X-Argosy-Verified"] = "partial"
        response = web.StreamResponse(status=206, headers=headers)
        response.content_length = end - start + 1
        await response.prepare(request)
        if request.method != "HEAD":
            source = member_range(driver, info, at, entry.path, ctx.indexes, start, end)
            with ctx.budget.lease(1):
                await _send(request, response, source, size=end - start + 1)
        await response.write_eof()
        return response
    # no range, or several (answered whole, as RFC 9110 allows)
    response = web.StreamResponse(status=200, headers=headers)
    response.content_length = entry.size
    await response.prepare(request)
    if request.method != "HEAD" and entry.size:
        source = (
            zip_member(driver, info, path)
            if kind == "zip"
            else tar_member(driver, info, path, entry.path, ctx.indexes)
        )
        with ctx.budget.lease(1):
            await _send(request, response, source, size=entry.size)
    await response.write_eof()
    return response


def listing_json(items: list[Item]) -> str:
    return json.dumps([i.name for i in items])
