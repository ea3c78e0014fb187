"""useSDKCreds on ACK (RRSA): the real oss2 client, through OssDriver, gets its credentials
from STS AssumeRoleWithOIDC (the STS test server) with nothing but the pod's environment,
and signs with them against the OSS test server. One fake clock drives both servers and
the driver, so expiry and refresh are tested without sleeping."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import oss2
import pytest

from argosy.artifacts.drivers.oss import OssDriver, OssSettings
from argosy.artifacts.errors import (
    AccessDenied,
    ArtifactError,
    NotFound,
    PermanentError,
    ThrottledError,
    TransientError,
)
from argosy.testing.oss.server import OssTestServer
from argosy.testing.oss.sts import StsTestServer
from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET, free_port, oss_driver, unique_bucket

ROLE = "acs:ram::1234567890123456:role/argo-artifacts"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.first-token.signature"


@dataclass
class Clock:
    """Unix seconds that move only when a test says so."""

    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    import time

    return Clock(time.time())


@pytest.fixture
def oss(tmp_path: Path, clock: Clock) -> Iterator[OssTestServer]:
    # the fake clock runs hours ahead of the Date header oss2 signs with: allow any skew
    with OssTestServer(
        tmp_path / "oss", {OSS_ACCESS_KEY: OSS_SECRET}, clock=clock, max_skew_seconds=10**9
    ) as running:
        yield running


@pytest.fixture
def sts(oss: OssTestServer) -> Iterator[StsTestServer]:
    with StsTestServer(oss) as running:
        running.allow(ROLE, PROVIDER, TOKEN)
        yield running


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "rrsa-tokens" / "token"
    path.parent.mkdir()
    path.write_text(TOKEN)
    return path


@pytest.fixture
def pod_env(
    monkeypatch: pytest.MonkeyPatch, sts: StsTestServer, token_file: Path
) -> dict[str, str]:
    """The environment ACK's RRSA webhook gives a pod, and no other credentials."""
    for name in list(os.environ):
        if name.startswith(("OSS_", "ALIBABA_CLOUD_", "ALIBABACLOUD_")):
            monkeypatch.delenv(name)
    env = {
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
        "ALIBABA_CLOUD_STS_ENDPOINT": sts.endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def bucket(oss: OssTestServer) -> str:
    return oss_driver(oss.endpoint, unique_bucket()).bucket


def rrsa_driver(oss: OssTestServer, bucket: str, clock: Clock) -> OssDriver:
    return OssDriver(OssSettings(endpoint=oss.endpoint, use_sdk_creds=True), bucket, clock=clock)


def static_driver(oss: OssTestServer, bucket: str) -> OssDriver:
    return oss_driver(oss.endpoint, bucket, create=False)


def put_requests(oss: OssTestServer) -> list[str]:
    return [r.path for r in oss.requests if r.operation == "PutObject"]


# -- the happy path ----------------------------------------------------------------------------
@pytest.mark.usefixtures("pod_env")
def test_a_pod_with_only_the_rrsa_variables_puts_and_reads_an_object(
    oss: OssTestServer, sts: StsTestServer, bucket: str, clock: Clock
) -> None:
    driver = rrsa_driver(oss, bucket, clock)
    driver.put("rrsa/object", b"signed by STS", size=13, metadata={"from": "rrsa"})
    stream = driver.read("rrsa/object")
    buffer = bytearray(64)
    got = stream.readinto(memoryview(buffer))
    stream.close()
    assert bytes(buffer[:got]) == b"signed by STS"
    assert driver.stat("rrsa/object").metadata == {"from": "rrsa"}
    assert [i.role_arn for i in sts.issued] == [ROLE]  # one STS call served all three
    assert sts.issued[0].access_key_id.startswith("STS.")
    assert static_driver(oss, bucket).stat("rrsa/object").size == 13


@pytest.mark.usefixtures("pod_env")
def test_upload_threads_starting_together_share_one_sts_call(
    oss: OssTestServer, sts: StsTestServer, bucket: str, clock: Clock
) -> None:
    provider = rrsa_driver(oss, bucket, clock)._client.auth.credentials_provider
    start = threading.Barrier(8)
    keys: list[str] = []

    def sign() -> None:
        start.wait()
        keys.append(provider.get_credentials().get_access_key_id())

    threads = [threading.Thread(target=sign) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sts.calls == 1 and len(keys) == 8 and set(keys) == {sts.issued[0].access_key_id}


# -- refresh and expiry ------------------------------------------------------------------------
@pytest.mark.usefixtures("pod_env")
def test_credentials_are_refreshed_shortly_before_they_expire_and_not_used_after(
    oss: OssTestServer, sts: StsTestServer, bucket: str, clock: Clock
) -> None:
    driver = rrsa_driver(oss, bucket, clock)
    driver.put("a", b"1", size=1, metadata={})
    first = sts.issued[0]
    clock.now = first.expires_at - 301  # more than the 5-minute margin left: kept
    driver.put("b", b"2", size=1, metadata={})
    assert len(sts.issued) == 1
    clock.now = first.expires_at - 299  # inside the margin: refreshed before use
    driver.put("c", b"3", size=1, metadata={})
    assert len(sts.issued) == 2
    clock.now = sts.issued[1].expires_at + 1  # the second expired too: a third is fetched
    driver.put("d", b"4", size=1, metadata={})
    assert len(sts.issued) == 3
    assert {p.rsplit("/", 1)[-1] for p in put_requests(oss)} == {"a", "b", "c", "d"}
    assert all(r.status == 200 for r in oss.requests if r.operation == "PutObject")


@pytest.mark.usefixtures("pod_env")
def test_the_oss_server_refuses_sts_issued_credentials_after_their_expiry(
    oss: OssTestServer, sts: StsTestServer, bucket: str, clock: Clock
) -> None:
    provider = rrsa_driver(oss, bucket, clock)._client.auth.credentials_provider
    held = provider.get_credentials()
    raw = oss2.Bucket(
        oss2.StsAuth(held.access_key_id, held.access_key_secret, held.security_token),
        oss.endpoint,
        bucket,
    )
    raw.put_object("in-time", b"ok")
    clock.now = sts.issued[0].expires_at + 1
    with pytest.raises(oss2.exceptions.ServerError) as error:
        raw.put_object("too-late", b"no")
    assert error.value.code == "SecurityTokenExpired"


@pytest.mark.usefixtures("pod_env")
def test_the_rotated_token_file_is_read_again_at_each_refresh(
    oss: OssTestServer, sts: StsTestServer, bucket: str, clock: Clock, token_file: Path
) -> None:
    driver = rrsa_driver(oss, bucket, clock)
    driver.put("before", b"1", size=1, metadata={})
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.second-token.signature\n")  # kubelet rotates it
    sts.allow(ROLE, PROVIDER, "eyJhbGciOiJSUzI1NiJ9.second-token.signature")  # the old one dies
    clock.now = sts.issued[0].expires_at
    driver.put("after", b"2", size=1, metadata={})
    assert len(sts.issued) == 2
    assert static_driver(oss, bucket).stat("after").size == 1


@pytest.mark.usefixtures("pod_env")
def test_a_failed_refresh_keeps_the_still_valid_credentials_and_fails_once_they_expire(
    oss: OssTestServer, sts: StsTestServer, bucket: str, clock: Clock
) -> None:
    driver = rrsa_driver(oss, bucket, clock)
    driver.put("a", b"1", size=1, metadata={})
    first = sts.issued[0]
    sts.fail_next(503, "", times=100)
    clock.now = first.expires_at - 60
    driver.put("b", b"2", size=1, metadata={})  # STS is down; the old credentials still hold
    calls = sts.calls
    clock.now += 10
    driver.put("c", b"3", size=1, metadata={})  # not asked again within 30 s
    assert sts.calls == calls
    clock.now = first.expires_at
    with pytest.raises(TransientError, match="STS"):
        driver.put("d", b"4", size=1, metadata={})
    assert "d" not in {p.rsplit("/", 1)[-1] for p in put_requests(oss)}


# -- failures ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, code",
    [
        (
            {"token": "eyJhbGciOiJSUzI1NiJ9.someone-elses.token"},
            "AuthenticationFail.OIDCToken.Invalid",
        ),
        ({"role": "acs:ram::1234567890123456:role/no-such-role"}, "EntityNotExist.Role"),
        (
            {"provider": "acs:ram::1234567890123456:oidc-provider/other"},
            "AuthenticationFail.NoPermission",
        ),
    ],
)
def test_sts_refusing_the_token_is_access_denied_naming_sts_and_the_role_and_writes_nothing(
    oss: OssTestServer,
    bucket: str,
    clock: Clock,
    pod_env: dict[str, str],
    token_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    code: str,
) -> None:
    role = change.get("role", ROLE)
    monkeypatch.setenv("ALIBABA_CLOUD_ROLE_ARN", role)
    monkeypatch.setenv("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", change.get("provider", PROVIDER))
    token_file.write_text(change.get("token", TOKEN))
    driver = rrsa_driver(oss, bucket, clock)
    with pytest.raises(AccessDenied) as error:
        driver.put("denied", b"never", size=5, metadata={})
    message = str(error.value)
    assert error.value.code == code and "STS AssumeRoleWithOIDC" in message and role in message
    assert change.get("token", TOKEN) not in message and len(message.splitlines()) == 1
    assert put_requests(oss) == []
    with pytest.raises(NotFound):
        static_driver(oss, bucket).stat("denied")


def test_an_unreachable_sts_endpoint_fails_with_a_transient_error_naming_it(
    oss: OssTestServer,
    bucket: str,
    clock: Clock,
    pod_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ALIBABA_CLOUD_STS_ENDPOINT", nowhere)
    with pytest.raises(TransientError) as error:
        rrsa_driver(oss, bucket, clock).put("k", b"x", size=1, metadata={})
    assert f"cannot reach STS at {nowhere}" in str(error.value)
    assert error.value.code == "StsUnreachable" and put_requests(oss) == []


@pytest.mark.usefixtures("pod_env")
@pytest.mark.parametrize(
    "status, body, expected, code",
    [
        (
            503,
            '{"Code": "ServiceUnavailable", "Message": "busy"}',
            TransientError,
            "ServiceUnavailable",
        ),
        (500, "", TransientError, "500"),
        (
            400,
            '{"Code": "Throttling.User", "Message": "Request was denied due to user flow '
            'control."}',
            ThrottledError,
            "Throttling.User",
        ),
        (200, "<html>captive portal</html>", PermanentError, "StsMalformedAnswer"),
        (200, '{"Credentials": {"AccessKeyId": "STS.x"}}', PermanentError, "StsMalformedAnswer"),
    ],
)
def test_sts_server_errors_and_malformed_answers_map_onto_the_error_tree(
    oss: OssTestServer,
    sts: StsTestServer,
    bucket: str,
    clock: Clock,
    status: int,
    body: str,
    expected: type[ArtifactError],
    code: str,
) -> None:
    sts.fail_next(status, body)
    with pytest.raises(expected) as error:
        rrsa_driver(oss, bucket, clock).put("k", b"x", size=1, metadata={})
    assert type(error.value) is expected and error.value.code == code
    assert "STS" in str(error.value) and put_requests(oss) == []


def test_the_oss_server_rejects_a_request_signed_with_a_made_up_security_token(
    oss: OssTestServer, bucket: str
) -> None:
    access_key, secret, _token = oss.issue_sts_credentials()
    forged = OssDriver(
        OssSettings(
            endpoint=oss.endpoint,
            access_key=access_key,
            secret_key=secret,
            security_token="made-up-token",
        ),
        bucket,
    )
    with pytest.raises(AccessDenied) as error:
        forged.put("forged", b"x", size=1, metadata={})
    assert error.value.code == "InvalidSecurityToken"
    with pytest.raises(NotFound):
        static_driver(oss, bucket).stat("forged")


# -- the CLI -----------------------------------------------------------------------------------
def test_the_cli_uses_rrsa_for_an_oss_repository_with_use_sdk_creds(
    oss: OssTestServer, sts: StsTestServer, bucket: str, token_file: Path, tmp_path: Path
) -> None:
    (tmp_path / "repo.yaml").write_text(f"""
oss:
  bucket: {bucket}
  endpoint: {oss.endpoint}
  useSDKCreds: true
""")
    (tmp_path / "f").write_text("uploaded by a pod with RRSA")
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "ARGOSY_", "ALIBABA_CLOUD_", "ALIBABACLOUD_"))
    }
    env = {
        **keep,
        "HOME": str(tmp_path),
        "ARGOSY_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
        "ALIBABA_CLOUD_ROLE_SESSION_NAME": "argo-wf-pod-1",
        "ALIBABA_CLOUD_STS_ENDPOINT": sts.endpoint,
    }
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "argosy",
            "cp",
            "--repository",
            "repo.yaml",
            "f",
            f"oss://{bucket}/artifacts/f",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert got.returncode == 0, got.stderr
    assert [(i.role_arn, i.session_name) for i in sts.issued] == [(ROLE, "argo-wf-pod-1")]
    assert static_driver(oss, bucket).stat("artifacts/f").size == len("uploaded by a pod with RRSA")

    token_file.write_text("not-the-token")
    denied = subprocess.run(
        [
            sys.executable,
            "-m",
            "argosy",
            "cp",
            "--repository",
            "repo.yaml",
            "f",
            f"oss://{bucket}/artifacts/g",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert denied.returncode == 5, denied.stderr
    assert ROLE in denied.stderr and "STS" in denied.stderr
    assert "not-the-token" not in denied.stderr
