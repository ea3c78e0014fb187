"""The OSS driver against the OSS protocol test server, driven through the real oss2
client: CRC64 checks that fail when the bytes differ, credentials and STS, retries of
injected faults, the lifecycle merge, parallel parts, and the CLI as a user runs it."""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
from oss2.models import BucketLifecycle, LifecycleExpiration, LifecycleRule

from argosy.artifacts import download, upload
from argosy.artifacts.checksum import crc32c
from argosy.artifacts.drivers import oss
from argosy.artifacts.drivers.oss import Lifecycle, OssDriver, OssPart, OssSettings, streams
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    IntegrityError,
    InvalidSpec,
    NotFound,
    PreconditionFailed,
    TransientError,
)
from argosy.artifacts.protocol import Part
from argosy.artifacts.record import Record
from argosy.artifacts.retry import Retrier, RetryPolicy
from argosy.artifacts.settings import TransferSettings
from argosy.testing.oss.server import OssTestServer
from bench import rss
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, oss_driver, s3_driver, unique_bucket

MiB = 1 << 20
FAST_RETRY = RetryPolicy(attempts=5, base=0.01, cap=0.05)
SMALL_PARTS = TransferSettings(
    part_size=5 * MiB,
    multipart_threshold=5 * MiB,
    stream_part_size=5 * MiB,
    concurrency=4,
    retry=FAST_RETRY,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OssTestServer]:
    """A server of the test's own, so injected faults and counters stay in the test."""
    with OssTestServer(tmp_path / "oss", {OSS_ACCESS_KEY: OSS_SECRET}) as running:
        yield running


@pytest.fixture
def driver(server: OssTestServer) -> OssDriver:
    return oss_driver(server.endpoint, unique_bucket())


def _oss2_bucket(server: OssTestServer, name: str) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(OSS_ACCESS_KEY, OSS_SECRET), server.endpoint, name)


# -- CRC64 ------------------------------------------------------------------------------------
def test_the_crc64_is_oss_s_and_part_crcs_combine_into_the_whole_objects() -> None:
    assert oss.crc64(b"123456789") == 0x995DC9BBDF1939FA
    first, second = os.urandom(5 * MiB), os.urandom(12345)
    assert oss.crc64_combine(oss.crc64(first), oss.crc64(second), len(second)) == oss.crc64(
        first + second
    )


def test_a_download_corrupted_in_transit_fails_its_crc64_check_and_leaves_no_file(
    driver: OssDriver, server: OssTestServer, tmp_path: Path
) -> None:
    # no Argosy record on this object: the CRC64 is the only check that can catch it
    data = os.urandom(300 * 1024)
    driver.put("foreign.bin", data, size=len(data), metadata={})
    (tmp_path / "out").mkdir()
    server.corrupt_get(key="foreign.bin")
    with pytest.raises(IntegrityError, match="CRC64 mismatch"):
        download.download_file(driver, "foreign.bin", tmp_path / "out" / "f", settings=SMALL_PARTS)
    assert os.listdir(tmp_path / "out") == []
    got = download.download_file(
        driver, "foreign.bin", tmp_path / "out" / "f", settings=SMALL_PARTS
    )
    assert (tmp_path / "out" / "f").read_bytes() == data and not got.verified


def test_a_part_whose_crc64_differs_from_the_servers_fails_and_the_upload_is_aborted(
    driver: OssDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").write_bytes(os.urandom(12 * MiB))
    monkeypatch.setattr(streams, "crc64", lambda data, crc=0: 0)  # what we sent "differs"
    with pytest.raises(IntegrityError, match="part .*CRC64"):
        upload.upload_file(driver, "bad/parts", tmp_path / "src", settings=SMALL_PARTS)
    assert driver.list_uploads("bad/") == []
    with pytest.raises(NotFound):
        driver.stat("bad/parts")


def test_a_put_whose_crc64_differs_from_the_servers_leaves_no_object(
    driver: OssDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "crc64", lambda data, crc=0: 0)
    with pytest.raises(IntegrityError, match="deleted"):
        driver.put("bad/put", b"some bytes", size=10, metadata={})
    with pytest.raises(NotFound):
        driver.stat("bad/put")


def test_complete_checks_the_whole_objects_crc64_against_the_parts(driver: OssDriver) -> None:
    upload_id = driver.create_upload("whole", metadata={})
    first = driver.upload_part("whole", upload_id, 1, os.urandom(200 * 1024), size=200 * 1024)
    second = driver.upload_part("whole", upload_id, 2, b"tail", size=4)
    assert isinstance(first, OssPart) and first.crc64 is not None
    assert second.crc64 is not None
    wrong = OssPart(second.number, second.etag, second.size, crc64=second.crc64 ^ 1)
    with pytest.raises(IntegrityError, match="complete"):
        driver.complete_upload("whole", upload_id, [first, wrong])
    with pytest.raises(NotFound):
        driver.stat("whole")


def test_listed_parts_carry_their_crc64_so_a_resumed_upload_is_checked_whole(
    driver: OssDriver,
) -> None:
    upload_id = driver.create_upload("resumed", metadata={})
    sent = driver.upload_part("resumed", upload_id, 1, os.urandom(200 * 1024), size=200 * 1024)
    (listed,) = driver.list_parts("resumed", upload_id)
    assert isinstance(listed, OssPart) and listed == sent


def test_a_missing_crcmod_extension_is_an_error_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.import_module("crcmod.crcmod"), "_usingExtension", False)
    with pytest.raises(InvalidSpec, match="crcmod's C extension.*pip install"):
        OssDriver(OssSettings(endpoint="http://127.0.0.1:1", access_key="a", secret_key="s"), "b")


# -- credentials ------------------------------------------------------------------------------
def test_a_wrong_secret_is_access_denied_and_the_secret_is_never_shown(
    server: OssTestServer, driver: OssDriver
) -> None:
    wrong = OssDriver(
        OssSettings(
            endpoint=server.endpoint, access_key=OSS_ACCESS_KEY, secret_key="not-the-secret-xyz"
        ),
        driver.bucket,
    )
    with pytest.raises(AccessDenied, match="SignatureDoesNotMatch") as error:
        wrong.put("k", b"x", size=1, metadata={})
    assert "not-the-secret-xyz" not in str(error.value)
    assert "not-the-secret-xyz" not in repr(wrong.settings)


def test_sts_credentials_work_until_the_token_expires(
    server: OssTestServer, driver: OssDriver
) -> None:
    access_key, secret, token = server.issue_sts_credentials(ttl_seconds=900)
    sts = OssDriver(
        OssSettings(
            endpoint=server.endpoint, access_key=access_key, secret_key=secret, security_token=token
        ),
        driver.bucket,
    )
    sts.put("sts", b"temporary", size=9, metadata={})
    server.add_sts_token(token, access_key, secret, expires_at=time.time() - 1)
    with pytest.raises(AccessDenied, match="expired") as error:
        sts.stat("sts")
    assert token not in str(error.value)


def test_no_credentials_at_all_is_access_denied_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith(("OSS_", "ALIBABA_CLOUD_")):
            monkeypatch.delenv(name)
    with pytest.raises(AccessDenied, match="no credentials"):
        OssDriver(OssSettings(endpoint="http://127.0.0.1:1"), "bucket")
    with pytest.raises(AccessDenied, match="useSDKCreds"):
        OssDriver(OssSettings(endpoint="http://127.0.0.1:1", use_sdk_creds=True), "bucket")


def test_sdk_credentials_come_from_the_oss_environment_variables(
    server: OssTestServer, driver: OssDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", OSS_ACCESS_KEY)
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", OSS_SECRET)
    from_env = OssDriver(OssSettings(endpoint=server.endpoint, use_sdk_creds=True), driver.bucket)
    from_env.put("env", b"ok", size=2, metadata={})
    assert from_env.stat("env").size == 2


def test_signature_v4_is_used_when_a_region_is_set(tmp_path: Path) -> None:
    with OssTestServer(
        tmp_path / "v4", {OSS_ACCESS_KEY: OSS_SECRET}, region="cn-hangzhou"
    ) as v4_server:
        driver = oss_driver(v4_server.endpoint, unique_bucket(), region="cn-hangzhou")
        driver.put("v4", b"signed", size=6, metadata={"a": "1"})
        assert driver.stat("v4").metadata == {"a": "1"}
        wrong_region = oss_driver(
            v4_server.endpoint, driver.bucket, create=False, region="cn-beijing"
        )
        with pytest.raises(InvalidSpec, match="InvalidArgument"):
            wrong_region.stat("v4")


def test_a_bucket_in_another_region_names_the_endpoint_to_use() -> None:
    error = oss2.exceptions.AccessDenied(
        403,
        {"x-oss-request-id": "R1"},
        b"",
        {"Code": "AccessDenied", "Endpoint": "oss-cn-beijing.aliyuncs.com"},
    )
    mapped = oss.map_error(error, "oss://b/k")
    assert isinstance(mapped, InvalidSpec) and "oss-cn-beijing.aliyuncs.com" in str(mapped)


def test_tls_with_a_custom_ca_bundle_works_and_without_it_fails_clearly(
    server: OssTestServer, driver: OssDriver, tmp_path: Path
) -> None:
    from tests.tls_proxy import TlsProxy, make_cert

    cert, key = make_cert(tmp_path)
    proxy = TlsProxy(server.port, cert, key)
    try:
        endpoint = f"https://127.0.0.1:{proxy.port}"
        trusted = oss_driver(endpoint, driver.bucket, create=False, verify=str(cert))
        trusted.put("tls", b"over tls", size=8, metadata={})
        untrusted = oss_driver(endpoint, driver.bucket, create=False)
        with pytest.raises(ArtifactError, match="certificate verify failed"):
            untrusted.stat("tls")
        insecure = oss_driver(endpoint, driver.bucket, create=False, verify=False)
        assert insecure.stat("tls").size == 8
    finally:
        proxy.close()


# -- retries and parallel parts ---------------------------------------------------------------
@pytest.mark.parametrize(
    "operation", ["UploadPart", "CompleteMultipartUpload", "GetObject", "HeadObject"]
)
def test_a_503_injected_once_is_retried_by_the_engine_and_the_copy_succeeds(
    driver: OssDriver, server: OssTestServer, tmp_path: Path, operation: str
) -> None:
    data = os.urandom(11 * MiB)
    (tmp_path / "src").write_bytes(data)
    server.inject_fault(operation, status=503, code="ServiceUnavailable", times=1)
    upload.upload_file(driver, "retry/me", tmp_path / "src", settings=SMALL_PARTS)
    got = download.download_file(driver, "retry/me", tmp_path / "back", settings=SMALL_PARTS)
    assert got.verified and (tmp_path / "back").read_bytes() == data
    assert server.stats.statuses[503] == 1


def test_a_dropped_connection_during_a_part_is_retried(
    driver: OssDriver, server: OssTestServer, tmp_path: Path
) -> None:
    (tmp_path / "src").write_bytes(os.urandom(11 * MiB))
    server.inject_fault("UploadPart", disconnect=True, times=1)
    result = upload.upload_file(driver, "drop/me", tmp_path / "src", settings=SMALL_PARTS)
    assert result.record is not None and result.parts == 3


def test_a_complete_whose_answer_was_lost_is_accepted_when_the_object_is_ours(
    driver: OssDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").write_bytes(os.urandom(11 * MiB))
    real = driver.complete_upload
    calls: list[str] = []

    def answer_lost(key: str, upload_id: str, parts: list[Part]) -> str:
        calls.append(upload_id)
        etag = real(key, upload_id, parts)
        if len(calls) == 1:
            raise TransientError("simulated: the connection dropped after the server answered")
        return etag

    monkeypatch.setattr(driver, "complete_upload", answer_lost)
    result = upload.upload_file(driver, "lost/answer", tmp_path / "src", settings=SMALL_PARTS)
    assert len(calls) == 2 and result.record is not None


def test_a_200_mib_upload_sends_several_parts_at_once(
    driver: OssDriver, server: OssTestServer, tmp_path: Path
) -> None:
    data = os.urandom(200 * MiB)
    (tmp_path / "big").write_bytes(data)
    result = upload.upload_file(driver, "big", tmp_path / "big", settings=SMALL_PARTS)
    assert result.parts == 40
    assert server.stats.operations["UploadPart"] == 40
    assert server.stats.max_concurrent_upload_parts >= 2
    stored = driver.stat("big")
    assert stored.size == len(data)
    assert stored.metadata["argosy-checksum"] == f"crc32c:{crc32c(data):08x}"


# -- the record of objects past the copy limit ------------------------------------------------
def test_the_copy_limit_is_oss_s_1_gb() -> None:
    assert OssDriver.copy_limit == 1_000_000_000


def test_an_object_past_the_copy_limit_gets_its_record_by_a_multipart_copy(
    driver: OssDriver, server: OssTestServer, tmp_path: Path
) -> None:
    driver.copy_limit = 8 * MiB  # as if this 20 MiB file were past OSS's 1 GB
    data = os.urandom(20 * MiB + 12345)
    (tmp_path / "src").write_bytes(data)
    result = upload.upload_file(driver, "past/limit", tmp_path / "src", settings=SMALL_PARTS)
    assert result.record is not None and result.note == "" and result.parts == 5
    # three copies of 8, 8 and 4 MiB of the object itself, no CopyObject, no bytes resent
    assert server.stats.operations["UploadPartCopy"] == 3
    assert server.stats.operations["CopyObject"] == 0
    assert server.stats.operations["UploadPart"] == 5
    stored = driver.stat("past/limit")
    assert stored.etag == result.etag and stored.etag.endswith("-3")
    assert stored.metadata["argosy-checksum"] == f"crc32c:{crc32c(data):08x}"
    assert driver.list_uploads("past/") == []
    got = download.download_file(driver, "past/limit", tmp_path / "back", settings=SMALL_PARTS)
    assert got.verified and (tmp_path / "back").read_bytes() == data


def test_a_copied_part_is_the_range_asked_and_a_stale_etag_is_precondition_failed(
    driver: OssDriver,
) -> None:
    data = os.urandom(300 * 1024)
    etag = driver.put("part/src", data, size=len(data), metadata={})
    upload_id = driver.create_upload("part/src", metadata={"note": "copied"})
    part = driver.copy_part("part/src", upload_id, 1, start=1000, end=200 * 1024 - 1, if_match=etag)
    assert isinstance(part, OssPart) and part.size == 200 * 1024 - 1000
    assert part.crc64 is None  # the test server, like OSS's recorded answers, sends none
    (listed,) = driver.list_parts("part/src", upload_id)
    assert (listed.number, listed.etag, listed.size) == (1, part.etag, part.size)
    with pytest.raises(PreconditionFailed):
        driver.copy_part("part/src", upload_id, 2, start=0, end=99, if_match="0" * 32)
    with pytest.raises(InvalidSpec, match="InvalidArgument"):
        driver.copy_part("part/src", upload_id, 2, start=0, end=len(data), if_match=etag)
    driver.abort_upload("part/src", upload_id)


def test_a_copied_part_with_a_server_crc64_is_checked_whole_at_complete(
    driver: OssDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300 * 1024)
    etag = driver.put("crc/src", data, size=len(data), metadata={})
    real = driver._client.upload_part_copy
    told: list[int] = []

    def reporting_crc64(
        source_bucket: str,
        source_key: str,
        byte_range: tuple[int, int],
        *args: object,
        **kwargs: object,
    ) -> object:
        """An OSS that does send x-oss-hash-crc64ecma with the copied part (the first one
        a wrong value)."""
        result = real(source_bucket, source_key, byte_range, *args, **kwargs)
        crc = oss.crc64(data[byte_range[0] : byte_range[1] + 1])
        result.headers["x-oss-hash-crc64ecma"] = str(crc ^ 1 if not told else crc)
        told.append(crc)
        return result

    monkeypatch.setattr(driver._client, "upload_part_copy", reporting_crc64)
    for attempt in ("wrong", "right"):
        upload_id = driver.create_upload("crc/src", metadata={})
        parts = [
            driver.copy_part("crc/src", upload_id, 1, start=0, end=200 * 1024 - 1, if_match=etag),
            driver.copy_part(
                "crc/src", upload_id, 2, start=200 * 1024, end=len(data) - 1, if_match=etag
            ),
        ]
        assert all(isinstance(p, OssPart) and p.crc64 is not None for p in parts)
        if attempt == "wrong":
            with pytest.raises(IntegrityError, match="complete"):
                driver.complete_upload("crc/src", upload_id, parts)
            with pytest.raises(NotFound):  # a known-bad object is not left under its key
                driver.stat("crc/src")
            etag = driver.put("crc/src", data, size=len(data), metadata={})
        else:
            driver.complete_upload("crc/src", upload_id, parts)
            assert driver.stat("crc/src").size == len(data)


def test_an_object_that_changed_before_its_record_was_copied_stays_unverified_and_whole(
    driver: OssDriver, tmp_path: Path
) -> None:
    driver.copy_limit = 8 * MiB
    ours, theirs = os.urandom(12 * MiB), os.urandom(12 * MiB)
    ours_etag = driver.put("raced", ours, size=len(ours), metadata={})
    their_etag = driver.put("raced", theirs, size=len(theirs), metadata={"owner": "them"})
    record = Record(crc32c(ours), len(ours), len(ours), [crc32c(ours)])
    retrier = Retrier(FAST_RETRY)
    with pytest.raises(PreconditionFailed):
        upload._replace_by_parts(
            driver, "raced", ours_etag, len(ours), record.to_metadata(), retrier, 2
        )
    etag, kept, note = upload._record_after(driver, "raced", ours_etag, record, {}, retrier, 2)
    assert kept is None and "unverified" in note and etag == ours_etag
    stored = driver.stat("raced")  # the other writer's object, untouched, nothing lost
    assert stored.etag == their_etag and stored.metadata == {"owner": "them"}
    assert driver.list_uploads("raced") == []
    got = download.download_file(driver, "raced", tmp_path / "back", settings=SMALL_PARTS)
    assert (tmp_path / "back").read_bytes() == theirs and not got.verified


# -- buckets and lifecycle --------------------------------------------------------------------
def _rules(server: OssTestServer, bucket: str) -> dict[str, LifecycleRule]:
    return {r.id: r for r in _oss2_bucket(server, bucket).get_bucket_lifecycle().rules}


def test_the_lifecycle_merge_keeps_the_buckets_other_rules(
    driver: OssDriver, server: OssTestServer
) -> None:
    theirs = LifecycleRule(
        "their-tmp", "tmp/", status=LifecycleRule.ENABLED, expiration=LifecycleExpiration(days=3)
    )
    _oss2_bucket(server, driver.bucket).put_bucket_lifecycle(BucketLifecycle([theirs]))
    driver.merge_lifecycle(30, 90, prefix="runs/")
    driver.merge_lifecycle(7, 60, prefix="runs/")  # replaces our rule, not theirs
    rules = _rules(server, driver.bucket)
    assert sorted(rules) == [oss.LIFECYCLE_RULE_ID, "their-tmp"]
    assert (rules["their-tmp"].prefix, rules["their-tmp"].expiration.days) == ("tmp/", 3)
    ours = rules[oss.LIFECYCLE_RULE_ID]
    assert (ours.prefix, ours.status, ours.expiration.days) == ("runs/", "Enabled", 60)
    assert [(t.days, t.storage_class) for t in ours.storage_transitions] == [(7, "IA")]
    driver.merge_lifecycle(None, None)
    assert sorted(_rules(server, driver.bucket)) == ["their-tmp"]


def test_a_bucket_without_lifecycle_gets_argosy_s_rule_alone(
    driver: OssDriver, server: OssTestServer
) -> None:
    driver.merge_lifecycle(None, 14)
    (rule,) = _rules(server, driver.bucket).values()
    assert (rule.id, rule.prefix, rule.expiration.days, rule.storage_transitions) == (
        oss.LIFECYCLE_RULE_ID,
        "",
        14,
        [],
    )


def test_infrequent_access_must_come_before_deletion(driver: OssDriver) -> None:
    with pytest.raises(InvalidSpec, match="less than"):
        driver.merge_lifecycle(30, 30)


def test_the_first_write_creates_a_missing_bucket_and_sets_the_lifecycle(
    server: OssTestServer,
) -> None:
    bucket = unique_bucket()
    driver = oss_driver(
        server.endpoint,
        bucket,
        create=False,
        create_bucket_if_not_present=True,
        lifecycle=Lifecycle(10, 20, prefix="argo/"),
    )
    driver.put("argo/x", b"x", size=1, metadata={})
    assert driver.stat("argo/x").size == 1
    assert _rules(server, bucket)[oss.LIFECYCLE_RULE_ID].prefix == "argo/"


# -- the command line ---------------------------------------------------------------------------
def _argosy(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "argosy", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _cli_env(server: OssTestServer, tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "ARGOSY_"))}
    return {
        **keep,
        "HOME": str(tmp_path),
        "ARGOSY_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
        "OSS_ENDPOINT": server.endpoint,
        "OSS_ACCESS_KEY_ID": OSS_ACCESS_KEY,
        "OSS_ACCESS_KEY_SECRET": OSS_SECRET,
    }


@pytest.fixture
def cli_env(oss_server: OssTestServer, tmp_path: Path) -> dict[str, str]:
    return _cli_env(oss_server, tmp_path)


def test_the_cli_copies_lists_and_removes_with_oss_environment_variables(
    oss_server: OssTestServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    bucket = oss_driver(oss_server.endpoint, unique_bucket()).bucket
    data = os.urandom(7 * MiB + 5)
    (tmp_path / "file.bin").write_bytes(data)
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "a.txt").write_text("a")
    (tmp_path / "dir" / "sub" / "b.txt").write_text("b")

    up = _argosy(
        cli_env, tmp_path, "cp", "--part-size", "5", "file.bin", f"oss://{bucket}/run/file.bin"
    )
    assert up.returncode == 0, up.stderr
    assert _argosy(cli_env, tmp_path, "cp", "-r", "dir", f"oss://{bucket}/run/dir/").returncode == 0
    back = _argosy(cli_env, tmp_path, "cp", f"oss://{bucket}/run/file.bin", "back.bin")
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "back.bin").read_bytes() == data
    info = json.loads(_argosy(cli_env, tmp_path, "stat", f"oss://{bucket}/run/file.bin").stdout)
    assert info["verified"] is True and info["size"] == len(data)

    listing = _argosy(cli_env, tmp_path, "ls", f"oss://{bucket}/run/").stdout
    assert re.search(rf"^ *PRE +oss://{bucket}/run/dir/$", listing, re.M), listing
    assert re.search(rf"^ *{len(data)} +\S+ +oss://{bucket}/run/file.bin$", listing, re.M)
    removed = _argosy(cli_env, tmp_path, "rm", "-r", f"oss://{bucket}/run/dir")
    assert removed.returncode == 0, removed.stderr
    left = _argosy(cli_env, tmp_path, "ls", "-r", f"oss://{bucket}/").stdout
    assert "dir/" not in left and "run/file.bin" in left


def test_a_complete_applied_but_unanswered_then_refused_invalid_part_is_verified_and_cp_exits_0(
    server: OssTestServer, tmp_path: Path
) -> None:
    # OSS answers a retried Complete of an upload it already completed with InvalidPart:
    # the first Complete's answer is lost after it was applied, the retry gets that
    bucket = oss_driver(server.endpoint, unique_bucket()).bucket
    data = os.urandom(12 * MiB)
    (tmp_path / "src").write_bytes(data)
    server.inject_fault("CompleteMultipartUpload", lose_answer=True)
    server.inject_fault("CompleteMultipartUpload", status=400, code="InvalidPart")
    env = _cli_env(server, tmp_path)
    up = _argosy(env, tmp_path, "cp", "--part-size", "5", "src", f"oss://{bucket}/lost")
    assert up.returncode == 0, up.stderr
    assert [r.status for r in server.requests if r.operation == "CompleteMultipartUpload"] == [
        0,
        400,
    ]
    back = _argosy(env, tmp_path, "cp", f"oss://{bucket}/lost", "back")
    assert back.returncode == 0 and "verified crc32c:" in back.stderr, back.stderr
    assert (tmp_path / "back").read_bytes() == data


def test_a_retried_complete_refused_while_another_object_was_stored_fails_integrity(
    driver: OssDriver, server: OssTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").write_bytes(os.urandom(11 * MiB))
    real = driver.complete_upload
    calls: list[str] = []

    def answer_lost_then_overwritten(key: str, upload_id: str, parts: list[Part]) -> str:
        calls.append(upload_id)
        if len(calls) == 1:
            real(key, upload_id, parts)
            driver.put(key, b"another writer", size=14, metadata={})
            server.inject_fault("CompleteMultipartUpload", status=400, code="InvalidPart")
            raise TransientError("simulated: the answer was lost")
        return real(key, upload_id, parts)

    monkeypatch.setattr(driver, "complete_upload", answer_lost_then_overwritten)
    with pytest.raises(IntegrityError, match="not the one uploaded"):
        upload.upload_file(driver, "replaced", tmp_path / "src", settings=SMALL_PARTS)
    assert len(calls) == 2


def test_a_first_complete_refused_invalid_part_is_a_failure_not_bad_input(
    server: OssTestServer, tmp_path: Path
) -> None:
    bucket = oss_driver(server.endpoint, unique_bucket()).bucket
    (tmp_path / "src").write_bytes(os.urandom(11 * MiB))
    server.inject_fault("CompleteMultipartUpload", status=400, code="InvalidPart")
    env = _cli_env(server, tmp_path)
    up = _argosy(env, tmp_path, "cp", "--part-size", "5", "src", f"oss://{bucket}/refused")
    assert up.returncode == 1 and "InvalidPart" in up.stderr, up.stderr
    assert _argosy(env, tmp_path, "stat", f"oss://{bucket}/refused").returncode == 3


class _RandomBytes:
    """`size` random bytes, read as a stream: a large source never held whole."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, view: memoryview) -> int:
        n = min(len(view), self.left, 4 * MiB)
        view[:n] = os.urandom(n)
        self.left -= n
        return n


@pytest.mark.rgw
def test_a_copy_from_rgw_to_oss_holds_no_more_memory_than_the_stream_formula(
    rgw: dict[str, str], server: OssTestServer, tmp_path: Path
) -> None:
    settings = TransferSettings()
    source = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        unique_bucket("r2o"),
    )
    size = 400_000_000
    upload.upload_stream(source, "big", _RandomBytes(size), settings=settings)  # type: ignore[arg-type]
    source.put("tiny", b"x", size=1, metadata={})
    target = oss_driver(server.endpoint, unique_bucket())
    env = {**_cli_env(server, tmp_path), **{k: v for k, v in rgw.items() if k.startswith("AWS_")}}

    def copy(key: str) -> rss.Measured:
        command = [sys.executable, "-m", "argosy", "cp", "-q"]
        url = f"s3://{source.bucket}/{key}"
        return rss.run(
            [*command, url, f"oss://{target.bucket}/{key}"], env=env, cwd=tmp_path, timeout=300
        )

    try:
        baseline, big = copy("tiny"), copy("big")  # the interpreter and both drivers; the copy
    finally:
        source.delete(["big", "tiny"])
    assert baseline.returncode == 0 and big.returncode == 0, big.stderr
    formula = (settings.stream_parts + 1) * settings.stream_part_size  # the README's bound
    assert big.peak_rss < baseline.peak_rss + formula, (big.peak_rss >> 20, baseline.peak_rss >> 20)
    stored = target.stat("big")
    assert stored.size == size and stored.metadata["argosy-size"] == str(size)
    got = download.download_file(target, "big", tmp_path / "back", settings=settings)
    assert got.verified


def test_the_cli_exits_5_on_a_wrong_secret_and_3_on_a_missing_key(
    oss_server: OssTestServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    bucket = oss_driver(oss_server.endpoint, unique_bucket()).bucket
    missing = _argosy(cli_env, tmp_path, "cat", f"oss://{bucket}/nothing")
    assert missing.returncode == 3 and f"oss://{bucket}/nothing" in missing.stderr
    wrong = _argosy(
        {**cli_env, "OSS_ACCESS_KEY_SECRET": "wrong-secret-123"}, tmp_path, "ls", f"oss://{bucket}/"
    )
    assert wrong.returncode == 5, wrong.stderr
    assert "wrong-secret-123" not in wrong.stderr and len(wrong.stderr.splitlines()) == 1


def test_the_cli_takes_an_argo_oss_repository_entry(
    oss_server: OssTestServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets" / "oss-creds"
    secrets.mkdir(parents=True)
    (secrets / "accessKey").write_text(OSS_ACCESS_KEY)
    (secrets / "secretKey").write_text(OSS_SECRET)
    bucket = unique_bucket()
    (tmp_path / "repo.yaml").write_text(f"""
oss:
  bucket: {bucket}
  endpoint: {oss_server.endpoint}
  accessKeySecret: {{name: oss-creds, key: accessKey}}
  secretKeySecret: {{name: oss-creds, key: secretKey}}
  createBucketIfNotPresent: true
  lifecycleRule: {{markInfrequentAccessAfterDays: 5, markDeletionAfterDays: 30}}
keyFormat: "artifacts/{{{{workflow.name}}}}/{{{{pod.name}}}}"
""")
    env = {k: v for k, v in cli_env.items() if not k.startswith("OSS_")}
    env["ARGOSY_SECRETS_DIR"] = str(tmp_path / "secrets")
    (tmp_path / "f").write_text("from a repository entry")
    got = _argosy(
        env, tmp_path, "cp", "--repository", "repo.yaml", "f", f"oss://{bucket}/artifacts/wf/f"
    )
    assert got.returncode == 0, got.stderr
    assert (
        _oss2_bucket(oss_server, bucket).get_object("artifacts/wf/f").read()
        == b"from a repository entry"
    )
    rule = _rules(oss_server, bucket)[oss.LIFECYCLE_RULE_ID]
    assert (rule.prefix, rule.expiration.days) == ("artifacts/", 30)


def _checkpointed(folder: Path) -> set[int]:
    files = list(folder.glob("*.json"))
    return {int(n) for n in json.loads(files[0].read_text())["parts"]} if files else set()


def test_a_killed_cli_upload_resumes_sending_only_the_missing_parts(
    server: OssTestServer, tmp_path: Path
) -> None:
    parts = 30
    driver = oss_driver(server.endpoint, unique_bucket())
    data = os.urandom(parts * 5 * MiB)
    (tmp_path / "big").write_bytes(data)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "ARGOSY_"))}
    env = {
        **keep,
        "OSS_ENDPOINT": server.endpoint,
        "OSS_ACCESS_KEY_ID": OSS_ACCESS_KEY,
        "OSS_ACCESS_KEY_SECRET": OSS_SECRET,
        "ARGOSY_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
    }
    args = [
        sys.executable,
        "-m",
        "argosy",
        "cp",
        "--part-size",
        "5",
        "--concurrency",
        "2",
        str(tmp_path / "big"),
        f"oss://{driver.bucket}/big",
    ]

    first = subprocess.Popen(args, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_checkpointed(tmp_path / "ckpt")) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    kept = _checkpointed(tmp_path / "ckpt")
    assert 8 <= len(kept) < parts

    # parts the killed process had in flight end at the server only now
    assert server.stats.wait_for(lambda stats: stats.in_flight == 0)
    sent_before = server.stats.operations["UploadPart"]
    second = subprocess.run(args, env=env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert server.stats.operations["UploadPart"] - sent_before == parts - len(kept)
    assert f"resumed: {len(kept)} of {parts} parts".encode() in second.stderr
    assert driver.list_uploads("") == []
    stored = driver.stat("big")
    assert stored.size == len(data)
    assert stored.metadata["argosy-checksum"] == f"crc32c:{crc32c(data):08x}"
