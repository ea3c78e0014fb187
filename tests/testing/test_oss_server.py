"""The OSS test server, driven by the real oss2 client over real HTTP on loopback.

These tests pin down the behaviour Argosy's OSS driver relies on: OSS documents
and headers, CRC64 that oss2 verifies, multipart rules, listings and paging,
and above all that authentication is real -- a wrong secret, a header changed
after signing, a skewed or altered Date and an expired STS token all fail.
Raw requests are signed with oss2's own ``Auth`` and then altered, so the
server is checked against the client's signing code, not against itself.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import oss2
import pytest
import requests
from oss2.models import BucketLifecycle, LifecycleExpiration, LifecycleRule, PartInfo

from argosy.testing.oss import ops
from argosy.testing.oss.crc import crc64, crc64_combine
from argosy.testing.oss.server import OssTestServer
from argosy.testing.oss.store import ObjectMeta

AK, SECRET = "test-access-key", "test-secret-key"
BUCKET = "argosy-test"
KIB = 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OssTestServer]:
    with OssTestServer(tmp_path / "oss", {AK: SECRET}, buckets=[BUCKET]) as running:
        yield running


@pytest.fixture
def bucket(server: OssTestServer) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(AK, SECRET), server.endpoint, BUCKET)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest().upper()


def signed(
    server: OssTestServer,
    method: str,
    key: str = "",
    *,
    data: bytes = b"",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    auth: Any = None,
) -> oss2.http.Request:
    """A request signed by oss2's own Auth, ready to be altered and sent."""
    url = f"{server.endpoint}/{BUCKET}/{quote(key, safe='')}"
    request = oss2.http.Request(method, url, data=data, params=params, headers=headers)
    (auth or oss2.Auth(AK, SECRET))._sign_request(request, BUCKET, key)
    return request


def send(request: oss2.http.Request) -> requests.Response:
    headers = {k: v for k, v in request.headers.items() if v is not None}
    return requests.request(
        request.method,
        request.url,
        params=request.params,
        data=request.data,
        headers=headers,
        timeout=10,
    )


def error_code(response: requests.Response) -> str:
    return response.text.split("<Code>")[1].split("</Code>")[0]


def parts_of(sizes: list[int]) -> list[bytes]:
    return [bytes([n + 1]) * size for n, size in enumerate(sizes)]


# -- objects ---------------------------------------------------------------------------------
def test_put_then_get_returns_the_bytes_with_oss_headers_and_metadata(
    bucket: oss2.Bucket,
) -> None:
    data = b"hello world"
    put = bucket.put_object(
        "docs/hello.txt",
        data,
        headers={"x-oss-meta-owner": "argosy", "Content-Type": "text/x-demo"},
    )
    assert put.etag == md5_hex(data)
    assert put.crc == crc64(data)
    assert len(put.request_id) == 24

    got = bucket.get_object("docs/hello.txt")
    assert got.read() == data
    assert got.headers["Content-Type"] == "text/x-demo"
    assert got.headers["x-oss-meta-owner"] == "argosy"
    assert got.headers["ETag"] == f'"{md5_hex(data)}"'
    assert got.headers["x-oss-object-type"] == "Normal"
    assert got.server_crc == crc64(data)
    assert abs(got.last_modified - time.time()) < 60


def test_head_object_reports_size_etag_crc_and_user_metadata(bucket: oss2.Bucket) -> None:
    bucket.put_object("k.bin", b"x" * 1000, headers={"x-oss-meta-color": "blue"})
    head = bucket.head_object("k.bin")
    assert head.content_length == 1000
    assert head.etag == md5_hex(b"x" * 1000)
    assert head.server_crc == crc64(b"x" * 1000)
    assert head.headers["x-oss-meta-color"] == "blue"
    assert head.content_type == "application/octet-stream"
    assert bucket.get_object_meta("k.bin").content_length == 1000


def test_a_missing_key_answers_no_such_key_for_get_and_head(bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.NoSuchKey) as get_error:
        bucket.get_object("absent")
    assert get_error.value.status == 404 and get_error.value.request_id
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("absent")
    assert bucket.object_exists("absent") is False


def test_a_missing_bucket_answers_no_such_bucket(server: OssTestServer) -> None:
    other = oss2.Bucket(oss2.Auth(AK, SECRET), server.endpoint, "no-such-bucket")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        other.put_object("k", b"data")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        other.list_objects_v2()


def test_delete_removes_an_object_and_deleting_it_again_still_succeeds(
    bucket: oss2.Bucket,
) -> None:
    bucket.put_object("gone", b"1")
    assert bucket.delete_object("gone").status == 204
    assert bucket.delete_object("gone").status == 204
    assert not bucket.object_exists("gone")


def test_a_content_md5_that_does_not_match_the_body_is_invalid_digest(
    bucket: oss2.Bucket,
) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("k", b"body", headers={"Content-MD5": wrong})
    right = base64.b64encode(hashlib.md5(b"body").digest()).decode()
    assert bucket.put_object("k", b"body", headers={"Content-MD5": right}).status == 200


STANDARD_RANGES = {"x-oss-range-behavior": "standard"}


def test_range_reads_answer_206_with_content_range(bucket: oss2.Bucket) -> None:
    data = bytes(range(256)) * 4
    bucket.put_object("r", data)
    for byte_range, expected, content_range, headers in [
        ((0, 9), data[:10], "bytes 0-9/1024", None),
        ((1000, None), data[1000:], "bytes 1000-1023/1024", None),
        ((None, 24), data[-24:], "bytes 1000-1023/1024", None),
        ((1020, 5000), data[1020:], "bytes 1020-1023/1024", STANDARD_RANGES),
    ]:
        result = bucket.get_object("r", byte_range=byte_range, headers=headers)
        assert result.status == 206
        assert result.headers["Content-Range"] == content_range
        assert result.read() == expected


def test_with_standard_range_behaviour_a_range_past_the_end_answers_416(
    bucket: oss2.Bucket,
) -> None:
    bucket.put_object("r", b"0123456789")
    with pytest.raises(oss2.exceptions.ServerError) as error:
        bucket.get_object("r", byte_range=(10, 20), headers=STANDARD_RANGES)
    assert (error.value.status, error.value.code) == (416, "InvalidRange")
    assert error.value.headers["Content-Range"] == "bytes */10"


def test_by_default_a_range_that_does_not_fit_returns_the_whole_object_like_oss(
    bucket: oss2.Bucket,
) -> None:
    bucket.put_object("r", b"0123456789")
    for byte_range in [(10, 20), (5, 10), (None, 11)]:
        result = bucket.get_object("r", byte_range=byte_range)
        assert (result.status, result.read()) == (200, b"0123456789")
        assert "Content-Range" not in result.headers


def test_a_server_with_standard_ranges_answers_416_without_the_header(tmp_path: Path) -> None:
    with OssTestServer(tmp_path, {AK: SECRET}, buckets=[BUCKET], standard_ranges=True) as strict:
        strict_bucket = oss2.Bucket(oss2.Auth(AK, SECRET), strict.endpoint, BUCKET)
        strict_bucket.put_object("r", b"0123456789")
        with pytest.raises(oss2.exceptions.ServerError, match="InvalidRange"):
            strict_bucket.get_object("r", byte_range=(10, 20))


def test_if_match_and_if_none_match_are_honoured(bucket: oss2.Bucket) -> None:
    etag = bucket.put_object("c", b"conditional").etag
    assert bucket.get_object("c", headers={"If-Match": f'"{etag}"'}).read() == b"conditional"
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.get_object("c", headers={"If-Match": '"0123456789ABCDEF0123456789ABCDEF"'})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("c", headers={"If-None-Match": f'"{etag}"'})
    assert bucket.get_object("c", headers={"If-None-Match": '"other"'}).read() == b"conditional"


def test_the_crc64_is_crc64_xz_as_oss2_computes_it() -> None:
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA
    client = oss2.utils.Crc64()
    client.update(b"some bytes")
    assert client.crc == crc64(b"some bytes")
    a, b = os.urandom(1000), os.urandom(4321)
    assert crc64_combine(crc64(a), crc64(b), len(b)) == crc64(a + b)


def test_oss2_verifies_the_crc_and_a_corrupted_get_raises_inconsistent_error(
    bucket: oss2.Bucket, server: OssTestServer, tmp_path: Path
) -> None:
    data = os.urandom(300 * KIB)
    bucket.put_object("crc.bin", data)
    bucket.get_object_to_file("crc.bin", str(tmp_path / "good"))
    assert (tmp_path / "good").read_bytes() == data

    server.corrupt_get(key="crc.bin")
    with pytest.raises(oss2.exceptions.InconsistentError):
        bucket.get_object_to_file("crc.bin", str(tmp_path / "bad"))
    bucket.get_object_to_file("crc.bin", str(tmp_path / "again"))  # the fault fired once


def test_a_chunked_upload_without_content_length_is_stored(bucket: oss2.Bucket) -> None:
    chunks = [os.urandom(70 * KIB) for _ in range(3)]
    result = bucket.put_object("chunked", iter(chunks))
    assert result.crc == crc64(b"".join(chunks))
    assert bucket.get_object("chunked").read() == b"".join(chunks)


def test_copy_object_duplicates_bytes_and_metadata(bucket: oss2.Bucket) -> None:
    bucket.put_object("src", b"copy me", headers={"x-oss-meta-a": "1"})
    bucket.copy_object(BUCKET, "src", "dst")
    bucket.delete_object("src")
    copied = bucket.get_object("dst")
    assert copied.read() == b"copy me" and copied.headers["x-oss-meta-a"] == "1"


def test_copy_object_honours_the_copy_source_conditions(bucket: oss2.Bucket) -> None:
    etag = bucket.put_object("src", b"copy me").etag
    stale = md5_hex(b"an older version")
    with pytest.raises(oss2.exceptions.PreconditionFailed) as error:
        bucket.copy_object(
            BUCKET, "src", "dst", headers={"x-oss-copy-source-if-match": f'"{stale}"'}
        )
    assert error.value.status == 412
    assert not bucket.object_exists("dst")
    with pytest.raises(oss2.exceptions.NotModified):  # CopyObject answers 304 for this one
        bucket.copy_object(
            BUCKET, "src", "dst", headers={"x-oss-copy-source-if-none-match": f'"{etag}"'}
        )
    bucket.copy_object(BUCKET, "src", "dst", headers={"x-oss-copy-source-if-match": f'"{etag}"'})
    assert bucket.get_object("dst").read() == b"copy me"


def _plant_sparse_object(server: OssTestServer, key: str, size: int) -> None:
    """A `size`-byte object of zeros put straight into the server's store as a sparse file,
    so that the real 1 GB limit is tested without writing a gigabyte. Its ETag and CRC64 are
    placeholders: nothing here reads them."""
    name = uuid.uuid4().hex
    with open(server.store.root / BUCKET / "data" / name, "wb") as data:
        data.truncate(size)
    server.store.commit_object(
        BUCKET,
        ObjectMeta(
            key,
            size,
            md5_hex(key.encode()),
            0,
            "application/octet-stream",
            time.time(),
            "Normal",
            name,
        ),
    )


def test_copy_object_refuses_a_source_over_1_gb_as_entity_too_large(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    assert ops.COPY_OBJECT_LIMIT == 1_000_000_000  # OSS's: 1 GB, not 1 GiB
    _plant_sparse_object(server, "at-limit", 1_000_000_000)
    _plant_sparse_object(server, "past-limit", 1_000_000_001)
    bucket.copy_object(BUCKET, "at-limit", "copied")  # a hard link: cheap at any size
    assert bucket.head_object("copied").content_length == 1_000_000_000
    with pytest.raises(oss2.exceptions.ServerError) as error:  # not even onto itself
        bucket.copy_object(
            BUCKET,
            "past-limit",
            "past-limit",
            headers={"x-oss-metadata-directive": "REPLACE", "x-oss-meta-replaced": "yes"},
        )
    assert (error.value.status, error.value.code) == (400, "EntityTooLarge")
    assert "x-oss-meta-replaced" not in bucket.head_object("past-limit").headers


# -- listings --------------------------------------------------------------------------------
def test_list_objects_v2_pages_with_continuation_tokens(bucket: oss2.Bucket) -> None:
    keys = [f"page/{n:02d}" for n in range(7)]
    for key in keys:
        bucket.put_object(key, b"x")
    seen: list[str] = []
    token, pages = "", 0
    while True:
        result = bucket.list_objects_v2(prefix="page/", continuation_token=token, max_keys=3)
        seen += [o.key for o in result.object_list]
        pages += 1
        if not result.is_truncated:
            break
        token = result.next_continuation_token
    assert seen == keys and pages == 3
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="page/", max_keys=2)] == keys
    after = bucket.list_objects_v2(prefix="page/", start_after="page/04")
    assert [o.key for o in after.object_list] == keys[5:]


def test_a_delimiter_rolls_keys_into_common_prefixes(bucket: oss2.Bucket) -> None:
    for key in ["a/1", "a/2", "b/1", "c", "d/x/y"]:
        bucket.put_object(key, b"x")
    result = bucket.list_objects_v2(delimiter="/")
    assert result.prefix_list == ["a/", "b/", "d/"]
    assert [o.key for o in result.object_list] == ["c"]
    first = bucket.list_objects_v2(delimiter="/", max_keys=2)
    assert first.prefix_list == ["a/", "b/"] and first.is_truncated
    rest = bucket.list_objects_v2(delimiter="/", continuation_token=first.next_continuation_token)
    assert rest.prefix_list == ["d/"] and [o.key for o in rest.object_list] == ["c"]
    nested = bucket.list_objects(prefix="d/", delimiter="/")
    assert nested.prefix_list == ["d/x/"] and nested.object_list == []


def test_the_v1_object_iterator_pages_with_markers(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    keys = sorted(f"v1/{n}" for n in range(5))
    for key in keys:
        bucket.put_object(key, b"x")
    listed = list(oss2.ObjectIterator(bucket, prefix="v1/", max_keys=2))
    assert [o.key for o in listed] == keys
    assert listed[0].etag == md5_hex(b"x") and listed[0].size == 1
    markers = [r.query.get("marker") for r in server.requests if r.operation == "ListObjects"]
    assert markers == ["", "v1/1", "v1/3"]


def test_keys_with_special_characters_round_trip_through_url_encoded_listings(
    bucket: oss2.Bucket,
) -> None:
    keys = sorted(["dir/ü & space+plus%.txt", "dir/a?b=c#d", "dir/line\u00e9/x"])
    for key in keys:
        bucket.put_object(key, key.encode())
    assert [o.key for o in oss2.ObjectIterator(bucket, prefix="dir/")] == keys
    assert bucket.get_object(keys[0]).read() == keys[0].encode()
    assert bucket.batch_delete_objects(keys).deleted_keys == keys


def test_max_keys_above_1000_is_an_invalid_argument(bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.list_objects_v2(max_keys=1001)


# -- batch delete ----------------------------------------------------------------------------
def test_batch_delete_removes_the_listed_keys_and_reports_them(bucket: oss2.Bucket) -> None:
    for key in ["x1", "x2", "keep"]:
        bucket.put_object(key, b"x")
    result = bucket.batch_delete_objects(["x1", "x2", "never-existed"])
    assert sorted(result.deleted_keys) == ["never-existed", "x1", "x2"]
    assert [o.key for o in oss2.ObjectIterator(bucket)] == ["keep"]


def _delete_body(keys: list[str], quiet: bool) -> bytes:
    objects = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f"<Delete><Quiet>{str(quiet).lower()}</Quiet>{objects}</Delete>".encode()


def test_batch_delete_in_quiet_mode_answers_without_keys(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    bucket.put_object("q", b"x")
    body = _delete_body(["q"], quiet=True)
    response = send(
        signed(
            server,
            "POST",
            data=body,
            params={"delete": ""},
            headers={"Content-MD5": oss2.utils.content_md5(body)},
        )
    )
    assert response.status_code == 200 and b"<Deleted>" not in response.content
    assert not bucket.object_exists("q")


def test_batch_delete_requires_a_matching_content_md5(server: OssTestServer) -> None:
    body = _delete_body(["a"], quiet=False)
    wrong = send(
        signed(
            server,
            "POST",
            data=body,
            params={"delete": ""},
            headers={"Content-MD5": oss2.utils.content_md5(b"other")},
        )
    )
    assert (wrong.status_code, error_code(wrong)) == (400, "InvalidDigest")
    missing = send(signed(server, "POST", data=body, params={"delete": ""}))
    assert (missing.status_code, error_code(missing)) == (400, "InvalidDigest")


def test_batch_delete_of_more_than_1000_keys_is_malformed(bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.MalformedXml):
        bucket.batch_delete_objects([f"k{n}" for n in range(1001)])


# -- multipart -------------------------------------------------------------------------------
def _upload(bucket: oss2.Bucket, key: str, sizes: list[int]) -> tuple[str, list[PartInfo], bytes]:
    upload_id = bucket.init_multipart_upload(key).upload_id
    parts = []
    for number, data in enumerate(parts_of(sizes), start=1):
        result = bucket.upload_part(key, upload_id, number, data)
        parts.append(PartInfo(number, result.etag, size=len(data), part_crc=result.crc))
    return upload_id, parts, b"".join(parts_of(sizes))


def test_a_three_part_upload_gets_an_oss_style_etag_and_whole_object_crc(
    bucket: oss2.Bucket,
) -> None:
    upload_id, parts, data = _upload(bucket, "mp/obj", [100 * KIB, 150 * KIB, 10])
    done = bucket.complete_multipart_upload("mp/obj", upload_id, parts)  # oss2 checks the CRC
    part_md5s = b"".join(hashlib.md5(p).digest() for p in parts_of([100 * KIB, 150 * KIB, 10]))
    assert done.etag == f"{hashlib.md5(part_md5s).hexdigest().upper()}-3"
    assert done.crc == crc64(data)
    head = bucket.head_object("mp/obj")
    assert head.object_type == "Multipart" and head.content_length == len(data)
    assert bucket.get_object("mp/obj").read() == data
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts("mp/obj", upload_id)


def test_parts_listed_out_of_order_fail_with_invalid_part_order(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    upload_id, parts, _ = _upload(bucket, "mp/order", [100 * KIB, 100 * KIB])
    body = oss2.xml_utils.to_complete_upload_request(list(reversed(parts)))
    response = send(signed(server, "POST", "mp/order", data=body, params={"uploadId": upload_id}))
    assert (response.status_code, error_code(response)) == (400, "InvalidPartOrder")


def test_a_part_etag_that_does_not_match_fails_with_invalid_part(bucket: oss2.Bucket) -> None:
    upload_id, parts, _ = _upload(bucket, "mp/etag", [100 * KIB, 10])
    parts[1] = PartInfo(2, md5_hex(b"not the part"))
    with pytest.raises(oss2.exceptions.ServerError) as error:
        bucket.complete_multipart_upload("mp/etag", upload_id, parts)
    assert (error.value.status, error.value.code) == (400, "InvalidPart")
    parts[1] = PartInfo(3, parts[0].etag)
    with pytest.raises(oss2.exceptions.ServerError, match="InvalidPart"):
        bucket.complete_multipart_upload("mp/etag", upload_id, parts)


def test_a_non_final_part_under_100_kib_fails_with_entity_too_small(
    bucket: oss2.Bucket,
) -> None:
    upload_id, parts, _ = _upload(bucket, "mp/small", [100 * KIB - 1, 100 * KIB])
    with pytest.raises(oss2.exceptions.ServerError) as error:
        bucket.complete_multipart_upload("mp/small", upload_id, parts)
    assert (error.value.status, error.value.code) == (400, "EntityTooSmall")
    bucket.complete_multipart_upload("mp/small", upload_id, parts[:1])  # alone it is last


def test_abort_discards_an_upload_and_later_calls_answer_no_such_upload(
    bucket: oss2.Bucket,
) -> None:
    upload_id, parts, _ = _upload(bucket, "mp/abort", [10])
    assert bucket.abort_multipart_upload("mp/abort", upload_id).status == 204
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("mp/abort", upload_id, 2, b"late")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.complete_multipart_upload("mp/abort", upload_id, parts)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.abort_multipart_upload("mp/abort", upload_id)
    assert not bucket.object_exists("mp/abort")


def test_list_parts_pages_with_part_number_markers(bucket: oss2.Bucket) -> None:
    upload_id, parts, _ = _upload(bucket, "mp/list", [10, 20, 30, 40, 50])
    first = bucket.list_parts("mp/list", upload_id, max_parts=2)
    assert [p.part_number for p in first.parts] == [1, 2] and first.is_truncated
    assert first.parts[1].size == 20 and first.parts[1].etag == parts[1].etag
    rest = bucket.list_parts("mp/list", upload_id, marker=first.next_marker)
    assert [p.part_number for p in rest.parts] == [3, 4, 5] and not rest.is_truncated
    listed = list(oss2.PartIterator(bucket, "mp/list", upload_id, max_parts=2))
    assert [p.part_number for p in listed] == [1, 2, 3, 4, 5]


def test_upload_part_copy_copies_the_range_asked_and_completes_into_those_bytes(
    bucket: oss2.Bucket,
) -> None:
    source = os.urandom(300 * KIB)
    bucket.put_object("copy/src", source)
    upload_id = bucket.init_multipart_upload("copy/dst").upload_id
    first = bucket.upload_part_copy(
        BUCKET, "copy/src", (100 * KIB, 250 * KIB - 1), "copy/dst", upload_id, 1
    )
    second = bucket.upload_part_copy(
        BUCKET, "copy/src", (0, 100 * KIB - 1), "copy/dst", upload_id, 2
    )
    tail = bucket.upload_part("copy/dst", upload_id, 3, b"uploaded, not copied")
    assert first.etag == md5_hex(source[100 * KIB : 250 * KIB])
    assert first.headers["Content-Range"] == f"bytes {100 * KIB}-{250 * KIB - 1}/{300 * KIB}"
    assert b"<CopyPartResult>" in first.resp.read()
    listed = bucket.list_parts("copy/dst", upload_id).parts
    assert [(p.part_number, p.size, p.etag) for p in listed] == [
        (1, 150 * KIB, first.etag),
        (2, 100 * KIB, second.etag),
        (3, 20, tail.etag),
    ]
    expected = source[100 * KIB : 250 * KIB] + source[: 100 * KIB] + b"uploaded, not copied"
    done = bucket.complete_multipart_upload(
        "copy/dst",
        upload_id,
        [PartInfo(1, first.etag), PartInfo(2, second.etag), PartInfo(3, tail.etag)],
    )
    assert done.crc == crc64(expected)
    assert bucket.get_object("copy/dst").read() == expected


def test_upload_part_copy_without_a_range_copies_the_whole_source(bucket: oss2.Bucket) -> None:
    bucket.put_object("whole/src", b"all of it")
    upload_id = bucket.init_multipart_upload("whole/dst").upload_id
    part = bucket.upload_part_copy(BUCKET, "whole/src", None, "whole/dst", upload_id, 1)
    assert part.etag == md5_hex(b"all of it") and "Content-Range" not in part.headers
    bucket.complete_multipart_upload("whole/dst", upload_id, [PartInfo(1, part.etag)])
    assert bucket.get_object("whole/dst").read() == b"all of it"


def test_upload_part_copy_with_a_stale_if_match_is_precondition_failed(bucket: oss2.Bucket) -> None:
    etag = bucket.put_object("cond/src", b"v1" * 1000).etag
    upload_id = bucket.init_multipart_upload("cond/src").upload_id
    bucket.put_object("cond/src", b"v2" * 1000)  # the source changes after the ETag was read
    for header, value in [
        ("x-oss-copy-source-if-match", f'"{etag}"'),
        ("x-oss-copy-source-if-none-match", f'"{md5_hex(b"v2" * 1000)}"'),
    ]:
        with pytest.raises(oss2.exceptions.PreconditionFailed) as error:
            bucket.upload_part_copy(
                BUCKET, "cond/src", (0, 99), "cond/src", upload_id, 1, headers={header: value}
            )
        assert error.value.status == 412
    assert bucket.list_parts("cond/src", upload_id).parts == []
    fresh = bucket.upload_part_copy(
        BUCKET,
        "cond/src",
        (0, 99),
        "cond/src",
        upload_id,
        1,
        headers={"x-oss-copy-source-if-match": f'"{md5_hex(b"v2" * 1000)}"'},
    )
    assert fresh.etag == md5_hex((b"v2" * 1000)[:100])


@pytest.mark.parametrize("byte_range", [(0, 1000), (1000, 1000), (10, 5)])
def test_upload_part_copy_of_a_range_outside_the_source_is_invalid_argument(
    bucket: oss2.Bucket, byte_range: tuple[int, int]
) -> None:
    bucket.put_object("range/src", b"x" * 1000)
    upload_id = bucket.init_multipart_upload("range/dst").upload_id
    with pytest.raises(oss2.exceptions.ServerError) as error:
        bucket.upload_part_copy(BUCKET, "range/src", byte_range, "range/dst", upload_id, 1)
    assert (error.value.status, error.value.code) == (400, "InvalidArgument")
    assert bucket.list_parts("range/dst", upload_id).parts == []


def test_upload_part_copy_needs_an_existing_source_and_upload(bucket: oss2.Bucket) -> None:
    upload_id = bucket.init_multipart_upload("gone/dst").upload_id
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.upload_part_copy(BUCKET, "gone/src", (0, 9), "gone/dst", upload_id, 1)
    bucket.put_object("gone/src", b"0123456789")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part_copy(BUCKET, "gone/src", (0, 9), "gone/dst", "NOSUCHUPLOAD", 1)


def test_an_upload_part_copy_whose_copy_source_changed_after_signing_is_rejected(
    server: OssTestServer, bucket: oss2.Bucket
) -> None:
    bucket.put_object("sig/a", b"a" * 10)
    bucket.put_object("sig/b", b"b" * 10)
    upload_id = bucket.init_multipart_upload("sig/dst").upload_id
    params = {"partNumber": "1", "uploadId": upload_id}
    request = signed(
        server, "PUT", "sig/dst", params=params, headers={"x-oss-copy-source": f"/{BUCKET}/sig%2Fa"}
    )
    assert send(request).status_code == 200
    request = signed(
        server, "PUT", "sig/dst", params=params, headers={"x-oss-copy-source": f"/{BUCKET}/sig%2Fa"}
    )
    request.headers["x-oss-copy-source"] = f"/{BUCKET}/sig%2Fb"
    response = send(request)
    assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch")
    assert [p.etag for p in bucket.list_parts("sig/dst", upload_id).parts] == [md5_hex(b"a" * 10)]
    assert server.stats.operations["UploadPartCopy"] == 2


def test_list_multipart_uploads_shows_uploads_in_progress(bucket: oss2.Bucket) -> None:
    ids = [bucket.init_multipart_upload(key).upload_id for key in ["u/a", "u/b", "u/b", "v"]]
    listed = [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket, max_uploads=1)]
    assert listed == sorted(zip(["u/a", "u/b", "u/b", "v"], ids, strict=True))
    grouped = bucket.list_multipart_uploads(delimiter="/")
    assert grouped.prefix_list == ["u/"] and [u.key for u in grouped.upload_list] == ["v"]
    bucket.abort_multipart_upload("v", ids[3])
    assert [u.key for u in bucket.list_multipart_uploads(prefix="v").upload_list] == []


def test_concurrent_upload_parts_are_seen_in_flight_together(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    upload_id = bucket.init_multipart_upload("mp/parallel").upload_id
    in_flight = threading.Barrier(3, timeout=10)

    def body(number: int) -> Iterator[bytes]:
        in_flight.wait()  # all three requests have sent their headers...
        # ...and the server has all three in flight (the high-water mark, which stays put)
        assert server.stats.wait_for(lambda stats: stats.max_concurrent_upload_parts >= 3)
        yield bytes([number]) * (100 * KIB)

    results: dict[int, oss2.models.PutObjectResult] = {}

    def upload(number: int) -> None:
        results[number] = bucket.upload_part("mp/parallel", upload_id, number, body(number))

    threads = [threading.Thread(target=upload, args=(n,)) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert server.stats.max_concurrent_upload_parts == 3
    parts = [
        PartInfo(n, results[n].etag, size=100 * KIB, part_crc=results[n].crc) for n in (1, 2, 3)
    ]
    bucket.complete_multipart_upload("mp/parallel", upload_id, parts)
    assert bucket.get_object("mp/parallel").read() == b"".join(
        bytes([n]) * (100 * KIB) for n in (1, 2, 3)
    )


def test_resumable_upload_and_download_with_threads_round_trip(
    bucket: oss2.Bucket, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(1024 * KIB + 7))
    store = oss2.ResumableStore(root=str(tmp_path / "resume"))
    oss2.resumable_upload(
        bucket,
        "big/file",
        str(source),
        store=store,
        multipart_threshold=200 * KIB,
        part_size=100 * KIB,
        num_threads=4,
    )
    assert bucket.head_object("big/file").object_type == "Multipart"
    target = tmp_path / "target.bin"
    oss2.resumable_download(
        bucket,
        "big/file",
        str(target),
        multiget_threshold=200 * KIB,
        part_size=128 * KIB,
        num_threads=4,
        store=oss2.ResumableDownloadStore(root=str(tmp_path / "resume")),
    )
    assert target.read_bytes() == source.read_bytes()


# -- buckets and lifecycle -------------------------------------------------------------------
def test_lifecycle_round_trips_and_is_no_such_lifecycle_when_unset(bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.NoSuchLifecycle):
        bucket.get_bucket_lifecycle()
    rule = LifecycleRule(
        "expire-tmp", "tmp/", status=LifecycleRule.ENABLED, expiration=LifecycleExpiration(days=3)
    )
    bucket.put_bucket_lifecycle(BucketLifecycle([rule]))
    (got,) = bucket.get_bucket_lifecycle().rules
    assert (got.id, got.prefix, got.status, got.expiration.days) == (
        "expire-tmp",
        "tmp/",
        "Enabled",
        3,
    )
    bucket.delete_bucket_lifecycle()
    with pytest.raises(oss2.exceptions.NoSuchLifecycle):
        bucket.get_bucket_lifecycle()


def test_head_bucket_answers_200_for_a_bucket_and_404_with_x_oss_err_otherwise(
    server: OssTestServer,
) -> None:
    assert send(signed(server, "HEAD")).status_code == 200
    missing = oss2.http.Request("HEAD", f"{server.endpoint}/nobucket/")
    oss2.Auth(AK, SECRET)._sign_request(missing, "nobucket", "")
    response = send(missing)
    assert response.status_code == 404 and response.content == b""
    assert b"<Code>NoSuchBucket</Code>" in base64.b64decode(response.headers["x-oss-err"])


def test_create_bucket_then_get_bucket_info_and_a_second_create_conflicts(
    server: OssTestServer,
) -> None:
    fresh = oss2.Bucket(oss2.Auth(AK, SECRET), server.endpoint, "fresh-bucket")
    fresh.create_bucket(oss2.BUCKET_ACL_PUBLIC_READ)
    info = fresh.get_bucket_info()
    assert (info.name, info.acl.grant, info.storage_class) == (
        "fresh-bucket",
        "public-read",
        "Standard",
    )
    with pytest.raises(oss2.exceptions.ServerError) as error:
        fresh.create_bucket()
    assert (error.value.status, error.value.code) == (409, "BucketAlreadyExists")
    names = [
        b.name for b in oss2.BucketIterator(oss2.Service(oss2.Auth(AK, SECRET), server.endpoint))
    ]
    assert names == [BUCKET, "fresh-bucket"]
    fresh.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        fresh.delete_bucket()
    fresh.delete_object("k")
    fresh.delete_bucket()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        fresh.get_bucket_info()


# -- authentication --------------------------------------------------------------------------
def test_a_correctly_signed_raw_request_is_accepted(server: OssTestServer) -> None:
    response = send(
        signed(
            server,
            "PUT",
            "raw",
            data=b"raw body",
            headers={"Content-Type": "text/plain", "x-oss-meta-a": "1"},
        )
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"{md5_hex(b"raw body")}"'


def test_a_request_signed_with_the_wrong_secret_is_rejected(server: OssTestServer) -> None:
    wrong = oss2.Bucket(oss2.Auth(AK, SECRET + "x"), server.endpoint, BUCKET)
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as error:
        wrong.put_object("k", b"data")
    assert error.value.status == 403
    with pytest.raises(oss2.exceptions.ServerError, match="SignatureDoesNotMatch"):
        wrong.get_object("k")


def test_an_unknown_access_key_is_rejected(server: OssTestServer) -> None:
    stranger = oss2.Bucket(oss2.Auth("nobody", SECRET), server.endpoint, BUCKET)
    with pytest.raises(oss2.exceptions.ServerError) as error:
        stranger.list_objects()
    assert (error.value.status, error.value.code) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize(
    "header, new_value",
    [
        ("Content-Type", "text/html"),
        ("x-oss-meta-a", "2"),
        ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
    ],
)
def test_changing_one_signed_header_after_signing_is_rejected(
    server: OssTestServer, header: str, new_value: str
) -> None:
    request = signed(
        server,
        "PUT",
        "tamper",
        data=b"hello world",
        headers={
            "Content-Type": "text/plain",
            "x-oss-meta-a": "1",
            "Content-MD5": oss2.utils.content_md5(b"hello world"),
        },
    )
    request.headers[header] = new_value
    response = send(request)
    assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch")


def test_changing_a_signed_subresource_after_signing_is_rejected(server: OssTestServer) -> None:
    request = signed(server, "GET", "k", params={"uploadId": "A"})
    request.params["uploadId"] = "B"
    response = send(request)
    assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch")


def test_a_date_twenty_minutes_old_is_rejected_as_too_skewed(
    server: OssTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        oss2.utils,
        "http_date",
        lambda timeval=None: email.utils.formatdate(time.time() - 1200, usegmt=True),
    )
    response = send(signed(server, "GET", "k"))
    assert (response.status_code, error_code(response)) == (403, "RequestTimeTooSkewed")


def test_changing_the_date_after_signing_is_rejected(server: OssTestServer) -> None:
    request = signed(server, "GET", "", params={"list-type": "2"})
    request.headers["date"] = email.utils.formatdate(time.time() + 60, usegmt=True)
    response = send(request)
    assert (response.status_code, error_code(response)) == (403, "SignatureDoesNotMatch")


def test_an_anonymous_request_is_access_denied(server: OssTestServer) -> None:
    anonymous = oss2.Bucket(oss2.AnonymousAuth(), server.endpoint, BUCKET)
    with pytest.raises(oss2.exceptions.AccessDenied):
        anonymous.list_objects()
    assert requests.get(f"{server.endpoint}/{BUCKET}/k", timeout=10).status_code == 403


def test_sts_credentials_with_a_live_token_are_accepted(server: OssTestServer) -> None:
    access_key, secret, token = server.issue_sts_credentials(ttl_seconds=900)
    sts = oss2.Bucket(oss2.StsAuth(access_key, secret, token), server.endpoint, BUCKET)
    sts.put_object("sts", b"temporary")
    assert sts.get_object("sts").read() == b"temporary"
    without_token = oss2.Bucket(oss2.Auth(access_key, secret), server.endpoint, BUCKET)
    with pytest.raises(oss2.exceptions.ServerError, match="InvalidAccessKeyId"):
        without_token.get_object("sts")


def test_an_expired_sts_token_is_rejected(server: OssTestServer) -> None:
    server.add_sts_token("old-token", "STS.old", "old-secret", expires_at=time.time() - 1)
    expired = oss2.Bucket(
        oss2.StsAuth("STS.old", "old-secret", "old-token"), server.endpoint, BUCKET
    )
    with pytest.raises(oss2.exceptions.ServerError) as error:
        expired.list_objects()
    assert (error.value.status, error.value.code) == (403, "SecurityTokenExpired")
    forged = oss2.Bucket(oss2.StsAuth("STS.old", "old-secret", "forged"), server.endpoint, BUCKET)
    with pytest.raises(oss2.exceptions.ServerError, match="InvalidSecurityToken"):
        forged.list_objects()


def test_signature_v4_requests_are_verified(server: OssTestServer) -> None:
    v4 = oss2.Bucket(oss2.AuthV4(AK, SECRET), server.endpoint, BUCKET, region="cn-hangzhou")
    v4.put_object("v4/key one", b"v4 body", headers={"x-oss-meta-v": "4"})
    assert v4.get_object("v4/key one").read() == b"v4 body"
    assert [o.key for o in oss2.ObjectIteratorV2(v4, prefix="v4/")] == ["v4/key one"]
    assert requests.get(v4.sign_url("GET", "v4/key one", 60), timeout=10).content == b"v4 body"
    upload_id, parts, data = _upload(v4, "v4/multi", [100 * KIB, 5])
    v4.complete_multipart_upload("v4/multi", upload_id, parts)
    assert v4.get_object("v4/multi").read() == data
    wrong = oss2.Bucket(oss2.AuthV4(AK, "bad"), server.endpoint, BUCKET, region="cn-hangzhou")
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        wrong.get_object("v4/key one")


def test_sts_credentials_work_with_signature_v4_and_expire_there_too(server: OssTestServer) -> None:
    access_key, secret, token = server.issue_sts_credentials(ttl_seconds=60)
    v4 = oss2.Bucket(
        oss2.StsAuth(access_key, secret, token, auth_version=oss2.AUTH_VERSION_4),
        server.endpoint,
        BUCKET,
        region="cn-hangzhou",
    )
    v4.put_object("sts-v4", b"ok")
    server.add_sts_token(token, access_key, secret, expires_at=time.time() - 1)
    with pytest.raises(oss2.exceptions.ServerError, match="SecurityTokenExpired"):
        v4.get_object("sts-v4")


def test_presigned_v1_urls_work_until_they_expire_or_are_altered(bucket: oss2.Bucket) -> None:
    bucket.put_object("shared", b"presigned")
    url = bucket.sign_url("GET", "shared", 60)
    assert requests.get(url, timeout=10).content == b"presigned"
    assert requests.get(url.replace("Signature=", "Signature=x"), timeout=10).status_code == 403
    expired = requests.get(bucket.sign_url("GET", "shared", -10), timeout=10)
    assert (expired.status_code, error_code(expired)) == (403, "AccessDenied")


# -- faults, logs, keep-alive, restart, command line -----------------------------------------
def test_an_injected_fault_fails_the_next_request_then_the_server_recovers(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    bucket.put_object("f", b"x")
    server.inject_fault("GetObject", status=503, code="ServiceUnavailable", times=1)
    with pytest.raises(oss2.exceptions.ServerError) as error:
        bucket.get_object("f")
    assert (error.value.status, error.value.code) == (503, "ServiceUnavailable")
    assert bucket.get_object("f").read() == b"x"
    server.inject_fault("PutObject", disconnect=True)
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.put_object("f", b"y" * 1000)
    assert bucket.get_object("f").read() == b"x"


def test_a_lost_answer_fault_applies_the_request_and_drops_its_answer(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    server.inject_fault("PutObject", lose_answer=True)
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.put_object("lost", b"applied all the same")
    assert bucket.get_object("lost").read() == b"applied all the same"
    assert server.requests[-2].operation == "PutObject" and server.requests[-2].status == 0


def test_the_request_log_records_method_path_and_query(
    bucket: oss2.Bucket, server: OssTestServer
) -> None:
    bucket.put_object("a/b c", b"x")
    bucket.list_objects_v2(prefix="a/")
    put, listing = server.requests[-2:]
    assert (put.method, put.path, put.query, put.status) == ("PUT", f"/{BUCKET}/a%2Fb%20c", {}, 200)
    assert listing.method == "GET" and listing.operation == "ListObjectsV2"
    assert listing.query["list-type"] == "2" and listing.query["prefix"] == "a/"
    assert server.stats.operations["PutObject"] == 1


def test_an_error_with_an_unread_body_leaves_the_connection_usable(
    server: OssTestServer,
) -> None:
    session = oss2.Session(pool_size=1)
    wrong = oss2.Bucket(oss2.Auth(AK, "bad"), server.endpoint, BUCKET, session=session)
    right = oss2.Bucket(oss2.Auth(AK, SECRET), server.endpoint, BUCKET, session=session)
    for _ in range(2):
        with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
            wrong.put_object("k", os.urandom(512 * KIB))
        assert right.put_object("k", b"ok").status == 200


def test_a_restarted_server_keeps_objects_uploads_and_lifecycle(tmp_path: Path) -> None:
    root = tmp_path / "persist"
    with OssTestServer(root, {AK: SECRET}, buckets=[BUCKET]) as first:
        b1 = oss2.Bucket(oss2.Auth(AK, SECRET), first.endpoint, BUCKET)
        b1.put_object("kept", b"still here")
        upload_id = b1.init_multipart_upload("pending").upload_id
        b1.upload_part("pending", upload_id, 1, b"part")
        b1.put_bucket_lifecycle(BucketLifecycle([LifecycleRule("r", "p/")]))
    with OssTestServer(root, {AK: SECRET}) as second:
        b2 = oss2.Bucket(oss2.Auth(AK, SECRET), second.endpoint, BUCKET)
        assert b2.get_object("kept").read() == b"still here"
        assert [p.size for p in b2.list_parts("pending", upload_id).parts] == [4]
        assert b2.get_bucket_lifecycle().rules[0].id == "r"


def test_the_command_module_exports_the_package_names() -> None:
    from argosy.testing import oss, oss_server
    from argosy.testing.oss import server as server_module

    assert oss_server.OssTestServer is oss.OssTestServer is OssTestServer
    assert all(
        getattr(oss_server, name) is getattr(server_module, name) for name in oss_server.__all__
    )


def test_the_command_line_server_serves_oss2(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "argosy.testing.oss_server",
            "--port",
            "0",
            "--data",
            str(tmp_path / "cli"),
            "--access-key",
            AK,
            "--secret",
            SECRET,
            "--bucket",
            BUCKET,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        endpoint = line.split(" on ")[1].split()[0]
        cli_bucket = oss2.Bucket(oss2.Auth(AK, SECRET), endpoint, BUCKET)
        cli_bucket.put_object("from-cli", b"hi")
        assert cli_bucket.get_object("from-cli").read() == b"hi"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
