"""The local repository never reaches outside its bucket folder, whatever a key or a
listing prefix says: `..`, absolute paths, NUL bytes and symbolic links out are refused
by every operation, naming the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from argosy.artifacts.drivers.local import LocalDriver
from argosy.artifacts.errors import InvalidSpec
from argosy.artifacts.protocol import Part

SECRET = b"outside the repository"
NO_UPLOAD = "0" * 32


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_bytes(SECRET)
    return folder


@pytest.fixture
def driver(tmp_path: Path, outside: Path) -> LocalDriver:
    """Bucket `b` with one object, a link to a folder outside and a link to a file outside."""
    made = LocalDriver(tmp_path / "repo", "b")
    made.create_bucket()
    made.put("inside.txt", b"in", size=2, metadata={})
    (tmp_path / "repo" / "b" / "link").symlink_to(outside)
    (tmp_path / "repo" / "b" / "secret-link").symlink_to(outside / "secret")
    return made


# `{outside}` stands for the folder outside the repository
HOSTILE_KEYS = {
    "through-a-folder-link": "link/secret",
    "a-file-link": "secret-link",
    "a-nul-byte": "a\0b",
    "dot-dot": "../../outside/secret",
    "absolute": "{outside}/secret",
}
HOSTILE_PREFIXES = {
    "dot-dot": "..",
    "dot-dot-folder": "../",
    "the-parent": "../../",
    "a-sibling": "../../outside/",
    "dot-dot-inside": "sub/../../",
    "the-filesystem-root": "/",
    "absolute": "{outside}/",
    "a-folder-link": "link/",
    "under-a-folder-link": "link/x",
    "a-nul-byte": "sub\0/",
}

Operation = Callable[[LocalDriver, str], Any]
OPERATIONS: dict[str, Operation] = {
    "stat": lambda d, k: d.stat(k),
    "read": lambda d, k: d.read(k).close(),
    "put": lambda d, k: d.put(k, b"x", size=1, metadata={}),
    "replace_metadata": lambda d, k: d.replace_metadata(k, {}, if_match="etag"),
    "create_upload": lambda d, k: d.create_upload(k, metadata={}),
    "upload_part": lambda d, k: d.upload_part(k, NO_UPLOAD, 1, b"x", size=1),
    "copy_part": lambda d, k: d.copy_part(k, NO_UPLOAD, 1, start=0, end=0, if_match="e"),
    "list_parts": lambda d, k: d.list_parts(k, NO_UPLOAD),
    "complete_upload": lambda d, k: d.complete_upload(k, NO_UPLOAD, [Part(1, "e", 1)]),
    "abort_upload": lambda d, k: d.abort_upload(k, NO_UPLOAD),
}


def _untouched(outside: Path) -> bool:
    return (
        sorted(p.name for p in outside.iterdir()) == ["secret"]
        and (outside / "secret").read_bytes() == SECRET
    )


@pytest.mark.parametrize("hostile", HOSTILE_KEYS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_refuses_a_key_that_leads_outside_the_bucket(
    driver: LocalDriver, outside: Path, operation: str, hostile: str
) -> None:
    key = HOSTILE_KEYS[hostile].format(outside=outside)
    with pytest.raises(InvalidSpec, match="invalid key for a local repository") as refused:
        OPERATIONS[operation](driver, key)
    assert repr(key) in str(refused.value)
    assert _untouched(outside)
    assert driver.list_uploads() == []


@pytest.mark.parametrize("hostile", HOSTILE_KEYS)
def test_deleting_a_key_that_leads_outside_the_bucket_fails_it_and_removes_nothing(
    driver: LocalDriver, outside: Path, hostile: str
) -> None:
    key = HOSTILE_KEYS[hostile].format(outside=outside)
    [failure] = driver.delete([key])
    assert (failure.key, failure.code) == (key, "InvalidKey")
    assert repr(key) in failure.message
    assert _untouched(outside)


@pytest.mark.parametrize("recursive", [True, False], ids=["recursive", "by-folder"])
@pytest.mark.parametrize("hostile", HOSTILE_PREFIXES)
def test_a_listing_prefix_that_leads_outside_the_bucket_is_refused_naming_it(
    driver: LocalDriver, outside: Path, hostile: str, recursive: bool
) -> None:
    prefix = HOSTILE_PREFIXES[hostile].format(outside=outside)
    with pytest.raises(InvalidSpec, match="invalid prefix for a local repository") as refused:
        driver.list(prefix, delimiter=None if recursive else "/")
    assert repr(prefix) in str(refused.value)


@pytest.mark.parametrize("prefix", ["../", "/", "link/", "a\0"])
def test_listing_uploads_under_a_prefix_that_leads_outside_the_bucket_is_refused(
    driver: LocalDriver, prefix: str
) -> None:
    with pytest.raises(InvalidSpec, match="invalid prefix for a local repository"):
        driver.list_uploads(prefix)


def test_listing_neither_follows_nor_shows_links_and_still_lists_the_bucket(
    driver: LocalDriver,
) -> None:
    page = driver.list("")
    assert [o.key for o in page.objects] == ["inside.txt"] and page.prefixes == []
    assert [o.key for o in driver.list("inside").objects] == ["inside.txt"]


def test_a_link_that_stays_inside_the_bucket_is_followed(
    driver: LocalDriver, tmp_path: Path
) -> None:
    (tmp_path / "repo" / "b" / "alias.txt").symlink_to(tmp_path / "repo" / "b" / "inside.txt")
    assert driver.stat("alias.txt").size == 2


def test_a_bucket_folder_that_is_itself_a_link_works(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "b").symlink_to(tmp_path / "real")
    driver = LocalDriver(tmp_path / "repo", "b")
    driver.put("k/v", b"data", size=4, metadata={})
    assert driver.stat("k/v").size == 4
    assert [o.key for o in driver.list("k/").objects] == ["k/v"]


def test_a_read_the_disk_fails_is_a_local_io_error_naming_the_object() -> None:
    from argosy.artifacts.drivers.local import LocalFileStream
    from argosy.artifacts.errors import LocalIOError

    # the kernel answers a read of an unmapped address of /proc/self/mem with EIO
    stream = LocalFileStream(open("/proc/self/mem", "rb"), 0, 99, 100, "etag", "local://b/k")
    with pytest.raises(LocalIOError, match=r"^cannot read local://b/k: Input/output error$"):
        stream.readinto(memoryview(bytearray(100)))
    with pytest.raises(LocalIOError, match=r"^cannot read local://b/k: "):
        stream.read(10)
    stream.close()
