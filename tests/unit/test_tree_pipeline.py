"""A folder of objects moves as its names come in: an upload's first PUT leaves while the
tree is still being walked, the walk never runs more than a bounded number of files
ahead of the uploads, and a download starts its GETs from the tree manifest (on a driver
whose reads describe the object) or from the listing's first page, before the listing is
over. What is written, and what a failure leaves, stay as they were."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from argosy.artifacts import tree
from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import IntegrityError, InvalidSpec, NotFound
from argosy.artifacts.retry import RetryPolicy
from argosy.artifacts.settings import TransferSettings
from tests.unit.fakes import DescribingDriver

NO_RETRY = RetryPolicy(attempts=1)
WAIT = 10.0  # seconds a driver below waits for what it expects before failing the test


def _settings(workers: int) -> TransferSettings:
    return TransferSettings(file_concurrency=workers, retry=NO_RETRY)


def _tree(root: Path, n: int) -> list[str]:
    (root / "sub").mkdir(parents=True)
    names = [f"f{i:02d}" for i in range(n)] + ["sub/g"]
    for name in names:
        (root / name).write_text(f"{name} " * 5)
    return sorted(names)


class WalkWatch:
    """Wraps the walk an upload uses, and counts the files it has handed out."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.files = 0
        self.finished = False
        inner = getattr(tree, name)

        def counted(*args: object) -> Iterator[object]:
            for found in inner(*args):
                if name == "_local_files" or (found[2] is None and stat.S_ISREG(found[1].st_mode)):
                    self.files += 1
                yield found
            self.finished = True

        monkeypatch.setattr(tree, name, counted)


class PutWatch(LocalDriver):
    """Records, at each PUT, how many files the walk had handed out, how many PUTs had
    finished, and whether the walk was over."""

    def __init__(self, *args, walk: WalkWatch, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.walk = walk
        self.seen: list[tuple[int, int, bool]] = []
        self.finished = 0
        self._lock = threading.Lock()

    def put(self, key, body, *, size, metadata):
        with self._lock:
            self.seen.append((self.walk.files, self.finished, self.walk.finished))
        try:
            return super().put(key, body, size=size, metadata=metadata)
        finally:
            with self._lock:
                self.finished += 1


@pytest.mark.parametrize("manifest", [True, False], ids=["archive-none", "cp-r"])
@pytest.mark.parametrize("workers", [1, 3])
def test_an_upload_starts_before_the_walk_is_over_and_the_walk_stays_bounded_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, manifest: bool, workers: int
) -> None:
    names = _tree(tmp_path / "src", 20)
    walk = WalkWatch(monkeypatch, "walk" if manifest else "_local_files")
    driver = PutWatch(tmp_path / "repo", "b", walk=walk)
    driver.create_bucket()

    up = tree.upload_tree(
        driver, "run", tmp_path / "src", settings=_settings(workers), manifest=manifest
    )

    assert up.files == len(names)
    files = driver.seen[: len(names)]  # the manifest's PUT comes last
    assert not files[0][2], "the first PUT waited for the whole walk"
    for walked, finished, _ in files:
        assert walked - finished <= workers * tree.AHEAD
    keys = [o.key for o in tree.list_all(driver, "")]
    assert keys == (["run.argosy-manifest.json"] if manifest else []) + [f"run/{n}" for n in names]
    if manifest:
        assert driver.seen[-1][2]  # the manifest: once the walk and every file are done
        assert driver.seen[-1][1] == len(names)


def test_a_walk_that_fails_after_files_went_up_takes_them_back_and_writes_no_manifest(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    _tree(src, 6)
    os.mkfifo(src / "zz-fifo")  # sorted last: found once files have gone up
    driver = LocalDriver(tmp_path / "repo", "b")
    driver.create_bucket()

    with pytest.raises(InvalidSpec, match="FIFO") as failed:
        tree.upload_tree(driver, "run", src, settings=_settings(1), manifest=True)

    assert "object(s) this upload had written were deleted" in str(failed.value)
    assert list(tree.list_all(driver, "")) == []


class ListsAfterAGet(DescribingDriver):
    """Holds back its listing's `held` page until a file's GET has begun (or WAIT
    seconds), and says whether it had to; `page` objects a page."""

    def __init__(self, *args, held: int = 0, page: int = 1000, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.held, self.page = held, page
        self.got = threading.Event()
        self.pages = 0
        self.waited_in_vain = False
        self.file_reads: list[str] = []

    def read(self, key, **kwargs):
        if not key.endswith(".argosy-manifest.json"):
            self.file_reads.append(key)
            self.got.set()
        return super().read(key, **kwargs)

    def list(self, prefix="", *, delimiter=None, token=None, limit=1000):
        if self.pages == self.held and not self.got.wait(WAIT):
            self.waited_in_vain = True
        self.pages += 1
        return super().list(prefix, delimiter=delimiter, token=token, limit=min(limit, self.page))


class PlainListsAfterAGet(ListsAfterAGet):
    """The same, on a driver whose reads do not describe the object (no `read_described`:
    the local repository's kind)."""

    read_described = None  # type: ignore[assignment]


def _uploaded(driver: LocalDriver, tmp_path: Path, *, manifest: bool) -> list[str]:
    names = _tree(tmp_path / "src", 7)
    tree.upload_tree(driver, "run", tmp_path / "src", settings=_settings(2), manifest=manifest)
    return names


def test_a_tree_with_a_manifest_starts_its_gets_before_the_listing_answers(
    tmp_path: Path,
) -> None:
    driver = ListsAfterAGet(tmp_path / "repo", "b", held=0)
    driver.create_bucket()
    names = _uploaded(driver, tmp_path, manifest=True)
    driver.got.clear()

    back = tree.download_tree(driver, "run", tmp_path / "back", settings=_settings(2))

    assert not driver.waited_in_vain, "the listing came before any file's GET"
    assert back.files == len(names) and back.manifest and driver.stats == 1  # the manifest's
    for name in names:
        assert (tmp_path / "back" / name).read_text() == f"{name} " * 5


@pytest.mark.parametrize("manifest", [True, False], ids=["archive-none", "cp-r"])
def test_a_listed_tree_starts_its_gets_from_the_first_page(tmp_path: Path, manifest: bool) -> None:
    driver = PlainListsAfterAGet(tmp_path / "repo", "b", held=1, page=2)
    driver.create_bucket()
    names = _uploaded(driver, tmp_path, manifest=manifest)
    driver.got.clear()

    back = tree.download_tree(driver, "run", tmp_path / "back", settings=_settings(2))

    assert not driver.waited_in_vain, "the second page was asked for before any GET"
    assert driver.pages == 4  # 8 objects, 2 a page
    assert back.files == len(names) and back.manifest is manifest
    assert sorted(driver.file_reads) == [f"run/{n}" for n in names]


def test_a_file_of_the_manifest_missing_fails_its_get_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    driver = DescribingDriver(tmp_path / "repo", "b")
    driver.create_bucket()
    _uploaded(driver, tmp_path, manifest=True)
    driver.delete(["run/sub/g"])

    with pytest.raises(IntegrityError, match="a file of the tree manifest is missing: sub/g"):
        tree.download_tree(driver, "run", tmp_path / "out" / "back", settings=_settings(2))

    assert sorted(os.listdir(tmp_path)) == ["repo", "src"]


def test_objects_the_manifest_does_not_name_are_reported_from_the_listing_beside(
    tmp_path: Path,
) -> None:
    driver = DescribingDriver(tmp_path / "repo", "b")
    driver.create_bucket()
    names = _uploaded(driver, tmp_path, manifest=True)
    driver.put("run/stray", b"not part of it", size=14, metadata={})
    driver.put("run/.argosy-manifest.json", b"{}", size=2, metadata={})  # an old one beside

    back = tree.download_tree(driver, "run", tmp_path / "back", settings=_settings(2))

    assert back.files == len(names)
    assert back.notes == ["1 object(s) not in the tree manifest were left out, e.g. stray"]
    assert not (tmp_path / "back" / "stray").exists()


@pytest.mark.parametrize("describing", [True, False])
def test_a_manifest_under_the_folder_is_found_whatever_page_its_key_is_on(
    tmp_path: Path, describing: bool
) -> None:
    kind = ListsAfterAGet if describing else PlainListsAfterAGet
    driver = kind(tmp_path / "repo", "b", held=-1, page=2)
    driver.create_bucket()
    names = _uploaded(driver, tmp_path, manifest=True)
    # the older layout: the manifest under the folder, behind keys that sort before it
    data = (tmp_path / "repo" / "b" / "run.argosy-manifest.json").read_bytes()
    driver.delete(["run.argosy-manifest.json"])
    driver.put("run/.argosy-manifest.json", bytes(data), size=len(data), metadata={})
    for early in ("run/#1", "run/#2"):  # '#' sorts before '.': the first page holds them
        driver.put(early, b"x", size=1, metadata={})

    back = tree.download_tree(driver, "run", tmp_path / "back", settings=_settings(2))

    assert back.manifest and back.files == len(names)
    assert not (tmp_path / "back" / ".argosy-manifest.json").exists()
    assert not (tmp_path / "back" / "#1").exists()  # not in the manifest: left out
    assert back.notes == ["2 object(s) not in the tree manifest were left out, e.g. #1, #2"]


def test_an_empty_prefix_is_not_found_and_leaves_nothing(tmp_path: Path) -> None:
    driver = DescribingDriver(tmp_path / "repo", "b")
    driver.create_bucket()
    with pytest.raises(NotFound, match="nothing under"):
        tree.download_tree(driver, "run", tmp_path / "out" / "back", settings=_settings(2))
    assert sorted(os.listdir(tmp_path)) == ["repo"]
