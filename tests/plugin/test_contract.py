"""The plugin speaks Argo's contract: its generated modules are current, its messages have
Argo's names and field numbers, and a client compiled separately from Argo's published
contract talks to it unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from argosy.plugin import artifact_pb2 as pb
from tests.plugin.conftest import Plugin

ROOT = Path(__file__).resolve().parents[2]

# Argo's published contract (pkg/apiclient/artifact/artifact.proto in argoproj/argo-workflows):
# message -> {field: (number, type)}
CONTRACT = {
    "PluginArtifact": {
        "name": (1, "string"),
        "configuration": (2, "string"),
        "connection_timeout_seconds": (3, "int32"),
        "key": (4, "string"),
    },
    "Artifact": {
        "name": (1, "string"),
        "path": (2, "string"),
        "mode": (3, "int32"),
        "from": (4, "string"),
        "plugin": (5, "PluginArtifact"),
        "optional": (6, "bool"),
        "sub_path": (7, "string"),
        "recurse_mode": (8, "bool"),
        "from_expression": (9, "string"),
        "deleted": (10, "bool"),
    },
    "LoadArtifactRequest": {"input_artifact": (1, "Artifact"), "path": (2, "string")},
    "LoadArtifactResponse": {"success": (1, "bool"), "error": (2, "string")},
    "OpenStreamRequest": {"artifact": (1, "Artifact")},
    "OpenStreamResponse": {"data": (1, "bytes"), "is_end": (2, "bool"), "error": (3, "string")},
    "SaveArtifactRequest": {"path": (1, "string"), "output_artifact": (2, "Artifact")},
    "SaveArtifactResponse": {"success": (1, "bool"), "error": (2, "string")},
    "DeleteArtifactRequest": {"artifact": (1, "Artifact")},
    "DeleteArtifactResponse": {"success": (1, "bool"), "error": (2, "string")},
    "ListObjectsRequest": {"artifact": (1, "Artifact")},
    "ListObjectsResponse": {"objects": (1, "string"), "error": (2, "string")},
    "IsDirectoryRequest": {"artifact": (1, "Artifact")},
    "IsDirectoryResponse": {"is_directory": (1, "bool"), "error": (2, "string")},
    "SaveStreamArtifactRequest": {"output_artifact": (1, "Artifact"), "chunk": (2, "bytes")},
    "GetCapabilitiesRequest": {},
    "GetCapabilitiesResponse": {"supports_save_stream": (1, "bool")},
}
METHODS = {
    "Load": ("LoadArtifactRequest", "LoadArtifactResponse", False, False),
    "OpenStream": ("OpenStreamRequest", "OpenStreamResponse", False, True),
    "Save": ("SaveArtifactRequest", "SaveArtifactResponse", False, False),
    "Delete": ("DeleteArtifactRequest", "DeleteArtifactResponse", False, False),
    "ListObjects": ("ListObjectsRequest", "ListObjectsResponse", False, False),
    "IsDirectory": ("IsDirectoryRequest", "IsDirectoryResponse", False, False),
    "SaveStream": ("SaveStreamArtifactRequest", "SaveArtifactResponse", True, False),
    "GetCapabilities": ("GetCapabilitiesRequest", "GetCapabilitiesResponse", False, False),
}
_TYPES = {9: "string", 5: "int32", 8: "bool", 12: "bytes"}


def test_the_generated_modules_are_what_scripts_gen_proto_writes(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "gen-proto"), str(tmp_path)], check=True, cwd=ROOT, timeout=120
    )
    for name in ("artifact_pb2.py", "artifact_pb2.pyi", "artifact_pb2_grpc.py"):
        assert (tmp_path / name).read_text() == (ROOT / "plugin" / name).read_text(), (
            f"plugin/{name} is stale: run scripts/gen-proto"
        )


def test_every_message_has_argos_names_numbers_and_types() -> None:
    file = pb.DESCRIPTOR
    assert file.package == "artifact"
    assert sorted(file.message_types_by_name) == sorted(CONTRACT)
    for name, fields in CONTRACT.items():
        message = file.message_types_by_name[name]
        found = {
            f.name: (f.number, f.message_type.name if f.message_type else _TYPES[f.type])
            for f in message.fields
        }
        assert found == fields, name
    objects = file.message_types_by_name["ListObjectsResponse"].fields_by_name["objects"]
    assert objects.is_repeated


def test_the_service_has_argos_methods_and_streaming_shapes() -> None:
    service = pb.DESCRIPTOR.services_by_name["ArtifactService"]
    assert service.full_name == "artifact.ArtifactService"
    found = {
        m.name: (m.input_type.name, m.output_type.name, m.client_streaming, m.server_streaming)
        for m in service.methods
    }
    assert found == METHODS


ARGO_PROTO = """syntax = "proto3";
option go_package = "github.com/argoproj/argo-workflows/v4/pkg/apiclient/artifact";
package artifact;
message PluginArtifact { string name = 1; string configuration = 2;
  int32 connection_timeout_seconds = 3; string key = 4; }
message Artifact { string name = 1; string path = 2; int32 mode = 3; string from = 4;
  PluginArtifact plugin = 5; bool optional = 6; string sub_path = 7; bool recurse_mode = 8;
  string from_expression = 9; bool deleted = 10; }
message OpenStreamRequest { Artifact artifact = 1; }
message OpenStreamResponse { bytes data = 1; bool is_end = 2; string error = 3; }
message IsDirectoryRequest { Artifact artifact = 1; }
message IsDirectoryResponse { bool is_directory = 1; string error = 2; }
message GetCapabilitiesRequest {}
message GetCapabilitiesResponse { bool supports_save_stream = 1; }
service ArtifactService {
  rpc OpenStream(OpenStreamRequest) returns (stream OpenStreamResponse);
  rpc IsDirectory(IsDirectoryRequest) returns (IsDirectoryResponse);
  rpc GetCapabilities(GetCapabilitiesRequest) returns (GetCapabilitiesResponse);
}
"""


CLIENT = """
import sys
import grpc
from pkg.apiclient.artifact import artifact_pb2 as m, artifact_pb2_grpc as g
with grpc.insecure_channel("unix:" + sys.argv[1]) as channel:
    stub = g.ArtifactServiceStub(channel)
    print(stub.GetCapabilities(m.GetCapabilitiesRequest()).supports_save_stream)
    where = m.PluginArtifact(name="argosy", key="k", configuration="no: [yaml")
    print(stub.IsDirectory(m.IsDirectoryRequest(artifact=m.Artifact(name="a", plugin=where))).error)
"""


def test_a_client_compiled_from_argos_own_file_layout_talks_to_it(
    plugin: Plugin, tmp_path: Path
) -> None:
    """Argo's file lives at pkg/apiclient/artifact/artifact.proto (ours elsewhere): the
    wire knows only package, service, method and field numbers, so a client compiled
    from that file, in a process with none of our modules, is served unchanged."""
    source = tmp_path / "pkg" / "apiclient" / "artifact" / "artifact.proto"
    source.parent.mkdir(parents=True)
    source.write_text(ARGO_PROTO)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{tmp_path}",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(source),
        ],
        check=True,
        timeout=120,
    )
    answer = subprocess.run(
        [sys.executable, "-c", CLIENT, str(plugin.socket)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    capabilities, error = answer.stdout.splitlines()
    assert capabilities == "True"
    assert "not valid YAML" in error
