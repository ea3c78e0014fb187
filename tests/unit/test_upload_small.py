"""Small files are read once: the bytes checksummed for the record are the bytes sent."""

from __future__ import annotations

import os

from argosy.artifacts import download, upload
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import TransferSettings
from tests.unit.fakes import MisbehavingDriver

MiB = 1 << 20
SETTINGS = TransferSettings(
    part_size=5 * MiB, multipart_threshold=5 * MiB, retry=RetryPolicy(attempts=3, base=0.0, cap=0.0)
)


def test_a_small_file_is_read_once_and_sent_as_the_bytes_that_were_checksummed(
    tmp_path, monkeypatch
) -> None:
    driver = MisbehavingDriver(tmp_path / "repo", "b")
    driver.create_bucket()
    (tmp_path / "small").write_bytes(b"small file" * 100)
    reads: list[int] = []
    real_pread = os.pread

    def counting(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return real_pread(fd, n, offset)

    sent: list[object] = []
    real_put = driver.put

    def put(key, body, *, size, metadata):
        sent.append(body)
        return real_put(key, body, size=size, metadata=metadata)

    monkeypatch.setattr(os, "pread", counting)  # the os module upload reads through
    driver.put = put  # type: ignore[method-assign]
    result = upload.upload_file(driver, "k", tmp_path / "small", settings=SETTINGS)
    assert reads == [1000] and sent == [b"small file" * 100]
    assert (
        result.record is not None
        and result.record.checksum
        == download.download_file(driver, "k", tmp_path / "out", settings=SETTINGS).checksum
    )
