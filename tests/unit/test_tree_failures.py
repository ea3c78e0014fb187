"""A folder of objects that fails to move leaves nothing half-done: a failed upload takes
back the objects it wrote and never writes the manifest; a failed download leaves no
file, no staging folder and no folder it made above its destination; and the first
failure stops the files not yet started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from argosy.artifacts import tree
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import AccessDenied, IntegrityError, LocalIOError, NotFound
from argosy.artifacts.protocol import DeleteFailure
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import TransferSettings

ONE_AT_A_TIME = TransferSettings(file_concurrency=1, retry=RetryPolicy(attempts=1))
FILES = ["a", "b", "c", "d", "e"]


class RefusingDriver(LocalDriver):
    """A local repository that refuses chosen keys (and, if asked, every delete), and
    remembers the keys it was asked to write and read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refuse: set[str] = set()
        self.refuse_deletes = False
        self.puts: list[str] = []
        self.reads: list[str] = []

    def put(self, key, body, *, size, metadata):
        self.puts.append(key)
        if key in self.refuse:
            raise AccessDenied(f"{self.url(key)}: access denied (AccessDenied)")
        return super().put(key, body, size=size, metadata=metadata)

    def read(self, key, **kwargs):
        self.reads.append(key)
        if key in self.refuse:
            raise IntegrityError(f"{self.url(key)}: corrupt")
        return super().read(key, **kwargs)

    def delete(self, keys):
        if self.refuse_deletes:
            return [DeleteFailure(k, "AccessDenied", "no") for k in keys]
        return super().delete(keys)


@pytest.fixture
def driver(tmp_path: Path) -> RefusingDriver:
    made = RefusingDriver(tmp_path / "repo", "b")
    made.create_bucket()
    return made


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_text(name * 10)
    return folder


def _keys(driver: LocalDriver) -> list[str]:
    return [o.key for o in tree.list_all(driver, "")]


@pytest.mark.parametrize("manifest", [True, False], ids=["archive-none", "cp-r"])
def test_a_failed_upload_deletes_what_it_wrote_and_stops_the_files_not_started(
    driver: RefusingDriver, src: Path, manifest: bool
) -> None:
    driver.put("run/keep", b"there before", size=12, metadata={})
    driver.refuse = {"run/c"}

    with pytest.raises(AccessDenied) as failed:
        tree.upload_tree(driver, "run", src, settings=ONE_AT_A_TIME, manifest=manifest)

    assert str(failed.value).endswith("; the 2 object(s) this upload had written were deleted")
    assert driver.puts[1:] == ["run/a", "run/b", "run/c"]  # d and e never started
    assert _keys(driver) == ["run/keep"]  # not the upload's: left alone
    with pytest.raises(NotFound):
        driver.stat("run.argosy-manifest.json")


def test_the_same_upload_run_again_writes_the_whole_tree(driver: RefusingDriver, src: Path):
    driver.refuse = {"run/c"}
    with pytest.raises(AccessDenied):
        tree.upload_tree(driver, "run", src, settings=ONE_AT_A_TIME, manifest=True)
    driver.refuse = set()

    up = tree.upload_tree(driver, "run", src, settings=ONE_AT_A_TIME, manifest=True)

    assert up.files == 5 and up.manifest
    assert _keys(driver) == ["run.argosy-manifest.json"] + [f"run/{n}" for n in FILES]


def test_objects_a_failed_upload_could_not_delete_are_named(
    driver: RefusingDriver, src: Path
) -> None:
    driver.refuse, driver.refuse_deletes = {"run/c"}, True

    with pytest.raises(AccessDenied) as failed:
        tree.upload_tree(driver, "run", src, settings=ONE_AT_A_TIME, manifest=True)

    assert (
        "; 2 of the 2 object(s) this upload had written could not be deleted, "
        "e.g. local://b/run/a, local://b/run/b"
    ) in str(failed.value)


def test_a_failed_download_stops_the_files_not_started_and_leaves_nothing(
    driver: RefusingDriver, src: Path, tmp_path: Path
) -> None:
    tree.upload_tree(driver, "run", src, settings=ONE_AT_A_TIME, manifest=True)
    driver.refuse, driver.reads = {"run/b"}, []
    dest = tmp_path / "out" / "deeper" / "dest"

    with pytest.raises(IntegrityError):
        tree.download_tree(driver, "run", dest, settings=ONE_AT_A_TIME)

    assert driver.reads == ["run.argosy-manifest.json", "run/a", "run/b"]
    assert not (tmp_path / "out").exists()  # nor the folders made above the destination
    assert sorted(os.listdir(tmp_path)) == ["repo", "src"]


def test_a_tree_joining_a_folder_moves_back_out_when_a_move_fails(
    driver: RefusingDriver, src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.upload_tree(driver, "run", src, settings=ONE_AT_A_TIME)  # no manifest: it may join
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("mine")
    rename, calls = os.rename, []

    def failing_third(a: str, b: str) -> None:
        calls.append(a)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        rename(a, b)

    monkeypatch.setattr(os, "rename", failing_third)

    with pytest.raises(LocalIOError, match="No space left on device"):
        tree.download_tree(driver, "run", dest, settings=ONE_AT_A_TIME)

    assert os.listdir(dest) == ["mine.txt"]
    assert sorted(os.listdir(tmp_path)) == ["dest", "repo", "src"]  # no staging folder
