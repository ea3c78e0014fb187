"""Failures a user meets: a full disk, an interrupted or killed upload. Nothing partial
is ever left under a final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from argosy.artifacts import download
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import LocalIOError
from argosy.artifacts.settings import TransferSettings
from tests.conftest import s3_driver, unique_bucket

MiB = 1 << 20


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_fails_the_download_and_leaves_nothing(tiny_disk: Path, tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path / "repo", "b")
    driver.create_bucket()
    data = os.urandom(4 * MiB)
    driver.put("big", data, size=len(data), metadata={})
    with pytest.raises(LocalIOError, match="disk full"):
        download.download_file(
            driver, "big", tiny_disk / "big", settings=TransferSettings(part_size=5 * MiB)
        )
    assert os.listdir(tiny_disk) == []


def _start_upload(endpoint: str, bucket: str, source: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "argosy",
            "cp",
            "-q",
            "--part-size",
            "5",
            "--concurrency",
            "1",
            str(source),
            f"s3://{bucket}/big",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )


def _wait_for_upload(driver, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        uploads = driver.list_uploads("big")
        if uploads and driver.list_parts("big", uploads[0].upload_id):
            return
        time.sleep(0.05)
    raise AssertionError("the upload never started")


def test_an_upload_stopped_with_sigterm_is_aborted_and_leaves_no_object(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = unique_bucket()
    driver = s3_driver(moto_endpoint, "k", "s", bucket)
    source = tmp_path / "big"
    source.write_bytes(os.urandom(150 * MiB))
    proc = _start_upload(moto_endpoint, bucket, source)
    _wait_for_upload(driver)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"nothing was left half-written" in err
    assert driver.list_uploads("") == []
    assert driver.list("").objects == []


def test_a_killed_upload_leaves_no_object_under_its_key(moto_endpoint: str, tmp_path: Path) -> None:
    bucket = unique_bucket()
    driver = s3_driver(moto_endpoint, "k", "s", bucket)
    source = tmp_path / "big"
    source.write_bytes(os.urandom(150 * MiB))
    proc = _start_upload(moto_endpoint, bucket, source)
    _wait_for_upload(driver)
    proc.kill()
    proc.wait(timeout=30)
    assert driver.list("").objects == []
    # A SIGKILL cannot abort: the in-progress upload stays for the GC's sweeper.
    assert len(driver.list_uploads("")) == 1
