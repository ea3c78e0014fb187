"""The sandbox launcher as the engine runs it, in real processes: a step's /tmp is
ROOT/tmp, never the host's, through namespaces where the kernel allows them (it does
here) and through rewritten arguments where it does not."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from argosy.artifacts.errors import InvalidSpec
from argosy.demo.sandbox import (
    Sandbox,
    SandboxUnavailable,
    launcher,
    prepare,
    probe,
    rewrite_args,
    tops_of,
)


def run(
    sandbox: Sandbox, script: str, *, mode: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        launcher(sandbox, ["sh", "-c", script], mode=mode),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def host_name() -> Iterator[str]:
    """A /tmp name no one else uses, so the host's /tmp can be checked for it."""
    name = f"argosy-sandbox-{uuid.uuid4().hex[:12]}"
    yield name
    # Only if a test failed would it be there; never leave it behind.
    Path("/tmp", name).unlink(missing_ok=True)


def namespaces_work(tmp_path: Path) -> bool:
    """Whether this kernel lets us make user and mount namespaces, asked of util-linux's
    unshare(1), not of our own probe: a bug in the probe must fail here, never turn the
    namespace tests into skips."""
    tool = shutil.which("unshare")
    if tool is None:
        pytest.fail("util-linux's unshare is needed to check the kernel independently")
    kernel = (
        subprocess.run(
            [tool, "--user", "--map-root-user", "--mount", "true"], capture_output=True
        ).returncode
        == 0
    )
    ours = probe(Sandbox(tmp_path / "probe")) is None
    assert ours == kernel, f"our probe says {ours}, unshare(1) says {kernel}"
    return kernel


def test_the_namespace_path_is_taken_on_this_machine(tmp_path: Path, host_name: str) -> None:
    if not namespaces_work(tmp_path):
        pytest.skip("this kernel refuses user namespaces; the fallback is tested below")
    sandbox = Sandbox(tmp_path / "sandbox")

    done = run(
        sandbox,
        f"echo written > /tmp/{host_name}; readlink /proc/self/ns/mnt; echo /tmp/{host_name}",
    )

    assert done.returncode == 0, done.stderr
    mount_ns, argument = done.stdout.split()
    assert mount_ns != os.readlink("/proc/self/ns/mnt")
    assert argument == f"/tmp/{host_name}"  # not rewritten: the namespace did the work
    assert done.stderr == ""
    assert (sandbox.root / "tmp" / host_name).read_text() == "written\n"
    assert not Path("/tmp", host_name).exists()


def test_in_the_namespace_the_step_sees_only_its_own_tmp(tmp_path: Path) -> None:
    if not namespaces_work(tmp_path):
        pytest.skip("this kernel refuses user namespaces")
    sandbox = Sandbox(tmp_path / "sandbox")
    (sandbox.root / "tmp").mkdir(parents=True)
    (sandbox.root / "tmp" / "mine").write_text("x")

    done = run(sandbox, "ls -A /tmp; pwd")

    assert done.stdout.split() == ["mine", "/"]


def test_the_fallback_rewrites_arguments_and_says_so_once(tmp_path: Path, host_name: str) -> None:
    sandbox = Sandbox(tmp_path / "sandbox")

    done = run(
        sandbox,
        f"echo written > /tmp/{host_name}; echo /tmp/{host_name}",
        env={"ARGOSY_SANDBOX": "rewrite"},
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{sandbox.root}/tmp/{host_name}"
    assert done.stderr.count("argosy sandbox:") == 1
    assert "rewriting paths" in done.stderr
    assert (sandbox.root / "tmp" / host_name).read_text() == "written\n"
    assert not Path("/tmp", host_name).exists()


def test_the_command_s_exit_code_is_the_launcher_s(tmp_path: Path) -> None:
    assert run(Sandbox(tmp_path / "s"), "exit 7").returncode == 7
    assert run(Sandbox(tmp_path / "s"), "exit 7", mode="rewrite").returncode == 7


def test_a_command_that_does_not_exist_exits_127_as_in_a_shell(tmp_path: Path) -> None:
    done = subprocess.run(
        launcher(Sandbox(tmp_path / "s"), ["no-such-command-here"]),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 127
    assert "cannot run no-such-command-here" in done.stderr


def test_other_tops_the_artifacts_use_are_bound_too(tmp_path: Path) -> None:
    if not namespaces_work(tmp_path):
        pytest.skip("this kernel refuses user namespaces")
    sandbox = Sandbox(tmp_path / "sandbox", tops_of(["/mnt/data/out", "/tmp/x"]))

    done = run(sandbox, "echo hi > /mnt/argosy-sandbox-check && ls -A /mnt")

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["argosy-sandbox-check"]
    assert (sandbox.root / "mnt" / "argosy-sandbox-check").exists()
    assert not Path("/mnt/argosy-sandbox-check").exists()


def test_auto_falls_back_when_the_kernel_refuses_namespaces(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "s")

    prepared = prepare(
        sandbox,
        ["cat", "/tmp/message"],
        try_namespace=lambda _: SandboxUnavailable(errno.EPERM, "Operation not permitted"),
    )

    assert not prepared.namespace
    assert prepared.argv == ["cat", f"{sandbox.root}/tmp/message"]
    assert prepared.workdir == str(sandbox.root)
    assert prepared.note is not None and "Operation not permitted" in prepared.note


def test_namespace_mode_refuses_to_fall_back(tmp_path: Path) -> None:
    refused = SandboxUnavailable(errno.EPERM, "Operation not permitted")

    with pytest.raises(SandboxUnavailable):
        prepare(
            Sandbox(tmp_path / "s"), ["true"], mode="namespace", try_namespace=lambda _: refused
        )


def test_the_namespace_path_leaves_arguments_alone(tmp_path: Path) -> None:
    prepared = prepare(
        Sandbox(tmp_path / "s"), ["cat", "/tmp/message"], try_namespace=lambda _: None
    )

    assert prepared == type(prepared)(["cat", "/tmp/message"], "/", True, None)


@pytest.mark.parametrize(
    "arg, expected",
    [
        ("/tmp/message", "R/tmp/message"),
        ("/tmp", "R/tmp"),
        ("cat /tmp/a /tmp/b", "cat R/tmp/a R/tmp/b"),
        ("--out=/tmp/x", "--out=R/tmp/x"),
        ("'/tmp/x'", "'R/tmp/x'"),
        ("/tmpfile", "/tmpfile"),
        ("/var/tmp/x", "/var/tmp/x"),
        ("a/tmp/x", "a/tmp/x"),
        ("/mnt/data", "R/mnt/data"),
    ],
)
def test_rewriting_replaces_whole_leading_segments_only(arg: str, expected: str) -> None:
    sandbox = Sandbox(Path("R"), ("tmp", "mnt"))

    assert rewrite_args([arg], sandbox) == [expected]


def test_the_tops_come_from_the_artifact_paths_with_tmp_always() -> None:
    assert tops_of(["/mnt/in/a", "/data/x", "/mnt/b"]) == ("tmp", "mnt", "data")
    assert tops_of([]) == ("tmp",)


@pytest.mark.parametrize("path", ["/usr/local/x", "/etc/passwd", "relative/x", "/top"])
def test_paths_the_sandbox_cannot_own_are_refused(path: str) -> None:
    with pytest.raises(InvalidSpec):
        tops_of([path])


def test_the_launcher_runs_this_python(tmp_path: Path) -> None:
    argv = launcher(Sandbox(tmp_path, ("tmp", "mnt")), ["cat", "/tmp/x"], mode="rewrite")

    assert argv == [
        sys.executable,
        "-m",
        "argosy.demo.sandbox",
        "--root",
        str(tmp_path),
        "--bind",
        "tmp",
        "--bind",
        "mnt",
        "--mode",
        "rewrite",
        "--",
        "cat",
        "/tmp/x",
    ]


def test_the_working_folder_is_made_inside_the_sandbox(tmp_path: Path) -> None:
    if not namespaces_work(tmp_path):
        pytest.skip("this kernel refuses user namespaces")
    sandbox = Sandbox(tmp_path / "sandbox")

    done = subprocess.run(
        launcher(sandbox, ["pwd"], workdir="/tmp/work"), capture_output=True, text=True, timeout=60
    )

    assert done.stdout.strip() == "/tmp/work"
    assert (sandbox.root / "tmp" / "work").is_dir()


def test_in_the_fallback_the_working_folder_is_the_sandbox_s(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "sandbox")

    done = subprocess.run(
        launcher(sandbox, ["pwd"], workdir="/tmp/work", mode="rewrite"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.stdout.strip() == str(sandbox.root / "tmp" / "work")


def test_a_top_the_host_lacks_exists_only_in_the_step_s_view(tmp_path: Path) -> None:
    if not namespaces_work(tmp_path):
        pytest.skip("this kernel refuses user namespaces")
    top = f"argosy-data-{uuid.uuid4().hex[:8]}"
    # The sandbox lies under the host's /tmp, which the step's own /tmp hides.
    sandbox = Sandbox(tmp_path / "sandbox", tops_of([f"/{top}/x"]))

    done = run(sandbox, f"echo hi > /{top}/x && cat /{top}/x && ls /usr/bin/env")

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hi", "/usr/bin/env"]
    assert (sandbox.root / top / "x").read_text() == "hi\n"
    assert not Path("/", top).exists()
