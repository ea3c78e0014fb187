"""Past its first files, an extraction hands small files to file-making processes: the
tree comes out the same, every check of the extractor still applies, and a file they
cannot make fails the extraction by name, leaving nothing."""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import pytest

from argosy.artifacts.archive import extract as extract_module
from argosy.artifacts.archive import extract_tar, filemaker, makers, write_archive
from argosy.artifacts.errors import IntegrityError, InvalidSpec, LocalIOError
from tests.archive.helpers import chunks, file, info, make_tree, pooled, snapshot, tar_bytes

MANY = extract_module.MAKERS_WAIT + 300  # the last 300 at least are handed over


class Counted:
    """Counts the files handed to the file-making processes (the real ones make them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = 0
        real = makers.Makers.add

        def add(this: makers.Makers, *args: object, **kwargs: object) -> int:
            self.files += 1
            return real(this, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(makers.Makers, "add", add)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    return Counted(monkeypatch)


def file_makers_left() -> list[int]:
    """This process's children that still run the file-making program."""
    left = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                parent = int(f.read().rpartition(b")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                program = f.read()
        except (OSError, ValueError):
            continue
        if parent == os.getpid() and b"filemaker.py" in program:
            left.append(int(entry))
    return left


def many_files(root: Path) -> Path:
    """`MANY` small files over 40 folders three and four levels down, some read-only,
    some executable, some empty; in the last folders, a file too large to hand over, a
    symlink and a read-only folder; beside the tree of every kind of entry."""
    make_tree(root)
    for n in range(MANY):
        folder = root / "many" / f"d{n % 4}" / f"e{n % 40:02d}" / ("f" if n % 3 else "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"f{n}.txt"
        path.write_bytes(os.urandom(n % 3000) if n % 7 else b"")
        path.chmod((0o444, 0o755, 0o640, 0o600)[n % 4])
    last = root / "many" / "zz" / "deep" / "er"
    last.mkdir(parents=True)
    (last / "large.bin").write_bytes(os.urandom(makers.LARGEST + 1))
    (last / "link").symlink_to("large.bin")
    (last / "locked").mkdir()
    (last / "locked" / "inside.txt").write_text("inside a read-only folder")
    (last / "locked").chmod(0o555)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return many_files(tmp_path_factory.mktemp("tree") / "src")


@pytest.mark.parametrize("fmt", ["tar", "tar.zst", "tar.gz"])
def test_a_tree_of_many_small_files_comes_out_the_same_through_the_file_makers(
    fmt: str, tree: Path, tmp_path: Path, counted: Counted
) -> None:
    data = b"".join(write_archive(tree, fmt))  # type: ignore[arg-type]
    result = extract_tar(pooled(data, 100_000), tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)
    assert counted.files >= 300  # made by the file-making processes
    assert file_makers_left() == []
    assert result.files == sum(1 for e in snapshot(tree).values() if e[0] == "file")


def test_mtimes_are_kept_by_the_file_makers_when_asked(
    tree: Path, tmp_path: Path, counted: Counted
) -> None:
    data = b"".join(write_archive(tree, "tar.zst", keep_mtime=True))
    extract_tar(chunks(data), tmp_path / "out", keep_mtime=True)
    assert snapshot(tmp_path / "out", mtimes=True) == snapshot(tree, mtimes=True)
    assert counted.files >= 300


def _many(prefix: str = "f") -> list[tuple[tarfile.TarInfo, bytes]]:
    return [file(f"{prefix}{n}.txt", b"%d" % n) for n in range(MANY)]


def test_a_hardlink_to_a_file_a_maker_made_links_to_it(tmp_path: Path, counted: Counted) -> None:
    last = f"f{MANY - 1}.txt"
    data = tar_bytes(*_many(), (info("twin", tarfile.LNKTYPE, linkname=last), None))
    extract_tar(chunks(data), tmp_path / "out")
    assert os.path.samefile(tmp_path / "out" / "twin", tmp_path / "out" / last)
    assert (tmp_path / "out" / "twin").read_bytes() == b"%d" % (MANY - 1)
    assert counted.files >= 300


def test_past_the_first_files_a_path_through_a_symlink_is_still_refused(
    tmp_path: Path, counted: Counted
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    data = tar_bytes(
        *_many(),
        (info("escape", tarfile.SYMTYPE, linkname=str(outside)), None),
        file("escape/planted.txt", b"evil"),
    )
    with pytest.raises(InvalidSpec, match="escape"):
        extract_tar(chunks(data), tmp_path / "out")
    assert not (tmp_path / "out").exists() and list(outside.iterdir()) == []
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    assert file_makers_left() == []


def test_a_file_a_maker_cannot_make_fails_the_extraction_by_name_and_leaves_nothing(
    tmp_path: Path, counted: Counted
) -> None:
    too_long = "x" * 300 + ".txt"  # past NAME_MAX: only the file-making process finds out
    data = tar_bytes(*_many(), file(too_long, b"data"), *_many("g"))
    with pytest.raises(InvalidSpec, match=r"'x{20}.*too long"):
        extract_tar(chunks(data), tmp_path / "out")
    assert counted.files >= 301  # it was handed over
    assert sorted(os.listdir(tmp_path)) == []
    assert file_makers_left() == []


def test_a_member_holding_fewer_bytes_than_it_declares_is_refused_past_the_first_files(
    tmp_path: Path, counted: Counted
) -> None:
    data = bytearray(tar_bytes(*_many(), file("short.txt", b"0123456789")))
    # cut the archive inside the last member's data: the reader reports it truncated
    with pytest.raises(IntegrityError, match="short.txt"):
        extract_tar(chunks(bytes(data[: data.rfind(b"0123456789") + 4])), tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == []


def test_a_file_making_process_that_dies_fails_the_extraction_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dies = tmp_path / "dies.py"  # answers that it runs, then ends at the first files
    dies.write_text(
        "import os, sys\n"
        f"os.write(int(sys.argv[3]), {filemaker.ANSWER.pack(0, 0, 0)!r})\n"
        "os.read(int(sys.argv[2]), 1)\n"
        "sys.exit(3)\n"
    )
    monkeypatch.setattr(makers, "_PROGRAM", str(dies))
    data = tar_bytes(*_many())
    with pytest.raises(LocalIOError, match=r"file-making process .* ended \(exit 3\)"):
        extract_tar(chunks(data), tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["dies.py"]


@pytest.mark.parametrize(
    ("program", "warning"),
    [
        # as a program that cannot run here would
        ("import sys\nsys.exit(2)\n", "ended before it ran (exit 2)"),
        # as an interpreter stuck before it runs would
        ("import time\ntime.sleep(60)\n", "did not answer within 0.5 s"),
    ],
    ids=["ends", "never-answers"],
)
def test_a_file_making_process_that_does_not_come_up_leaves_the_files_to_the_extractor(
    program: str,
    warning: str,
    tree: Path,
    tmp_path: Path,
    counted: Counted,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "maker.py").write_text(program)
    monkeypatch.setattr(makers, "_PROGRAM", str(tmp_path / "maker.py"))
    monkeypatch.setattr(makers, "START_TIMEOUT", 0.5)
    data = b"".join(write_archive(tree, "tar.zst"))
    extract_tar(chunks(data), tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)
    assert counted.files == 0
    assert file_makers_left() == []  # ended, not left running
    assert f"{warning}: this extraction makes its files itself" in caplog.text


def test_when_the_file_making_processes_cannot_start_the_extractor_makes_the_files_itself(
    tree: Path, tmp_path: Path, counted: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    data = b"".join(write_archive(tree, "tar.zst"))
    extract_tar(chunks(data), tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)
    assert counted.files == 0
