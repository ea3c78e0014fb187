"""`argosy` on the local filesystem repository, and its usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def test_version_prints_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "argosy", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("argosy 0.")


def _leaving(body: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import atexit, sys, threading, time\nfrom argosy.main import leave\n"
        "atexit.register(lambda: print('atexit ran', flush=True))\n" + body
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )


def test_the_command_leaves_with_its_code_its_output_flushed_and_atexit_run() -> None:
    out = _leaving("print('partial line', end='')\nsys.stderr.write('no newline')\nleave(3)")
    assert out.returncode == 3
    assert out.stdout == "partial lineatexit ran\n" and out.stderr == "no newline"


def test_the_command_leaving_with_a_thread_still_running_waits_for_it() -> None:
    out = _leaving(
        "def late(): time.sleep(0.3); print('thread done', flush=True)\n"
        "threading.Thread(target=late).start()\nleave(0)"
    )
    assert out.returncode == 0 and out.stdout == "thread done\natexit ran\n"


def test_a_local_repository_round_trips_a_file(argosy_local, tmp_path) -> None:
    data = os.urandom(3000)
    (tmp_path / "in").write_bytes(data)
    assert argosy_local("cp", "in", "local://bkt/a/in").code == 0
    assert (tmp_path / "local-root" / "bkt" / "a" / "in").read_bytes() == data
    info = json.loads(argosy_local("stat", "local://bkt/a/in").text)
    assert info["verified"] is True and info["size"] == 3000
    assert argosy_local("cat", "local://bkt/a/in").out == data


def _flip_a_byte(path, *, at: int, keep_mtime: bool) -> None:
    """Change one byte of a file in place, its size kept, its mtime kept or moved on."""
    before = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(at)
        old = f.read(1)
        f.seek(at)
        f.write(bytes([old[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 5_000_000_000))
    after = os.stat(path)
    assert after.st_size == before.st_size
    assert (after.st_mtime_ns == before.st_mtime_ns) == keep_mtime


@pytest.mark.parametrize("size", [3000, 12 << 20], ids=["one-put", "multipart"])
@pytest.mark.parametrize("keep_mtime", [True, False], ids=["mtime-kept", "mtime-moved"])
@pytest.mark.parametrize("command", ["cat", "cp", "cp -"])
def test_a_changed_byte_in_a_local_object_is_an_integrity_error_naming_it(
    argosy_local, tmp_path, size, keep_mtime, command
) -> None:
    (tmp_path / "in").write_bytes(os.urandom(size))
    assert argosy_local("cp", "--part-size", "5", "in", "local://bkt/a/in").code == 0
    _flip_a_byte(tmp_path / "local-root" / "bkt" / "a" / "in", at=size // 2, keep_mtime=keep_mtime)
    args = {"cat": ["cat", "local://bkt/a/in"], "cp": ["cp", "local://bkt/a/in", "back"]}
    got = argosy_local(*args.get(command, ["cp", "local://bkt/a/in", "-"]))
    assert got.code == 4, got.err
    assert "local://bkt/a/in" in got.err and "mismatch" in got.err
    assert got.err.count("\n") == 1, got.err
    assert not (tmp_path / "back").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".back")] == []


def test_a_local_object_whose_mtime_alone_changed_still_reads_as_verified(
    argosy_local, tmp_path
) -> None:
    data = os.urandom(3000)
    (tmp_path / "in").write_bytes(data)
    assert argosy_local("cp", "in", "local://bkt/a/in").code == 0
    os.utime(tmp_path / "local-root" / "bkt" / "a" / "in", ns=(0, 10**18))
    info = json.loads(argosy_local("stat", "local://bkt/a/in").text)
    assert info["verified"] is True
    got = argosy_local("cp", "local://bkt/a/in", "back")
    assert got.code == 0 and "verified crc32c:" in got.err and "unverified" not in got.err
    assert (tmp_path / "back").read_bytes() == data


def test_a_local_object_replaced_by_another_file_reads_as_unverified(
    argosy_local, tmp_path
) -> None:
    (tmp_path / "in").write_bytes(os.urandom(3000))
    assert argosy_local("cp", "in", "local://bkt/a/in").code == 0
    stored = tmp_path / "local-root" / "bkt" / "a" / "in"
    other = os.urandom(3000)
    (tmp_path / "other").write_bytes(other)
    os.replace(tmp_path / "other", stored)  # a new file: no longer the object Argosy wrote
    got = argosy_local("cp", "local://bkt/a/in", "back")
    assert got.code == 0 and "unverified: no Argosy checksum record" in got.err, got.err
    assert (tmp_path / "back").read_bytes() == other


def test_an_object_copies_remote_to_remote_verified(argosy_local, tmp_path) -> None:
    data = os.urandom(12 * (1 << 20) + 5)
    (tmp_path / "in").write_bytes(data)
    assert argosy_local("cp", "--part-size", "5", "in", "local://bkt/a/in").code == 0
    got = argosy_local("cp", "--part-size", "5", "local://bkt/a/in", "local://bkt/b/")
    assert got.code == 0 and "-> local://bkt/b/in" in got.err, got.err
    assert (tmp_path / "local-root" / "bkt" / "b" / "in").read_bytes() == data
    assert json.loads(argosy_local("stat", "local://bkt/b/in").text)["verified"] is True
    missing = argosy_local("cp", "local://bkt/a/none", "local://bkt/b/none")
    assert missing.code == 3 and "local://bkt/a/none" in missing.err


def test_an_unknown_scheme_is_a_usage_error(argosy_local) -> None:
    got = argosy_local("cp", "gs://b/k", "x")
    assert got.code == 2 and "unknown scheme 'gs'" in got.err


def test_a_missing_source_file_exits_3(argosy_local) -> None:
    got = argosy_local("cp", "no-such-file", "local://bkt/x")
    assert got.code == 3 and "no-such-file" in got.err


def test_bad_arguments_exit_2(argosy_local) -> None:
    assert argosy_local("cp", "only-one-arg").code == 2
    assert argosy_local("cp", "--part-size", "1", "a", "local://bkt/a").code == 2
    stalled = argosy_local("cp", "--stall-timeout", "0", "a", "local://bkt/a")
    assert stalled.code == 2 and "stall timeout must be a positive number" in stalled.err
    assert argosy_local("cp", "--deadline", "-1", "a", "local://bkt/a").code == 2


def test_two_local_paths_are_refused(argosy_local) -> None:
    got = argosy_local("cp", "a", "b")
    assert got.code == 2 and "must be a URL" in got.err


def test_the_demo_with_a_work_folder_it_cannot_create_is_a_one_line_error(
    argosy_local, tmp_path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    run = argosy_local("demo", "--workdir", str(tmp_path / "a-file" / "work"))
    assert run.code != 0
    assert run.err.strip() == (
        f"argosy: error: cannot create the work folder "
        f"{tmp_path / 'a-file' / 'work'}: Not a directory"
    )


@pytest.fixture
def outside(tmp_path):
    """A folder beside the local root, with one file, and a link to it inside bucket bkt."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("not in the repository")
    (tmp_path / "local-root" / "bkt" / "link").symlink_to(tmp_path / "outside")
    return tmp_path / "outside"


@pytest.mark.parametrize(
    "args, prefix",
    [
        (["ls", "local://bkt/../.."], "../.."),
        (["ls", "local://bkt/../../"], "../../"),
        (["ls", "-r", "local://bkt/../../outside/"], "../../outside/"),
        (["ls", "-r", "--json", "local://bkt/sub/../../../outside/"], "sub/../../../outside/"),
        (["ls", "-r", "local://bkt/link/"], "link/"),
        # rm -r lists the folder's bare name first (its exact keys sort beside it)
        (["rm", "-r", "local://bkt/../../outside/"], "../../outside"),
    ],
)
def test_a_listing_that_would_leave_the_bucket_is_refused_in_one_line_naming_its_prefix(
    argosy_local, outside, args, prefix
) -> None:
    got = argosy_local(*args)
    assert got.code == 2, got.err
    assert got.out == b"" and got.err.count("\n") == 1 and repr(prefix) in got.err, got.err
    assert (outside / "secret").exists()


@pytest.mark.parametrize("command", [["cat"], ["stat"], ["cp"]])
def test_reading_through_a_link_out_of_the_bucket_is_refused(
    argosy_local, outside, command
) -> None:
    got = argosy_local(*command, "local://bkt/link/secret", *(["-"] if command == ["cp"] else []))
    assert got.code == 2 and "'link/secret'" in got.err and got.out == b"", got.err


def test_writing_or_deleting_through_a_link_out_of_the_bucket_changes_nothing_outside(
    argosy_local, outside, tmp_path
) -> None:
    (tmp_path / "new").write_text("new")
    assert argosy_local("cp", "new", "local://bkt/link/new").code == 2
    assert argosy_local("rm", "local://bkt/link/secret").code == 1
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


@pytest.mark.parametrize("command", [["gc", "--once"], ["repo", "check", "-n", "team"]])
@pytest.mark.parametrize("content", ["garbage: [\n", None])
def test_a_broken_or_missing_kubeconfig_is_one_line_naming_it(
    argosy_local, tmp_path, command, content
):
    kubeconfig = tmp_path / "kubeconfig"
    if content is not None:
        kubeconfig.write_text(content)
    got = argosy_local(*command, "--kubeconfig", str(kubeconfig))
    assert got.code == 2, got.err
    assert got.err.count("\n") == 1 and str(kubeconfig) in got.err, got.err


@pytest.mark.parametrize(
    "argv",
    [
        ["cp", "-q", "--archive", "tar.zst", "--level", "5", "d", "s3://b/k"],
        ["ls", "-r", "--json", "s3://b/"],
        ["rm", "-r", "s3://b/p/"],
        ["mb", "s3://b"],
        ["ls", "--json", "oss://"],
        ["cat", "s3://b/k"],
        ["stat", "s3://b/k"],
        ["demo", "--size", "8", "--no-workflows"],
        ["repo", "check", "-n", "argo"],
        ["init", "--template", "t.json"],
        ["wait", "--timeout", "5"],
        ["emissary", "--", "echo", "hi"],
        ["lint", "wf.yaml"],
        ["gc", "--once"],
    ],
)
def test_a_command_parses_the_same_with_only_its_own_arguments_defined(argv) -> None:
    from argosy.main import _command_in, parser

    def parsed(p) -> dict:
        return {k: v for k, v in vars(p.parse_args(argv)).items() if not callable(v)}

    assert _command_in(argv) == argv[0]
    assert parsed(parser(argv[0])) == parsed(parser())


USER_INFO_ENDPOINT = "http://KEYID:s3cr3t-v4lue@127.0.0.1:9"
REDACTED_ENDPOINT = "http://***@127.0.0.1:9"


def _refused_in_one_line_without_the_secret(got, shown: str = REDACTED_ENDPOINT) -> None:
    assert got.code == 2, got.err
    assert got.err.count("\n") == 1 and got.err.startswith("argosy: error: "), got.err
    assert f"endpoint must not carry user info ({shown}): put credentials in " in got.err, got.err
    for shown in (got.err, got.text):
        assert "s3cr3t" not in shown and "KEYID" not in shown


@pytest.mark.parametrize(
    "args, env",
    [
        (["ls", "--endpoint", USER_INFO_ENDPOINT, "s3://b/"], {}),
        (["cp", "--endpoint", USER_INFO_ENDPOINT, "local://bkt/x", "s3://b/x"], {}),
        (["ls", "s3://b/"], {"AWS_ENDPOINT_URL": USER_INFO_ENDPOINT}),
        (["cat", "s3://b/k"], {"AWS_ENDPOINT_URL_S3": USER_INFO_ENDPOINT}),
        (["ls", "oss://b/"], {"OSS_ENDPOINT": USER_INFO_ENDPOINT}),
        (["stat", "--endpoint", USER_INFO_ENDPOINT, "oss://b/k"], {}),
    ],
    ids=["flag", "flag-cp", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "OSS_ENDPOINT", "flag-oss"],
)
def test_an_endpoint_carrying_user_info_is_refused_without_showing_it(
    argosy_local, args, env
) -> None:
    (argosy_local.cwd / "local-root" / "bkt" / "x").write_text("x")
    _refused_in_one_line_without_the_secret(
        argosy_local(
            *args,
            env={
                "AWS_ACCESS_KEY_ID": "k",
                "AWS_SECRET_ACCESS_KEY": "s",
                "OSS_ACCESS_KEY_ID": "k",
                "OSS_ACCESS_KEY_SECRET": "s",
                **env,
            },
        )
    )


@pytest.mark.parametrize("kind", ["s3", "oss"])
def test_a_repository_entry_whose_endpoint_carries_user_info_is_refused_without_showing_it(
    argosy_local, tmp_path, kind
) -> None:
    (tmp_path / "entry.yaml").write_text(
        f"{kind}:\n  bucket: b\n  endpoint: {USER_INFO_ENDPOINT.removeprefix('http://')}\n"
        + ("  insecure: true\n" if kind == "s3" else "")
    )
    got = argosy_local(
        "ls",
        "--repository",
        "entry.yaml",
        f"{kind}://b/",
        env={
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "OSS_ACCESS_KEY_ID": "k",
            "OSS_ACCESS_KEY_SECRET": "s",
        },
    )
    # Argo's OSS entries have no insecure: a bare host is https
    _refused_in_one_line_without_the_secret(
        got, REDACTED_ENDPOINT.replace("http:", "https:") if kind == "oss" else REDACTED_ENDPOINT
    )
