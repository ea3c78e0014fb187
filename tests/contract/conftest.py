"""Every driver gets the same contract suite: local, moto, the OSS test server and Ceph RGW."""

from __future__ import annotations

import pytest

from tests.conftest import oss_driver, s3_driver, unique_bucket


@pytest.fixture(params=["local", "moto", "oss", pytest.param("rgw", marks=pytest.mark.rgw)])
def driver(request: pytest.FixtureRequest, tmp_path):
    if request.param == "local":
        from argosy.artifacts.drivers.local import LocalDriver

        d = LocalDriver(tmp_path / "repo", unique_bucket())
        d.create_bucket()
        return d
    if request.param == "moto":
        endpoint = request.getfixturevalue("moto_endpoint")
        return s3_driver(endpoint, "moto-key", "moto-secret", unique_bucket())
    if request.param == "oss":
        server = request.getfixturevalue("oss_server")
        return oss_driver(server.endpoint, unique_bucket())
    env = request.getfixturevalue("rgw")
    return s3_driver(env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"],
                     env["AWS_SECRET_ACCESS_KEY"], unique_bucket())
