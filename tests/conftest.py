"""Servers the suite needs: moto and the OSS test server in-process, and the Ceph RGW that
scripts/test starts.

RGW is never optional: a test marked `rgw` fails when ARGOSY_RGW_ENV is not set. To run
without it, deselect explicitly with `-m "not rgw"`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

OSS_ACCESS_KEY, OSS_SECRET = "argosy-oss-access-key", "argosy-oss-secret"

# The user's own folders Argosy writes by default (checkpoints of killed uploads, local
# repositories), as the environment the suite was started in names them.
USER_CACHE = Path(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "argosy"
)
USER_DATA = Path(
    os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share"),
    "argosy",
)
# Variables that would lead a test, or a command it runs, into the user's folders: the
# home folders, and Argosy's own places for checkpoints and local repositories.
_HOME_VARIABLES = ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")
_LEADING_OUT = ("ARGOSY_CHECKPOINT_DIR", "ARGOSY_LOCAL_ROOT")
_saved: dict[str, str | None] = {}
_homes: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """The suite runs in a home of its own, made before any test is collected: every
    test and every process it starts (they inherit the environment) writes its
    checkpoints, local repositories and caches under a temporary folder, never in the
    user's. A test that wants a folder of its own still sets HOME or XDG_* itself."""
    home = Path(tempfile.mkdtemp(prefix="argosy-test-home-"))
    _homes.append(home)
    places = {
        "HOME": home,
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_STATE_HOME": home / ".local" / "state",
    }
    for name in (*_HOME_VARIABLES, *_LEADING_OUT):
        _saved[name] = os.environ.pop(name, None)
    for name, place in places.items():
        os.environ[name] = str(place)


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in _saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
    for home in _homes:
        shutil.rmtree(home, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_env_file(path: str) -> dict[str, str]:
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value.strip("'\"")
    return env


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def oss_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One OSS protocol test server for the session; tests that inject faults start their
    own so that no fault leaks into another test."""
    from argosy.testing.oss.server import OssTestServer

    server = OssTestServer(tmp_path_factory.mktemp("oss"), {OSS_ACCESS_KEY: OSS_SECRET})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rgw() -> dict[str, str]:
    path = os.environ.get("ARGOSY_RGW_ENV")
    if not path or not Path(path).is_file():
        pytest.fail(
            "Ceph RGW is not running: start it with scripts/test (or scripts/rgw.sh "
            "start DIR and export ARGOSY_RGW_ENV=DIR/env), or deselect with -m 'not rgw'"
        )
    return read_env_file(path)


def unique_bucket(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def s3_driver(endpoint: str, access: str, secret: str, bucket: str, *, create: bool = True):
    from argosy.artifacts.drivers.s3 import S3Driver, S3Settings

    driver = S3Driver(
        S3Settings(
            endpoint=endpoint,
            region="us-east-1",
            access_key=access,
            secret_key=secret,
            addressing_style="path",
        ),
        bucket,
    )
    if create:
        driver.create_bucket()
    return driver


def oss_driver(endpoint: str, bucket: str, *, create: bool = True, **settings: Any):
    from argosy.artifacts.drivers.oss import OssDriver, OssSettings

    options = {"access_key": OSS_ACCESS_KEY, "secret_key": OSS_SECRET, **settings}
    driver = OssDriver(OssSettings(endpoint=endpoint, **options), bucket)
    if create:
        driver.create_bucket()
    return driver
