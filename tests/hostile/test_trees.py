"""A folder of objects (`archive: none`) restored from a prefix someone else could write.

Whoever can write under the prefix controls its keys and its tree manifest, so a tree
restore obeys the extractor's rules: no path through a link made by the restore, no link
leading out, staging then rename. The invariant, as for archives: the restore either
succeeds with every entry inside the destination, or fails with an ArtifactError leaving
nothing under the destination's name; nothing outside it ever changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from argosy.artifacts import tree
from argosy.artifacts.checksum import crc32c, to_hex
from argosy.artifacts.errors import ArtifactError, InvalidSpec
from argosy.artifacts.settings import TransferSettings
from tests.archive.helpers import listing
from tests.hostile.conftest import fuzz
from tests.unit.fakes import DescribingMemoryDriver, MemoryDriver

pytestmark = pytest.mark.hostile

SETTINGS = TransferSettings()
# where a tree manifest is read from: beside the folder, or under it as older versions wrote it
MANIFESTS = {"beside": "run.argosy-manifest.json", "under": "run/.argosy-manifest.json"}


def _manifest(
    files: dict[str, bytes],
    symlinks: Sequence[tuple[str, str]] = (),
    dirs: Sequence[str] = (),
) -> bytes:
    return json.dumps(
        {
            "schema": "argosy.tree-manifest",
            "version": 1,
            "files": [
                {
                    "path": p,
                    "size": len(d),
                    "checksum": "crc32c:" + to_hex(crc32c(d)),
                    "mode": 0o644,
                }
                for p, d in files.items()
            ],
            "symlinks": [{"path": p, "target": t} for p, t in symlinks],
            "dirs": [{"path": p, "mode": 0o755} for p in dirs],
        }
    ).encode()


def _bucket(
    files: dict[str, bytes],
    *,
    symlinks: Sequence[tuple[str, str]] = (),
    dirs: Sequence[str] = (),
    manifest: bool = True,
    layout: str = "beside",
    describing: bool = False,
) -> MemoryDriver:
    """A bucket holding `files` under run/; `describing`: its reads describe the object
    (S3's kind: a tree with a manifest is then fetched from the manifest's file list)."""
    objects = {"run/" + p: d for p, d in files.items()}
    if manifest:
        objects[MANIFESTS[layout]] = _manifest(files, symlinks, dirs)
    return (DescribingMemoryDriver if describing else MemoryDriver)(objects)


def _remove(path: Path) -> None:
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o700)
    shutil.rmtree(path)


def _holds(restore: Callable[[Path], object]) -> ArtifactError | None:
    """One restore into world/in/dest, with a file beside and above it to protect; the
    error it failed with, if it did."""
    failure: ArtifactError | None = None
    world = Path(tempfile.mkdtemp(prefix="argosy-tree-"))
    try:
        (world / "outside").mkdir()
        (world / "outside" / "keep.txt").write_text("original")
        (world / "in").mkdir()
        (world / "in" / "keep.txt").write_text("original")
        before = listing(world)
        dest = world / "in" / "dest"
        try:
            restore(dest)
        except ArtifactError as error:
            failure = error
            assert not dest.exists() and not dest.is_symlink()
        else:
            root = os.path.realpath(dest)
            for rel in listing(dest):
                resolved = os.path.realpath(dest / rel)
                assert resolved == root or resolved.startswith(root + os.sep), rel
        after = {p for p in listing(world) if not p.startswith(os.path.join("in", "dest"))}
        assert after == before
        assert (world / "outside" / "keep.txt").read_text() == "original"
        assert (world / "in" / "keep.txt").read_text() == "original"
    finally:
        _remove(world)
    return failure


def _restore(driver: MemoryDriver) -> Callable[[Path], object]:
    return lambda dest: tree.download_tree(driver, "run/", dest, settings=SETTINGS)


@pytest.mark.parametrize("describing", [False, True], ids=["listed", "from-manifest"])
@pytest.mark.parametrize("layout", list(MANIFESTS))
def test_a_link_made_by_the_restore_is_never_followed_by_a_later_link(
    layout: str, describing: bool
) -> None:
    hostile = _bucket(
        {"f": b"x"},
        symlinks=[("x/l", ".."), ("x/l/m", "../..")],
        layout=layout,
        describing=describing,
    )
    failure = _holds(_restore(hostile))
    assert isinstance(failure, InvalidSpec)
    assert re.search("'x/l/m' goes through 'x/l', which is a symlink", str(failure))


@pytest.mark.parametrize("describing", [False, True], ids=["listed", "from-manifest"])
def test_a_link_made_by_the_restore_is_never_followed_by_a_folder(describing: bool) -> None:
    hostile = _bucket(
        {"f": b"x"}, symlinks=[("x/up", "..")], dirs=["x/up/evil"], describing=describing
    )
    failure = _holds(_restore(hostile))
    assert isinstance(failure, InvalidSpec)
    assert re.search("clashes|goes through", str(failure))


@pytest.mark.parametrize("describing", [False, True], ids=["listed", "from-manifest"])
def test_a_link_cannot_take_the_place_of_a_folder_holding_files(describing: bool) -> None:
    hostile = _bucket({"x/l/f": b"x"}, symlinks=[("x/l", "..")], describing=describing)
    failure = _holds(_restore(hostile))
    assert isinstance(failure, InvalidSpec)
    assert re.search("'x/l' appears twice", str(failure))


def test_a_link_leading_out_of_the_destination_is_refused() -> None:
    failure = _holds(_restore(_bucket({"f": b"x"}, symlinks=[("l", "../../outside/keep.txt")])))
    assert isinstance(failure, ArtifactError)
    assert re.search("outside", str(failure))


def test_keys_that_clash_as_a_file_and_a_folder_are_refused_and_leave_nothing() -> None:
    clash = _bucket({"a": b"file", "a/b": b"under the file"}, manifest=False)
    failure = _holds(_restore(clash))
    assert isinstance(failure, InvalidSpec)
    assert re.search("'a/b' goes through 'a', which is a file", str(failure))


def test_a_tree_without_manifest_is_staged_and_leaves_nothing_when_an_object_fails(
    tmp_path: Path,
) -> None:
    broken = _bucket({"a": b"fine", "b/../c": b"hostile key"}, manifest=False)
    with pytest.raises(ArtifactError):
        tree.download_tree(broken, "run/", tmp_path / "dest", settings=SETTINGS)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("describing", [False, True], ids=["listed", "from-manifest"])
@pytest.mark.parametrize("layout", list(MANIFESTS))
def test_a_legitimate_tree_with_links_and_folders_is_restored_whole(
    tmp_path: Path, layout: str, describing: bool
) -> None:
    good = _bucket(
        {"sub/f.txt": b"hello", "g": b"x"},
        symlinks=[("link", "sub/f.txt"), ("sub/up", "../g")],
        dirs=["sub", "empty"],
        layout=layout,
        describing=describing,
    )
    got = tree.download_tree(good, "run/", tmp_path / "dest", settings=SETTINGS)
    assert got.manifest and sorted(os.listdir(tmp_path / "dest")) == ["empty", "g", "link", "sub"]
    assert (tmp_path / "dest" / "link").read_bytes() == b"hello"
    assert (tmp_path / "dest" / "sub" / "up").read_bytes() == b"x"
    assert (tmp_path / "dest" / "empty").is_dir()


def test_a_tree_without_manifest_joins_an_existing_folder_without_overwriting(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "dest"
    (dest / "sub").mkdir(parents=True)
    (dest / "mine.txt").write_text("mine")
    tree.download_tree(
        _bucket({"sub/new.txt": b"new", "top.txt": b"t"}, manifest=False),
        "run/",
        dest,
        settings=SETTINGS,
    )
    assert (dest / "sub" / "new.txt").read_bytes() == b"new"
    assert (dest / "top.txt").read_bytes() == b"t"
    with pytest.raises(InvalidSpec, match="already exist"):
        tree.download_tree(
            _bucket({"mine.txt": b"theirs", "other.txt": b"o"}, manifest=False),
            "run/",
            dest,
            settings=SETTINGS,
        )
    assert (dest / "mine.txt").read_text() == "mine"
    assert not (dest / "other.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["dest"]


# -- generated hostile prefixes ---------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "sub", "l", "..", ".", "", "ü"])
PATHS = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    st.sampled_from(["", "", "", "/", "./", "../"]),
    st.lists(NAMES, min_size=1, max_size=4),
)
TARGETS = st.one_of(
    PATHS,
    st.builds(lambda n, rest: "../" * n + rest, st.integers(0, 4), PATHS),
    st.just("/etc/passwd"),
    st.just("../../outside/keep.txt"),
)
FILES = st.dictionaries(PATHS, st.binary(max_size=40), max_size=6)
LINKS = st.lists(st.tuples(PATHS, TARGETS), max_size=5)
DIRS = st.lists(PATHS, max_size=4)


@fuzz(200)
@given(
    files=FILES,
    symlinks=LINKS,
    dirs=DIRS,
    extra=FILES,
    with_manifest=st.booleans(),
    layout=st.sampled_from(list(MANIFESTS)),
    describing=st.booleans(),
)
def test_generated_manifests_and_key_sets_never_write_outside(
    files: dict[str, bytes],
    symlinks: list[tuple[str, str]],
    dirs: list[str],
    extra: dict[str, bytes],
    with_manifest: bool,
    layout: str,
    describing: bool,
) -> None:
    driver = _bucket(
        files,
        symlinks=symlinks,
        dirs=dirs,
        manifest=with_manifest,
        layout=layout,
        describing=describing,
    )
    for key, data in extra.items():  # objects the manifest does not know of
        driver.objects.setdefault("run/" + key, data)
    _holds(_restore(driver))


# what the manifest promises and what the prefix holds disagree: files listed but missing,
# changed, shorter or longer than listed; the manifest document itself of any shape

DAMAGE = st.sampled_from(["missing", "changed", "shorter", "longer", "none"])
PLAIN = st.lists(st.sampled_from(["a", "b", "sub", "ü", "x.txt"]), min_size=1, max_size=3).map(
    "/".join
)


@fuzz(150)
@given(
    files=st.dictionaries(PLAIN, st.binary(max_size=40), min_size=1, max_size=6),
    damage=st.lists(st.tuples(st.integers(0, 5), DAMAGE), max_size=3),
    describing=st.booleans(),
)
def test_a_tree_whose_objects_disagree_with_its_manifest_is_restored_whole_or_not_at_all(
    files: dict[str, bytes], damage: list[tuple[int, str]], describing: bool
) -> None:
    driver = _bucket(files, describing=describing)
    names = sorted(files)
    damaged = set()
    for index, how in damage:
        key = "run/" + names[index % len(names)]
        if key not in driver.objects or key in damaged or how == "none":
            continue
        damaged.add(key)
        data = driver.objects[key]
        if how == "missing":
            del driver.objects[key]
        elif how == "changed":
            driver.objects[key] = bytes(b ^ 1 for b in data) if data else b"x"
        elif how == "shorter":
            driver.objects[key] = data[:-1] if data else b"x"
        else:
            driver.objects[key] = data + b"!"
    failure = _holds(_restore(driver))
    if damaged and not any(p.startswith(n + "/") for n in names for p in names):
        assert isinstance(failure, ArtifactError), damaged


JSON_FIELDS = st.sampled_from(
    ["schema", "version", "files", "symlinks", "dirs", "path", "size", "checksum", "mode", "target"]
)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.sampled_from(
            ["argosy.tree-manifest", "a", "../a", "/etc", "crc32c:00000000", "sub", "", "."]
        ),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_FIELDS, inner, max_size=5),
    max_leaves=25,
)


@fuzz(200)
@given(
    document=st.dictionaries(JSON_FIELDS, JSON_VALUES, max_size=6),
    files=st.dictionaries(PLAIN, st.binary(max_size=10), max_size=3),
)
def test_a_generated_manifest_document_is_refused_cleanly_or_restores_inside(
    document: dict[str, object], files: dict[str, bytes]
) -> None:
    driver = _bucket(files, manifest=False)
    driver.objects[MANIFESTS["beside"]] = json.dumps(
        {"schema": "argosy.tree-manifest", "version": 1, **document}
    ).encode()
    _holds(_restore(driver))


@pytest.mark.parametrize("document", [None, [], 7, "argosy.tree-manifest"])
def test_a_manifest_that_is_json_but_not_an_object_is_refused_cleanly(document: object) -> None:
    driver = _bucket({"a": b"x"}, manifest=False)
    driver.objects[MANIFESTS["beside"]] = json.dumps(document).encode()
    assert isinstance(_holds(_restore(driver)), ArtifactError)
