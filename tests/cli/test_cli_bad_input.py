"""Bad input and rough edges met on a first try, through `argosy` as a user runs it:
each is one line naming the thing, with its exit code, and leaves nothing behind."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_copying_a_folder_without_r_says_how_to_copy_a_folder(argosy_local, tmp_path) -> None:
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "sub" / "f").write_text("x")
    for dst in ("local://bkt/dir", "local://bkt/"):
        run = argosy_local("cp", "dir", dst)
        assert run.code == 2
        assert _one_line(run.err) == (
            "argosy: error: dir is a folder: use -r (one object per file) or --archive FORMAT"
        )
    assert list((tmp_path / "local-root" / "bkt").iterdir()) == []


@pytest.mark.parametrize("size", [6, 3 << 20])
def test_an_object_written_to_a_full_disk_is_one_line_naming_it(argosy_local, tmp_path, size):
    (tmp_path / "local-root" / "bkt" / "k").write_bytes(os.urandom(size))
    for command in (["cat", "local://bkt/k"], ["cp", "local://bkt/k", "-"]):
        with open("/dev/full", "wb") as full:
            run = argosy_local(*command, stdout=full)
        assert run.code == 1
        assert _one_line(run.err) == (
            "argosy: error: cannot write local://bkt/k to the output: No space left on device"
        )


@pytest.mark.parametrize("keys", [1, 500])
def test_a_listing_written_to_a_full_disk_is_one_line(argosy_local, tmp_path, keys) -> None:
    for n in range(keys):
        (tmp_path / "local-root" / "bkt" / f"key-{n:04}").write_text("x")
    for command in (["ls", "local://bkt/"], ["stat", "local://bkt/key-0000"]):
        with open("/dev/full", "wb") as full:
            run = argosy_local(*command, stdout=full)
        assert run.code == 1
        assert _one_line(run.err) == (
            "argosy: error: cannot write to the output: No space left on device"
        )


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A read-only file system (root ignores permissions); as another user, a folder
    it may not write."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_folder_copied_into_a_read_only_file_system_is_one_line_leaving_nothing(
    argosy_local, tmp_path, read_only
) -> None:
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "f").write_text("x")
    assert argosy_local("cp", "-q", "-r", "tree", "local://bkt/tree/").code == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    for flags in (["-r"], ["--archive", "none"]):
        run = argosy_local("cp", *flags, "local://bkt/tree/", "ro/copy")
        assert run.code == 1
        line = _one_line(run.err)
        assert line.startswith("argosy: error: ") and str(read_only / "copy") in line
        assert line.endswith(("Read-only file system", "Permission denied"))
    assert list(read_only.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before


_DEEP = {
    "lists.yaml": "[" * 10_000 + "]" * 10_000,
    "mappings.yaml": "a: " + "{a: " * 10_000 + "1" + "}" * 10_000,
    "block.yaml": "".join("  " * i + "a:\n" for i in range(10_000)) + "  " * 10_000 + "b: 1\n",
}
_READERS = {
    "--repository": ("ls", "--repository", "{}", "local://bkt/"),
    "--template": ("init", "--template", "{}"),
    "repo check": ("repo", "check", "{}"),
    "gc --default-repository": ("gc", "--once", "--default-repository", "{}"),
}


@pytest.mark.parametrize("reader", _READERS)
@pytest.mark.parametrize("name", _DEEP)
def test_deeply_nested_yaml_is_one_line_naming_the_file(argosy_local, tmp_path, name, reader):
    (tmp_path / name).write_text(_DEEP[name])
    run = argosy_local(*(arg.format(name) for arg in _READERS[reader]))
    assert run.code == 2
    line = _one_line(run.err)
    assert line.startswith("argosy: error: ") and name in line
    assert line.endswith("is nested deeper than 100 levels")


def test_a_deeply_nested_json_template_is_one_line_naming_it(argosy_local, tmp_path) -> None:
    (tmp_path / "t.json").write_text('{"a": ' + "[" * 10_000 + "]" * 10_000 + "}")
    run = argosy_local("init", "--template", "t.json")
    assert run.code == 2
    assert _one_line(run.err) == "argosy: error: t.json: nested too deeply to read as JSON"


@pytest.mark.parametrize("reader", _READERS)
def test_a_binary_file_given_as_yaml_is_one_line_saying_it_is_not_text(argosy_local, reader):
    run = argosy_local(*(arg.format("/bin/ls") for arg in _READERS[reader]))
    assert run.code == 2
    line = _one_line(run.err)
    assert line.startswith("argosy: error: ") and line.endswith("/bin/ls is not text")


def test_a_configmap_entry_nested_too_deeply_is_one_line_naming_it(argosy_local, tmp_path):
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "artifact-repositories"},
        "data": {"deep": _DEEP["mappings.yaml"]},
    }
    (tmp_path / "cm.yaml").write_text(json.dumps(configmap))
    run = argosy_local("ls", "--repository", "cm.yaml", "local://bkt/")
    assert run.code == 2
    assert _one_line(run.err) == (
        "argosy: error: cm.yaml: repository 'deep' is nested deeper than 100 levels"
    )
    run = argosy_local("repo", "check", "cm.yaml")
    assert run.code == 1 and "nested deeper than 100 levels" in run.text
    assert "Traceback" not in run.err


_OSS_RULE = (
    "OSS bucket names are 3-63 characters, lowercase letters, digits and hyphens, "
    "starting and ending with a letter or digit"
)


@pytest.mark.parametrize("bucket", ["ab", "a" * 64, "Upper", "under_score", "-ab", "ab-"])
def test_an_oss_bucket_name_oss_refuses_is_one_line_with_the_rule(argosy_local, bucket):
    env = {"OSS_ENDPOINT": "http://127.0.0.1:1", "OSS_ACCESS_KEY_ID": "a"}
    run = argosy_local("ls", f"oss://{bucket}/", env={**env, "OSS_ACCESS_KEY_SECRET": "s"})
    assert run.code == 2
    assert _one_line(run.err) == f"argosy: error: invalid OSS bucket name {bucket!r}: {_OSS_RULE}"


def test_an_oss_endpoint_with_a_space_is_one_line_naming_it(argosy_local) -> None:
    env = {"OSS_ENDPOINT": "http://a b", "OSS_ACCESS_KEY_ID": "a", "OSS_ACCESS_KEY_SECRET": "s"}
    run = argosy_local("ls", "oss://abc/", env=env)
    assert run.code == 2
    assert _one_line(run.err) == (
        "argosy: error: OSS endpoint 'http://a b' is not a URL: "
        "give it as HOST, https://HOST or http://HOST"
    )


@pytest.mark.parametrize("bucket", ["abc", "a" * 63, "0-9"])
def test_an_oss_bucket_name_within_the_rule_is_asked_for(argosy_local, oss_server, bucket):
    from tests.conftest import OSS_ACCESS_KEY, OSS_SECRET

    env = {"OSS_ENDPOINT": oss_server.endpoint, "OSS_ACCESS_KEY_ID": OSS_ACCESS_KEY}
    run = argosy_local("ls", f"oss://{bucket}/", env={**env, "OSS_ACCESS_KEY_SECRET": OSS_SECRET})
    assert run.code == 3
    assert _one_line(run.err).startswith(f"argosy: error: oss://{bucket}/: no such bucket")


_CONTROL = "a\x1b[2Jb\nc\rd\te\x7ff\x9bg\u202eh"
_SHOWN = "a\\x1b[2Jb\\x0ac\\x0dd\\x09e\\x7ff\\x9bg\\u202eh"


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if not c.isprintable() and c != "\n"]


def test_ls_shows_control_characters_in_keys_escaped_and_json_keeps_them(
    argosy_local, tmp_path
) -> None:
    bucket = tmp_path / "local-root" / "bkt"
    (bucket / _CONTROL).write_text("x")
    (bucket / f"dir{_CONTROL}").mkdir()
    (bucket / f"dir{_CONTROL}" / "k").write_text("x")
    listing = argosy_local("ls", "local://bkt/")
    assert listing.code == 0 and _raw_controls(listing.text) == []
    lines = listing.text.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f"  local://bkt/dir{_SHOWN}/")
    assert lines[1].endswith(f"  local://bkt/{_SHOWN}")
    deep = argosy_local("ls", "-r", "local://bkt/").text.splitlines()
    assert len(deep) == 2 and deep[1].endswith(f"  local://bkt/dir{_SHOWN}/k")
    rows = [
        json.loads(line) for line in argosy_local("ls", "--json", "local://bkt/").out.splitlines()
    ]
    assert [row.get("prefix") or row["url"] for row in rows] == [
        f"local://bkt/dir{_CONTROL}/",
        f"local://bkt/{_CONTROL}",
    ]


def test_ls_archive_contents_shows_control_characters_in_member_names_escaped(
    argosy_local, tmp_path
) -> None:
    name = _CONTROL.encode("ascii", "ignore").decode()  # plain ustar: no pax header
    shown = _SHOWN.replace("\\x9bg\\u202e", "g")
    path = tmp_path / "local-root" / "bkt" / "a.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        member = tarfile.TarInfo(name)
        member.size = 1
        tar.addfile(member, io.BytesIO(b"x"))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, name
        tar.addfile(link)
    listing = argosy_local("ls", "--archive-contents", "local://bkt/a.tar")
    assert listing.code == 0, listing.err
    assert _raw_controls(listing.text) == []
    assert [re.sub(r"^\S+ +\d+ +\d+  ", "", line) for line in listing.text.splitlines()] == [
        shown,
        f"link -> {shown}",
    ]
    rows = argosy_local("ls", "--json", "--archive-contents", "local://bkt/a.tar").out
    assert [json.loads(row)["path"] for row in rows.splitlines()] == [name, "link"]


def test_an_error_naming_a_key_with_control_characters_is_one_escaped_line(argosy_local):
    run = argosy_local("stat", f"local://bkt/{_CONTROL}")
    assert run.code == 3
    assert _one_line(run.err) == f"argosy: error: no such key: local://bkt/{_SHOWN}"


_SUMMARY = re.compile(
    r"(?P<files>\d+) files(, (?P<bytes>\d+) bytes)?  (?P<mib>[\d.]+) MiB/s  (?P<fps>[\d.]+) files/s"
)


def test_folder_summaries_give_files_per_second_on_the_clock_of_their_mib_per_second(
    argosy_local, tmp_path
) -> None:
    (tmp_path / "tree").mkdir()
    for n in range(3):
        (tmp_path / "tree" / f"f{n}").write_bytes(os.urandom(4 * 1024 * 1024))
    runs = [
        argosy_local("cp", "-r", "tree", "local://bkt/t/"),
        argosy_local("cp", "-r", "local://bkt/t/", "back"),
        argosy_local("cp", "--archive", "tar", "tree", "local://bkt/t.tar"),
        argosy_local("cp", "--archive", "auto", "local://bkt/t.tar", "extracted"),
    ]
    assert runs[2].code == 0, runs[2].err  # an archive upload: how many files, it cannot say
    for run in runs[:2] + runs[3:]:
        assert run.code == 0, run.err
        found = _SUMMARY.search(run.err)
        assert found, run.err
        assert found["files"] == "3"
        if found["bytes"]:  # same clock: files/s is MiB/s times files per MiB
            per_mib = 3 / (int(found["bytes"]) / (1 << 20))
            assert abs(float(found["fps"]) - float(found["mib"]) * per_mib) <= 0.1


def test_lint_reports_a_configmap_entry_nested_too_deeply_at_its_line(argosy_local, tmp_path):
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "artifact-repositories"},
        "data": {"deep": "[" * 10_000 + "]" * 10_000},
    }
    (tmp_path / "cm.yaml").write_text(json.dumps(configmap))
    (tmp_path / "wf.yaml").write_text(
        "kind: Workflow\nspec:\n  templates:\n  - name: main\n    container: {image: a}\n"
    )
    run = argosy_local("lint", "--repositories", "cm.yaml", "wf.yaml")
    assert "Traceback" not in run.err
    assert run.code == 1, run.err
    assert "cm.yaml:1: error: data.deep is not valid YAML" in run.err
