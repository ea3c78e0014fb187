"""Every call of Argo's ArtifactService, with Argo's semantics, against Ceph RGW and the
OSS test server, through a real unix socket."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from argosy.artifacts.record import read_record
from argosy.plugin import artifact_pb2 as pb
from tests.plugin.conftest import Plugin, Storage, artifact

MiB = 1 << 20


@pytest.fixture(params=["rgw", "oss"])
def storage(request: pytest.FixtureRequest) -> Storage:
    return request.getfixturevalue(f"{request.param}_storage")


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"a" * 10, "sub/b.bin": os.urandom(70_000), "sub/deep/c": b""}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _keys(storage: Storage, prefix: str = "") -> list[str]:
    from argosy.artifacts.tree import list_all

    return sorted(o.key for o in list_all(storage.driver, prefix))


def test_a_saved_file_is_one_object_with_its_checksum_and_loads_back_verified(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    data = os.urandom(3 * MiB + 17)
    (tmp_path / "out.tgz").write_bytes(data)
    saved = plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(tmp_path / "out.tgz"),
            output_artifact=artifact(storage.configuration, "wf/pod/out.tgz"),
        )
    )
    assert saved.success, saved.error
    assert _keys(storage) == ["wf/pod/out.tgz"]
    info = storage.driver.stat("wf/pod/out.tgz")
    assert read_record(info.metadata, size=info.size).verifiable
    loaded = plugin.stub.Load(
        pb.LoadArtifactRequest(
            input_artifact=artifact(storage.configuration, "wf/pod/out.tgz"),
            path=str(tmp_path / "in"),
        )
    )
    assert loaded.success, loaded.error
    assert (tmp_path / "in").read_bytes() == data
    assert "Save" in plugin.output() and "Load" in plugin.output()


def test_a_saved_folder_is_one_object_per_file_and_nothing_else(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    files = _tree(tmp_path / "out")
    saved = plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(tmp_path / "out"), output_artifact=artifact(storage.configuration, "wf/out")
        )
    )
    assert saved.success, saved.error
    assert _keys(storage) == sorted(f"wf/out/{rel}" for rel in files)  # no manifest
    for trailing in ("", "/"):
        dest = tmp_path / f"back{trailing and '-slash'}"
        loaded = plugin.stub.Load(
            pb.LoadArtifactRequest(
                input_artifact=artifact(storage.configuration, "wf/out" + trailing), path=str(dest)
            )
        )
        assert loaded.success, loaded.error
        assert _read_tree(dest) == files


def test_an_object_at_exactly_the_key_wins_over_a_folder_of_that_name(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    storage.driver.put("x", b"the object", size=10, metadata={})
    storage.driver.put("x/inside", b"folder", size=6, metadata={})
    loaded = plugin.stub.Load(
        pb.LoadArtifactRequest(
            input_artifact=artifact(storage.configuration, "x"), path=str(tmp_path / "got")
        )
    )
    assert loaded.success, loaded.error
    assert (tmp_path / "got").read_bytes() == b"the object"


def test_loading_a_missing_key_fails_naming_the_bucket_the_key_and_the_cause(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    loaded = plugin.stub.Load(
        pb.LoadArtifactRequest(
            input_artifact=artifact(storage.configuration, "no/such/key"),
            path=str(tmp_path / "got"),
        )
    )
    assert not loaded.success
    assert f"{storage.driver.bucket}/no/such/key" in loaded.error
    assert "NotFound" in loaded.error and "\n" not in loaded.error
    assert not (tmp_path / "got").exists()


def _corrupt(storage: Storage, key: str, size: int) -> None:
    """Replace the bytes but keep the checksum record of the original."""
    meta = dict(storage.driver.stat(key).metadata)
    storage.driver.put(key, b"\x00" * size, size=size, metadata=meta)


def test_a_corrupted_object_fails_to_load_and_leaves_nothing(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(os.urandom(MiB))
    plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(tmp_path / "f"), output_artifact=artifact(storage.configuration, "k")
        )
    )
    _corrupt(storage, "k", MiB)
    loaded = plugin.stub.Load(
        pb.LoadArtifactRequest(
            input_artifact=artifact(storage.configuration, "k"), path=str(tmp_path / "got")
        )
    )
    assert not loaded.success and "IntegrityError" in loaded.error
    assert sorted(os.listdir(tmp_path)) == sorted(p for p in os.listdir(tmp_path) if p != "got")


def _frames(plugin: Plugin, storage: Storage, key: str) -> list[pb.OpenStreamResponse]:
    return list(
        plugin.stub.OpenStream(pb.OpenStreamRequest(artifact=artifact(storage.configuration, key)))
    )


def test_a_stream_comes_in_frames_of_at_most_two_mib_and_ends_with_is_end(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    data = os.urandom(9 * MiB + 5)
    (tmp_path / "f").write_bytes(data)
    plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(tmp_path / "f"), output_artifact=artifact(storage.configuration, "big")
        )
    )
    frames = _frames(plugin, storage, "big")
    assert all(len(f.data) <= 2 * MiB for f in frames)
    assert b"".join(f.data for f in frames) == data
    assert frames[-1].is_end and not any(f.is_end or f.error for f in frames[:-1])


def test_a_stream_of_a_corrupted_object_ends_with_an_error_and_never_is_end(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(os.urandom(5 * MiB))
    plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(tmp_path / "f"), output_artifact=artifact(storage.configuration, "bad")
        )
    )
    _corrupt(storage, "bad", 5 * MiB)
    frames = _frames(plugin, storage, "bad")
    assert not any(f.is_end for f in frames)
    assert "IntegrityError" in frames[-1].error


def test_a_stream_of_a_missing_object_is_one_error_frame(plugin: Plugin, storage: Storage) -> None:
    [frame] = _frames(plugin, storage, "missing")
    assert "NotFound" in frame.error and not frame.is_end


def test_save_stream_is_offered_and_stores_the_chunks_as_one_verified_object(
    plugin: Plugin, storage: Storage
) -> None:
    assert plugin.stub.GetCapabilities(pb.GetCapabilitiesRequest()).supports_save_stream
    chunks = [os.urandom(1_500_000) for _ in range(7)]

    def frames() -> Iterator[pb.SaveStreamArtifactRequest]:
        yield pb.SaveStreamArtifactRequest(
            output_artifact=artifact(storage.configuration, "up/stream.tgz")
        )
        for chunk in chunks:
            yield pb.SaveStreamArtifactRequest(chunk=chunk)

    saved = plugin.stub.SaveStream(frames())
    assert saved.success, saved.error
    body = b"".join(f.data for f in _frames(plugin, storage, "up/stream.tgz"))
    assert body == b"".join(chunks)
    info = storage.driver.stat("up/stream.tgz")
    assert read_record(info.metadata, size=info.size).verifiable


def test_delete_takes_a_file_or_a_whole_folder_and_never_a_sibling(
    plugin: Plugin, storage: Storage, tmp_path: Path
) -> None:
    for key in (
        "run1/a",
        "run1/b/c",
        "run1.argosy-manifest.json",
        "run10/a",
        "run10.argosy-manifest.json",
        "run1x",
        "single",
    ):
        storage.driver.put(key, b"x", size=1, metadata={})
    for key in ("run1", "single", "never/existed", "run1/"):
        done = plugin.stub.Delete(
            pb.DeleteArtifactRequest(artifact=artifact(storage.configuration, key))
        )
        assert done.success, (key, done.error)
    assert _keys(storage) == ["run10.argosy-manifest.json", "run10/a", "run1x"]


def test_list_objects_gives_full_keys_and_is_directory_tells_folders_from_files(
    plugin: Plugin, storage: Storage
) -> None:
    for key in (
        "f/a",
        "f/sub/b",
        "f/.argosy-manifest.json",
        "f.argosy-manifest.json",
        "file",
        "f2/x",
    ):
        storage.driver.put(key, b"x", size=1, metadata={})
    listed = plugin.stub.ListObjects(
        pb.ListObjectsRequest(artifact=artifact(storage.configuration, "f"))
    )
    assert list(listed.objects) == ["f/a", "f/sub/b"] and not listed.error

    def is_dir(key: str) -> bool:
        answer = plugin.stub.IsDirectory(
            pb.IsDirectoryRequest(artifact=artifact(storage.configuration, key))
        )
        assert not answer.error
        return answer.is_directory

    assert (is_dir("f"), is_dir("f/"), is_dir("file"), is_dir("missing")) == (
        True,
        True,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ("bucket: [unclosed", "not valid YAML"),
        ("just words", "must be a YAML mapping"),
        ("{bucket: b, colour: blue}", "unknown field(s) colour"),
        ("{endpoint: example.com}", "no bucket"),
        ("{s3: {bucket: b}, oss: {bucket: c}}", "several storages"),
        ("{bucket: b, argosy: {concurrency: 0}}", "argosy.concurrency must be a positive"),
        ("{bucket: b, argosy: {files: -3}}", "argosy.files must be a positive"),
    ],
)
def test_bad_configuration_is_one_line_naming_what_is_wrong(
    plugin: Plugin, configuration: str, expected: str, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    saved = plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(tmp_path / "f"), output_artifact=artifact(configuration, "k")
        )
    )
    assert not saved.success and expected in saved.error
    assert "InvalidSpec" in saved.error and "\n" not in saved.error


def test_wrong_credentials_are_access_denied(
    plugin: Plugin, rgw_storage: Storage, tmp_path: Path
) -> None:
    (rgw_storage.secrets / "rgw-creds" / "secretKey").write_text("not-the-secret")
    (tmp_path / "f").write_bytes(b"x")
    saved = plugin.stub.Save(
        pb.SaveArtifactRequest(
            path=str(tmp_path / "f"), output_artifact=artifact(rgw_storage.configuration, "k")
        )
    )
    assert not saved.success and "AccessDenied" in saved.error
    assert "not-the-secret" not in saved.error + plugin.output()


def test_an_argosy_repository_entry_is_a_configuration_too(
    plugin: Plugin, rgw: dict[str, str], rgw_storage: Storage, tmp_path: Path
) -> None:
    entry = yaml.safe_dump(
        {
            "s3": {
                "bucket": rgw_storage.driver.bucket,
                "endpoint": rgw["AWS_ENDPOINT_URL"],
                "accessKeySecret": {"name": "rgw-creds", "key": "accessKey"},
                "secretKeySecret": {"name": "rgw-creds", "key": "secretKey"},
            },
            "argosy": {"concurrency": 2, "partSize": 5},
        }
    )
    data = os.urandom(12 * MiB)
    (tmp_path / "f").write_bytes(data)
    saved = plugin.stub.Save(
        pb.SaveArtifactRequest(path=str(tmp_path / "f"), output_artifact=artifact(entry, "parts"))
    )
    assert saved.success, saved.error
    assert rgw_storage.driver.stat("parts").etag.endswith("-3")  # 5 MiB parts


def test_an_unknown_call_is_unimplemented(plugin: Plugin) -> None:
    call = plugin.channel.unary_unary(
        "/artifact.ArtifactService/Rename",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.RpcError) as refused:
        call(b"")
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
