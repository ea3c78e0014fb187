"""Every driver gets the same contract suite: local, moto, the OSS test server and Ceph RGW.
S3 runs twice on each server: on its static route (object requests on the direct path,
no botocore) and on the route botocore resolves (`-sdk`: what AWS's credential chain,
SSE-KMS and SSE-C take)."""

from __future__ import annotations

import pytest

from tests.conftest import oss_driver, s3_driver, unique_bucket


@pytest.fixture(
    params=[
        "local",
        "moto",
        "moto-sdk",
        "oss",
        pytest.param("rgw", marks=pytest.mark.rgw),
        pytest.param("rgw-sdk", marks=pytest.mark.rgw),
    ]
)
def driver(request: pytest.FixtureRequest, tmp_path):
    if request.param == "local":
        from argosy.artifacts.drivers.local import LocalDriver

        d = LocalDriver(tmp_path / "repo", unique_bucket())
        d.create_bucket()
        return d
    if request.param == "oss":
        server = request.getfixturevalue("oss_server")
        return oss_driver(server.endpoint, unique_bucket())
    if request.param.startswith("moto"):
        made = s3_driver(
            request.getfixturevalue("moto_endpoint"), "moto-key", "moto-secret", unique_bucket()
        )
    else:
        env = request.getfixturevalue("rgw")
        made = s3_driver(
            env["AWS_ENDPOINT_URL"],
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            unique_bucket(),
        )
    return on_route(made, sdk=request.param.endswith("-sdk"))


def on_route(made, *, sdk: bool):
    """The same bucket and settings on the static route, or on botocore's."""
    from argosy.artifacts.drivers.s3 import S3Driver, make_client

    client = make_client(made.settings) if sdk else None
    driver = S3Driver(made.settings, made.bucket, client=client)
    assert driver._wire != sdk
    return driver


def same_service(driver, bucket: str):
    """A driver for another bucket (or, with "", the service alone) of the same service,
    reached the same way."""
    from argosy.artifacts.drivers.local import LocalDriver
    from argosy.artifacts.drivers.s3 import S3Driver, make_client

    if isinstance(driver, LocalDriver):
        return LocalDriver(driver.root, bucket)
    if isinstance(driver, S3Driver):
        client = make_client(driver.settings) if not driver._wire else None
        return S3Driver(driver.settings, bucket, client=client)
    from argosy.artifacts.drivers.oss import OssDriver

    return OssDriver(driver.settings, bucket)
