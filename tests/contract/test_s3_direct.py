"""Object requests skip botocore (`drivers/s3/direct.py`): on a static route (explicit
endpoint and keys) every object request, and botocore is never loaded; on a route botocore
resolved, small PUTs and small ranged GETs. On moto and Ceph RGW the server accepts their
signature, stores the same object under the same key as botocore would, and refuses them
exactly as it refuses botocore."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from datetime import datetime

import pytest

from argosy.artifacts.drivers.s3 import Encryption, S3Driver, S3Settings, wire
from argosy.artifacts.errors import AccessDenied, NotFound, PreconditionFailed
from tests.conftest import s3_driver, unique_bucket

ODD_KEYS = [
    "plain.txt",
    "with space/and+plus",
    "percent%41and~tilde",
    "ünïcödé/ключ",
    "a//double/slash",
    "star*(paren)!'quote",
    "q?mark&amp=eq#hash",
]


@pytest.fixture(params=["moto", pytest.param("rgw", marks=pytest.mark.rgw)])
def endpoint(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    if request.param == "moto":
        return request.getfixturevalue("moto_endpoint"), "moto-key", "moto-secret"
    env = request.getfixturevalue("rgw")
    return env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]


@pytest.fixture(params=["static", "resolved"])
def driver(request: pytest.FixtureRequest, endpoint: tuple[str, str, str]) -> S3Driver:
    """On a static route (the default for an explicit endpoint and keys) or on the route
    botocore resolves (a driver handed its client)."""
    made = s3_driver(*endpoint, unique_bucket())  # creates the bucket through botocore
    if request.param == "static":
        return S3Driver(made.settings, made.bucket)
    return resolved(made)


def resolved(driver: S3Driver) -> S3Driver:
    from argosy.artifacts.drivers.s3.sdk import make_client

    return S3Driver(driver.settings, driver.bucket, client=make_client(driver.settings))


def _botocore_puts(driver: S3Driver) -> list[str]:
    seen: list[str] = []
    driver._client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: seen.append(request.url)
    )
    return seen


@pytest.mark.parametrize("key", ODD_KEYS)
def test_a_small_put_goes_direct_and_reads_back_through_botocore_under_the_same_key(
    driver: S3Driver, key: str
) -> None:
    assert driver._direct is not None
    static = driver._wire
    botocore_puts = [] if static else _botocore_puts(driver)
    body = key.encode() * 10
    etag = driver.put(key, body, size=len(body), metadata={"argosy-test": "v1"})
    assert botocore_puts == []
    info = driver.stat(key)
    assert info.etag == etag and info.size == len(body)
    assert info.metadata["argosy-test"] == "v1"
    stream = driver.read(key)
    buffer = bytearray(len(body))
    assert stream.readinto(memoryview(buffer)) == len(body)
    stream.close()
    assert bytes(buffer) == body
    assert (driver._sdk_client is None) == static  # a static route never made a client
    assert key in [o.key for o in driver.list(key).objects]  # listing is botocore's
    head = driver._client.head_object(Bucket=driver.bucket, Key=key)
    assert head["ETag"].strip('"') == etag and head["Metadata"] == {"argosy-test": "v1"}


def test_a_large_body_goes_direct_on_a_static_route_only(driver: S3Driver) -> None:
    botocore_puts = [] if driver._wire else _botocore_puts(driver)
    body = b"x" * (2 << 20)
    driver.put("big", body, size=len(body), metadata={})
    assert len(botocore_puts) == (0 if driver._wire else 1)
    assert driver.stat("big").size == len(body)
    assert (driver._sdk_client is None) == driver._wire


def test_a_multipart_upload_on_a_static_route_never_loads_botocore(
    endpoint: tuple[str, str, str],
) -> None:
    made = s3_driver(*endpoint, unique_bucket())  # creates the bucket through botocore
    driver = S3Driver(made.settings, made.bucket)
    parts = [os.urandom(5 << 20), b"tail"]
    upload = driver.create_upload("mp", metadata={"argosy-test": "v3"})
    sent = [
        driver.upload_part("mp", upload, n, body, size=len(body)) for n, body in enumerate(parts, 1)
    ]
    etag = driver.complete_upload("mp", upload, sent)
    new_etag = driver.replace_metadata("mp", {"argosy-test": "v4"}, if_match=etag)
    info = driver.stat("mp")
    assert info.size == sum(map(len, parts)) and info.metadata == {"argosy-test": "v4"}
    assert info.etag == new_etag
    assert _read(driver.read("mp"), info.size) == b"".join(parts)
    aborted = driver.create_upload("gone", metadata={})
    driver.abort_upload("gone", aborted)
    assert driver._sdk_client is None
    assert [u.upload_id for u in driver.list_uploads("gone")] == []
    with pytest.raises(NotFound, match="no such multipart upload"):
        driver.abort_upload("gone", aborted)
    with pytest.raises(PreconditionFailed):
        driver.replace_metadata("mp", {}, if_match="0" * 32)


def test_every_direct_answer_is_awaited_with_immediate_acks_asked_for(
    endpoint: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RGW sends an answer's body only once its headers are ACKed (Nagle's algorithm) and
    Linux delays that ACK up to 40 ms: each request asks for the ACK at once, on the
    socket the answer arrives on, whatever the request and its outcome."""
    made = s3_driver(*endpoint, unique_bucket())
    driver = S3Driver(made.settings, made.bucket)
    asked: list[int] = []  # the type of each socket asked on
    ask = wire.ack_at_once

    def asking(sock: socket.socket | None) -> None:
        assert sock is not None
        asked.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE))
        ask(sock)

    monkeypatch.setattr(wire, "ack_at_once", asking)
    upload = driver.create_upload("k", metadata={})
    part = driver.upload_part("k", upload, 1, b"body", size=4)
    driver.complete_upload("k", upload, [part])
    with pytest.raises(NotFound):
        driver.stat("missing")
    assert len(asked) >= 4 and set(asked) == {socket.SOCK_STREAM}


def test_list_pages_and_batch_deletes_ask_for_the_ack_at_once(
    endpoint: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lists (direct on this static route) and DeleteObjects (through botocore): RGW
    writes their answers' headers and body apart too, so both paths ask for the ACK at
    once before each answer, on the socket it arrives on (plain http here, as on a
    cluster's RGW service)."""
    made = s3_driver(*endpoint, unique_bucket())
    for key in ("a/1", "a/2", "b"):
        made.put(key, b"x", size=1, metadata={})
    driver = S3Driver(made.settings, made.bucket)
    port = int(endpoint[0].rsplit(":", 1)[1])
    asked: list[int] = []  # the server port of each socket asked on
    ask = wire.ack_at_once

    def asking(sock: socket.socket | None) -> None:
        assert sock is not None
        asked.append(sock.getpeername()[1])
        ask(sock)

    monkeypatch.setattr(wire, "ack_at_once", asking)
    assert [o.key for o in driver.list("a/").objects] == ["a/1", "a/2"]
    assert asked == [port]
    assert driver.delete(["a/1", "a/2", "missing"]) == []
    assert asked == [port, port]
    assert [o.key for o in driver.list("").objects] == ["b"]
    assert asked == [port] * 3


@pytest.mark.rgw
def test_rgw_refuses_a_direct_part_signed_with_the_wrong_secret_as_access_denied(
    rgw: dict[str, str],
) -> None:
    good = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        unique_bucket(),
    )
    upload = good.create_upload("k", metadata={})
    bad = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        "not-the-secret",
        good.bucket,
        create=False,
    )
    assert bad._wire
    body = b"x" * (8 << 20)  # sent whole (no Expect): the refusal still reads as one
    with pytest.raises(AccessDenied, match="signature does not match"):
        bad.upload_part("k", upload, 1, body, size=len(body))
    with pytest.raises(AccessDenied, match="signature does not match"):
        bad.put("k", body, size=len(body), metadata={})
    assert good.list_parts("k", upload) == []
    good.abort_upload("k", upload)


@pytest.mark.parametrize("route", ["static", "resolved"])
def test_a_direct_put_to_a_missing_bucket_is_not_found_as_through_botocore(
    endpoint: tuple[str, str, str], route: str
) -> None:
    driver = s3_driver(*endpoint, unique_bucket(), create=False)
    driver = driver if route == "static" else resolved(driver)
    assert driver._direct is not None
    for body in (b"abc", b"x" * (8 << 20)):  # a large body is refused as one, not as a reset
        with pytest.raises(NotFound, match="no such bucket"):
            driver.put("k", body, size=len(body), metadata={})


@pytest.mark.rgw
def test_rgw_refuses_a_direct_put_signed_with_the_wrong_secret(rgw: dict[str, str]) -> None:
    good = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        unique_bucket(),
    )
    bad = resolved(
        s3_driver(
            rgw["AWS_ENDPOINT_URL"],
            rgw["AWS_ACCESS_KEY_ID"],
            "not-the-secret",
            good.bucket,
            create=False,
        )
    )
    assert bad._direct is not None
    with pytest.raises(AccessDenied, match="signature does not match"):
        bad.put("k", b"abc", size=3, metadata={})
    with pytest.raises(NotFound):
        good.stat("k")


@pytest.mark.parametrize("route", ["static", "resolved"])
def test_sse_s3_rides_along_as_its_header(moto_endpoint: str, route: str) -> None:
    settings = S3Settings(
        endpoint=moto_endpoint,
        region="us-east-1",
        access_key="moto-key",
        secret_key="moto-secret",
        addressing_style="path",
        encryption=Encryption(mode="s3"),
    )
    driver = S3Driver(settings, unique_bucket())
    driver = driver if route == "static" else resolved(driver)
    driver.create_bucket()
    assert driver._direct is not None
    driver.put("enc", b"secret", size=6, metadata={})
    upload = driver.create_upload("enc-mp", metadata={})
    part = driver.upload_part("enc-mp", upload, 1, b"abc", size=3)
    driver.complete_upload("enc-mp", upload, [part])
    for key in ("enc", "enc-mp"):
        head = driver._client.head_object(Bucket=driver.bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"


def test_customer_keys_and_proxies_keep_small_puts_on_botocore(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = S3Settings(
        endpoint=moto_endpoint,
        region="us-east-1",
        access_key="moto-key",
        secret_key="moto-secret",
    )
    assert S3Driver(base, "b")._wire
    sse_c = replace(base, encryption=Encryption(mode="c", customer_key=b"k" * 32))
    assert S3Driver(sse_c, "b")._direct is None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert S3Driver(base, "b")._direct is None


def _botocore_gets(driver: S3Driver) -> list[str]:
    seen: list[str] = []
    driver._client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: seen.append(request.url)
    )
    return seen


def _read(stream, size: int) -> bytes:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    stream.close()
    return bytes(buffer[:got])


@pytest.mark.parametrize("key", ODD_KEYS)
def test_a_small_range_is_read_direct_and_describes_the_object_as_botocore_does(
    driver: S3Driver, key: str
) -> None:
    body = bytes(range(256)) * 40
    direct, driver._direct = driver._direct, None
    driver.put(key, body, size=len(body), metadata={"argosy-test": "v2"})
    by_botocore = driver.read(key, start=0)  # without the direct path: botocore
    expected = by_botocore.info
    by_botocore.close()
    driver._direct = direct
    gets = _botocore_gets(driver)
    stream = driver.read(key, start=10, end=99, if_match=expected.etag)
    assert (stream.start, stream.end, stream.total) == (10, 99, len(body))
    assert _read(stream, 90) == body[10:100]
    assert gets == []
    assert stream.info.etag == expected.etag and stream.info.size == expected.size
    assert stream.info.metadata == expected.metadata
    assert stream.info.modified == expected.modified


def test_direct_reads_answer_missing_keys_and_changed_objects_as_botocore_does(
    driver: S3Driver,
) -> None:
    driver.put("k", b"abcdef", size=6, metadata={})
    with pytest.raises(NotFound, match="no such key"):
        driver.read("missing", start=0, end=5)
    with pytest.raises(PreconditionFailed):
        driver.read("k", start=0, end=5, if_match="0" * 32)


def test_a_direct_read_to_its_end_gives_its_connection_back(
    driver: S3Driver, request: pytest.FixtureRequest
) -> None:
    """RGW keeps connections open: one serves every read. moto answers `Connection:
    close`: each read then needs a connection of its own, none reused after its close."""
    driver.put("k", b"abc" * 100, size=300, metadata={})
    assert driver._direct is not None
    made = driver._direct._pool.made
    for _ in range(5):
        assert _read(driver.read("k", start=0, end=299), 300) == b"abc" * 100
    keeps_alive = request.node.callspec.params["endpoint"] == "rgw"
    assert driver._direct._pool.made - made == (0 if keeps_alive else 5)


def test_a_folder_downloads_its_small_files_without_botocore(driver: S3Driver, tmp_path) -> None:
    from argosy.artifacts import tree
    from argosy.artifacts.settings import TransferSettings

    (tmp_path / "src" / "d").mkdir(parents=True)
    for i in range(5):
        (tmp_path / "src" / "d" / f"f{i}").write_bytes(bytes([i]) * (1000 + i))
    settings = TransferSettings()
    tree.upload_tree(driver, "t", tmp_path / "src", settings=settings, manifest=True)
    gets = _botocore_gets(driver)
    got = tree.download_tree(driver, "t", tmp_path / "out", settings=settings)
    assert got.files == 5 and got.verified == 5
    assert [g for g in gets if "/t/d/" in g] == []
    for i in range(5):
        assert (tmp_path / "out" / "d" / f"f{i}").read_bytes() == bytes([i]) * (1000 + i)


@pytest.mark.parametrize("delimiter", [None, "/"])
def test_a_static_route_lists_direct_what_botocore_lists(
    endpoint: tuple[str, str, str], delimiter: str | None
) -> None:
    """ListObjectsV2 on the direct path (keys URL-encoded on the wire and decoded as
    botocore decodes them), page by page, gives the same keys, sizes, ETags, dates and
    common prefixes as botocore's, and never loads botocore."""
    made = s3_driver(*endpoint, unique_bucket())
    keys = [f"p/{k}" for k in ODD_KEYS] + ["p/sub/x", "p/sub/y", "other"]
    for i, key in enumerate(keys):
        made.put(key, b"x" * i, size=i, metadata={})
    static = S3Driver(made.settings, made.bucket)
    through_botocore = resolved(made)
    through_botocore._wire = False  # every request through botocore, listing included

    def pages(driver: S3Driver) -> list[tuple[list[tuple[str, int, str, datetime]], list[str]]]:
        got, token = [], None
        while True:
            page = driver.list("p/", delimiter=delimiter, token=token, limit=2)
            got.append(
                ([(o.key, o.size, o.etag, o.modified) for o in page.objects], list(page.prefixes))
            )
            if not page.next_token:
                return got
            token = page.next_token

    direct = pages(static)
    assert direct == pages(through_botocore)
    listed = {key for objects, _ in direct for key, *_ in objects}
    prefixes = {p for _, found in direct for p in found}
    if delimiter is None:
        assert listed == {k for k in keys if k.startswith("p/")} and not prefixes
    else:
        assert listed == {k for k in keys if k.startswith("p/") and "/" not in k[2:]}
        assert prefixes == {"p/with space/", "p/ünïcödé/", "p/a/", "p/sub/"}
    assert len(direct) > 2  # pages of 2 keys or prefixes
    assert static._sdk_client is None


def test_a_direct_listing_of_a_missing_bucket_is_not_found_as_through_botocore(
    endpoint: tuple[str, str, str],
) -> None:
    made = s3_driver(*endpoint, unique_bucket())
    static = S3Driver(made.settings, "argosy-no-such-bucket")
    with pytest.raises(NotFound):
        static.list("")
    assert static._sdk_client is None
