"""Argosy's per-artifact settings come from four layers, highest first: the artifact's
`argosy:` block, the pod annotation's entry for the artifact, the annotation's top level,
the repository entry's `argosy:` block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from argosy.argo.template import load_template
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.settings import TransferSettings
from argosy.sidecar.options import ANNOTATION, Layers, read_annotations


def _input(argosy: dict[str, Any] | None = None) -> Any:
    artifact: dict[str, Any] = {"name": "data", "path": "/in", "s3": {"key": "k"}}
    if argosy is not None:
        artifact["argosy"] = argosy
    template = {"name": "t", "inputs": {"artifacts": [artifact]}}
    return load_template(json.dumps(template), source="t.json").inputs[0]


def _layers(annotation: dict[str, Any] | None = None, repository: Any = None) -> Layers:
    annotations = {ANNOTATION: json.dumps(annotation)} if annotation is not None else {}
    return Layers.build(annotations, {"argosy": repository} if repository is not None else None)


def test_max_expansion_is_unset_unless_a_layer_sets_it() -> None:
    assert _layers().for_artifact(_input()).max_expansion is None


@pytest.mark.parametrize(
    ("argosy", "annotation", "repository", "expected"),
    [
        (None, None, {"maxExpansion": 50}, 50),
        (None, {"maxExpansion": 20, "artifacts": {"data": {}}}, {"maxExpansion": 50}, 20),
        (None, {"maxExpansion": 20, "artifacts": {"data": {"maxExpansion": 0}}}, None, 0),
        ({"maxExpansion": "2500.5"}, {"artifacts": {"data": {"maxExpansion": 0}}}, None, 2500.5),
    ],
)
def test_max_expansion_comes_from_the_highest_layer_that_sets_it_0_included(
    argosy: Any, annotation: Any, repository: Any, expected: float
) -> None:
    got = _layers(annotation, repository).for_artifact(_input(argosy)).max_expansion
    assert got == expected


@pytest.mark.parametrize("value", [-1, 0.5, "lots", True, "nan"])
def test_a_max_expansion_that_is_not_0_or_a_ratio_of_at_least_1_is_refused_naming_it(
    value: Any,
) -> None:
    with pytest.raises(InvalidSpec, match=r"repository\.argosy\.maxExpansion"):
        _layers(repository={"maxExpansion": value}).for_artifact(_input())


@pytest.mark.parametrize(
    ("argosy", "annotation", "repository", "expected"),
    [
        (None, None, None, (120.0, None)),
        (None, None, {"stallTimeout": 600, "deadline": 900}, (600, 900)),
        (None, {"stallTimeout": 30}, {"stallTimeout": 600, "deadline": 900}, (30, 900)),
        (None, {"stallTimeout": 30, "artifacts": {"data": {"stallTimeout": 10}}}, None, (10, None)),
        ({"stallTimeout": 5}, {"artifacts": {"data": {"stallTimeout": 10}}}, None, (5, None)),
    ],
)
def test_stall_timeout_and_deadline_come_from_the_highest_layer_that_sets_them(
    argosy: Any, annotation: Any, repository: Any, expected: tuple[float, float | None]
) -> None:
    effective = _layers(annotation, repository).for_artifact(_input(argosy))
    settings = effective.transfer(TransferSettings())
    assert (settings.stall_timeout, settings.deadline) == expected


@pytest.mark.parametrize("value", [0, -1, "soon", True, "inf"])
def test_a_stall_timeout_that_is_not_a_positive_number_of_seconds_is_refused_naming_it(
    value: Any,
) -> None:
    with pytest.raises(InvalidSpec, match=r"argosy\.io/settings\.stallTimeout"):
        _layers({"stallTimeout": value}).for_artifact(_input())


@pytest.mark.parametrize(
    ("argosy", "annotation", "repository", "expected"),
    [
        (None, None, None, (2, None)),
        (None, None, {"concurrency": 6, "files": 40}, (6, 40)),
        (None, {"files": 16, "artifacts": {"data": {"concurrency": 3}}}, {"files": 40}, (3, 16)),
        ({"files": "8"}, {"files": 16}, None, (2, 8)),
    ],
)
def test_parts_and_files_in_flight_come_from_the_highest_layer_that_sets_them(
    argosy: Any, annotation: Any, repository: Any, expected: tuple[int, int | None]
) -> None:
    effective = _layers(annotation, repository).for_artifact(_input(argosy))
    settings = effective.transfer(TransferSettings(concurrency=2))
    assert (settings.concurrency, settings.files) == expected


@pytest.mark.parametrize(("field", "value"), [("files", 0), ("concurrency", -2), ("files", "x")])
def test_parts_or_files_in_flight_below_1_are_refused_naming_the_field(
    field: str, value: Any
) -> None:
    with pytest.raises(InvalidSpec, match=rf"argosy\.io/settings\.{field}"):
        _layers({field: value}).for_artifact(_input())


def test_an_annotation_nested_past_what_yaml_can_read_is_refused_naming_it() -> None:
    deep = "[" * 10_000 + "]" * 10_000
    with pytest.raises(InvalidSpec, match=f"^pod annotation {ANNOTATION} is not JSON or YAML$"):
        Layers.build({ANNOTATION: deep}, None)


# -- the downward API's annotations file -------------------------------------------------


def test_annotation_values_are_read_as_go_quotes_them(tmp_path: Path) -> None:
    # what Kubernetes writes with %q: escapes JSON does not know (\a \v \x \U, octal)
    (tmp_path / "annotations").write_text(
        'bell="ring\\a\\v"\n'
        'bytes="caf\\xc3\\xa9"\n'
        'emoji="\\U0001f600 and \\u00e9"\n'
        'octal="\\101\\102"\n'
        'quoted="say \\"hi\\" \\\\ there"\n'
    )
    assert read_annotations(tmp_path / "annotations") == {
        "bell": "ring\a\v",
        "bytes": "café",
        "emoji": "\U0001f600 and é",
        "octal": "AB",
        "quoted": 'say "hi" \\ there',
    }


def test_someone_elses_unreadable_annotation_is_skipped_and_ours_still_read(
    tmp_path: Path,
) -> None:
    (tmp_path / "annotations").write_bytes(
        b'odd="\\q"\nraw="\xff\xfe"\n' + f'{ANNOTATION}="{{\\"archive\\": \\"none\\"}}"\n'.encode()
    )
    found = read_annotations(tmp_path / "annotations")
    assert found[ANNOTATION] == '{"archive": "none"}'
    assert "odd" not in found
    assert found["raw"] == "\ufffd\ufffd"


@pytest.mark.parametrize("value", ["\\q", "\\x4", "\\U0011ffff", "\\400", "ends with \\"])
def test_a_malformed_escape_in_argosys_own_annotation_is_one_line_naming_it(
    tmp_path: Path, value: str
) -> None:
    (tmp_path / "annotations").write_text(f'{ANNOTATION}="{value}"\n')
    with pytest.raises(InvalidSpec, match=f"pod annotation {ANNOTATION} in .*: bad|lone") as error:
        read_annotations(tmp_path / "annotations")
    assert "\n" not in str(error.value)
