"""Large artifacts through the plugin, once each: 1 GiB against Ceph RGW, 64 MiB against
the OSS test server. Everything is compared by its CRC32C, never held in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from argosy.artifacts.checksum import crc32c
from argosy.artifacts.record import read_record
from argosy.plugin import artifact_pb2 as pb
from tests.plugin.conftest import Plugin, Storage, artifact

MiB = 1 << 20
BLOCK = 16 * MiB


def _write(path: Path, size: int) -> int:
    crc = 0
    with open(path, "wb") as out:
        for at in range(0, size, BLOCK):
            block = os.urandom(min(BLOCK, size - at))
            crc = crc32c(block, crc)
            out.write(block)
    return crc


def _crc_of(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            crc = crc32c(block, crc)
    return crc


def _chunks(path: Path, first: pb.Artifact) -> Iterator[pb.SaveStreamArtifactRequest]:
    yield pb.SaveStreamArtifactRequest(output_artifact=first)
    with open(path, "rb") as handle:
        while chunk := handle.read(2 * MiB):
            yield pb.SaveStreamArtifactRequest(chunk=chunk)


@pytest.mark.parametrize(("which", "size"), [("rgw", 1024 * MiB), ("oss", 64 * MiB)])
def test_a_large_artifact_goes_through_every_data_call_verified(
    plugin: Plugin, which: str, size: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    storage: Storage = request.getfixturevalue(f"{which}_storage")
    source = tmp_path / "big.bin"
    crc = _write(source, size)
    saved = plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(source), output_artifact=artifact(storage.configuration, "big/saved")
        )
    )
    assert saved.success, saved.error
    info = storage.driver.stat("big/saved")
    record = read_record(info.metadata, size=info.size).record
    assert record is not None and record.crc == crc and info.size == size

    loaded = plugin.stub.Load(
        pb.LoadArtifactRequest(
            input_artifact=artifact(storage.configuration, "big/saved"),
            path=str(tmp_path / "loaded.bin"),
        )
    )
    assert loaded.success, loaded.error
    assert _crc_of(tmp_path / "loaded.bin") == crc
    (tmp_path / "loaded.bin").unlink()

    streamed, frames, ended = 0, 0, False
    for frame in plugin.stub.OpenStream(
        pb.OpenStreamRequest(artifact=artifact(storage.configuration, "big/saved"))
    ):
        assert not frame.error and not ended
        streamed = crc32c(frame.data, streamed)
        frames += 1
        ended = frame.is_end
    assert ended and streamed == crc and frames >= size // (2 * MiB)

    kept = plugin.stub.SaveStream(_chunks(source, artifact(storage.configuration, "big/streamed")))
    assert kept.success, kept.error
    info = storage.driver.stat("big/streamed")
    record = read_record(info.metadata, size=info.size).record
    assert record is not None and record.crc == crc and info.size == size
