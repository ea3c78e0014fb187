"""The plugin's process as Argo runs it: its socket, its start, its stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from argosy.plugin import artifact_pb2 as pb
from tests.plugin.conftest import Plugin, Storage, artifact, start_plugin

MiB = 1 << 20


def test_the_socket_folder_is_made_and_the_socket_removed_at_exit(tmp_path: Path) -> None:
    socket_path = tmp_path / "artifact-plugins" / "argosy" / "socket"  # no folder yet
    plugin = start_plugin(socket_path, tmp_path)
    assert plugin.stub.GetCapabilities(pb.GetCapabilitiesRequest()).supports_save_stream
    assert plugin.stop() == 0
    assert not socket_path.exists()
    assert "SIGTERM" in plugin.output() and "stopped" in plugin.output()


def test_sigint_stops_it_cleanly_too(tmp_path: Path) -> None:
    plugin = start_plugin(tmp_path / "s" / "socket", tmp_path)
    assert plugin.stop(signal.SIGINT) == 0


def test_a_stale_socket_left_by_a_killed_run_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s" / "socket"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # bound, never listening: what a killed server leaves
    stale.close()
    plugin = start_plugin(path, tmp_path)
    assert plugin.stub.GetCapabilities(pb.GetCapabilitiesRequest()).supports_save_stream
    plugin.stop()


def test_a_file_that_is_not_a_socket_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "socket"
    path.write_text("someone's file")
    done = subprocess.run(
        [sys.executable, "-m", "argosy", "plugin", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "is not a socket" in done.stderr and len(done.stderr.splitlines()) == 1
    assert path.read_text() == "someone's file"


def test_a_second_server_on_a_socket_in_use_is_refused(tmp_path: Path) -> None:
    first = start_plugin(tmp_path / "s" / "socket", tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "argosy", "plugin", str(first.socket)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "another server is listening" in done.stderr
    assert first.stub.GetCapabilities(pb.GetCapabilitiesRequest()).supports_save_stream
    first.stop()


def _held_stream(
    storage: Storage, release: threading.Event
) -> Iterator[pb.SaveStreamArtifactRequest]:
    """A SaveStream whose client sends 10 MiB (more than a stream part: its multipart
    upload is under way), then waits for `release` before the last 2 MiB."""
    yield pb.SaveStreamArtifactRequest(output_artifact=artifact(storage.configuration, "held"))
    for i in range(10):
        yield pb.SaveStreamArtifactRequest(chunk=bytes([i]) * MiB)
    release.wait(60)
    for i in range(2):
        yield pb.SaveStreamArtifactRequest(chunk=bytes([i]) * MiB)


def test_sigterm_lets_a_call_in_flight_finish_within_the_grace_then_exits_0(
    tmp_path: Path, rgw_storage: Storage
) -> None:
    plugin = start_plugin(
        tmp_path / "s" / "socket",
        tmp_path,
        "--grace",
        "30",
        env={"ARGOSY_SECRETS_DIR": str(rgw_storage.secrets)},
    )
    release = threading.Event()
    answer = plugin.stub.SaveStream.future(_held_stream(rgw_storage, release))
    while not rgw_storage.driver.list_uploads(""):
        threading.Event().wait(0.05)  # the upload is under way
    plugin.process.send_signal(signal.SIGTERM)
    threading.Event().wait(0.5)
    release.set()  # the rest arrives after SIGTERM: the call still completes
    assert answer.result(timeout=60).success
    assert plugin.process.wait(60) == 0
    assert rgw_storage.driver.stat("held").size == 12 * MiB


def test_a_call_still_running_after_the_grace_is_cancelled_and_its_upload_aborted(
    tmp_path: Path, rgw_storage: Storage
) -> None:
    plugin = start_plugin(
        tmp_path / "s" / "socket",
        tmp_path,
        "--grace",
        "1",
        env={"ARGOSY_SECRETS_DIR": str(rgw_storage.secrets)},
    )
    release = threading.Event()
    answer = plugin.stub.SaveStream.future(_held_stream(rgw_storage, release))
    while not rgw_storage.driver.list_uploads(""):
        threading.Event().wait(0.05)
    assert plugin.stop() == 0  # never released: the call outlives the grace
    release.set()
    with pytest.raises(grpc.RpcError):
        answer.result(timeout=30)
    for _ in range(100):  # the abort goes out as the call unwinds
        if not rgw_storage.driver.list_uploads(""):
            break
        threading.Event().wait(0.1)
    assert rgw_storage.driver.list_uploads("") == []
    with pytest.raises(Exception, match="NotFound|no such"):
        rgw_storage.driver.stat("held")


def test_no_secret_is_written_to_the_plugins_log(
    plugin: Plugin, rgw_storage: Storage, tmp_path: Path
) -> None:
    secret = (rgw_storage.secrets / "rgw-creds" / "secretKey").read_text()
    (tmp_path / "f").write_bytes(os.urandom(100))
    for call in (
        plugin.stub.Save(
            pb.SaveArtifactRequest(
                path=str(tmp_path / "f"), output_artifact=artifact(rgw_storage.configuration, "k")
            )
        ),
        plugin.stub.Load(
            pb.LoadArtifactRequest(
                input_artifact=artifact(rgw_storage.configuration, "k"), path=str(tmp_path / "g")
            )
        ),
    ):
        assert call.success
    assert secret not in plugin.output() and "Save" in plugin.output()
