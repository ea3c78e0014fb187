"""The image, run as Argo runs the plugin: scripts/image builds it from the Dockerfile,
buildah mounts it, and its ENTRYPOINT is started as its USER with the socket path as the
last argument, with the socket in the image's /tmp; a gRPC client outside then saves and
loads through it against Ceph RGW.

Nothing can run a container here (no Docker engine, and podman's runtime cannot set its
limits in this sandbox), so the test gives the entrypoint what a runtime would: the
image's root file system (chroot), its user, its environment, /proc, /dev and a writable
/tmp, bind-mounted in a mount namespace of its own (they vanish with the process, so
nothing is left mounted on the machine whatever happens).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from argosy.artifacts.archive import extract as extract_module
from argosy.artifacts.archive import write_archive
from argosy.plugin import artifact_pb2 as pb
from argosy.plugin import artifact_pb2_grpc as rpc
from tests.archive.helpers import snapshot
from tests.plugin.conftest import Storage, artifact

_NO_BUILDAH = "buildah is not installed (scripts/image install, run by scripts/test, installs it)"


@pytest.fixture(autouse=True, scope="module")
def _buildah() -> None:
    """Skipped only outside scripts/test: there (ARGOSY_REQUIRE_IMAGE) a missing buildah
    fails the image tests instead of hiding them."""
    if shutil.which("buildah") is None:
        if os.environ.get("ARGOSY_REQUIRE_IMAGE"):
            pytest.fail(_NO_BUILDAH)
        pytest.skip(_NO_BUILDAH)


ROOT = Path(__file__).resolve().parents[2]
SOCKET = "/tmp/artifact-plugins/argosy/socket"  # where Argo puts the plugin's socket
MiB = 1 << 20

# Mount /proc, /dev and the given /tmp into the image, then exec its command as USER.
_ENTER = (
    'root=$1 tmp=$2 user=$3; shift 3; mount --bind /proc "$root/proc" '
    '&& mount --bind /dev "$root/dev" && mount --bind "$tmp" "$root/tmp" '
    '&& exec "$CHROOT" --userspec="$user" "$root" "$@"'
)


@dataclass(frozen=True)
class Image:
    tag: str
    buildah: list[str]
    config: dict[str, Any]  # the OCI image config: Entrypoint, User, Env, Labels
    root: Path  # a container of it, mounted

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config["Env"])

    def command(self, tmp: Path, *argv: str) -> list[str]:
        """argv run in the image as its user, with `tmp` as its /tmp."""
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _ENTER,
            "enter",
            str(self.root),
            str(tmp),
            self.config["User"],
            *argv,
        ]

    def run(self, tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(tmp, *argv),
            env={**self.env, "CHROOT": _chroot()},
            capture_output=True,
            text=True,
            timeout=120,
        )


def _chroot() -> str:
    found = shutil.which("chroot", path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert found, "chroot (coreutils) is missing"
    return found


def _mounted_under(folder: Path) -> list[str]:
    return [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(str(folder))
    ]


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """The image built into a throw-away buildah storage, and one container of it,
    mounted."""
    storage = Path(tempfile.mkdtemp(prefix="argosy-image-test-"))
    buildah = ["buildah", "--storage-driver", "vfs", "--root", f"{storage}/root"]
    buildah += ["--runroot", f"{storage}/run"]
    container = None
    try:
        built = subprocess.run(
            [str(ROOT / "scripts" / "image"), "build"],
            env={**os.environ, "ARGOSY_BUILDAH_ROOT": str(storage)},
            capture_output=True,
            text=True,
            timeout=540,
        )
        assert built.returncode == 0, f"scripts/image failed:\n{built.stderr[-4000:]}"
        tag = built.stdout.splitlines()[-1]
        inspected = json.loads(_ok(buildah + ["inspect", "--type", "image", tag]))
        container = _ok(buildah + ["from", tag]).strip()
        root = Path(_ok(buildah + ["mount", container]).strip())
        yield Image(tag, buildah, inspected["OCIv1"]["config"], root)
    finally:
        if container:
            subprocess.run(buildah + ["umount", container], capture_output=True)
            subprocess.run(buildah + ["rm", container], capture_output=True)
        left = _mounted_under(storage)
        assert not left, f"still mounted, {storage} kept: {left}"
        shutil.rmtree(storage, ignore_errors=True)


def _ok(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout


@pytest.fixture
def image_tmp() -> Iterator[Path]:
    """The host folder that is the image's /tmp (as an emptyDir would be). Made under
    the system's /tmp, not pytest's deeper folders: the plugin's socket goes in it, and a
    unix socket's whole path must fit in 107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="argosy-image-tmp-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_image_is_argos_plugin_by_default_and_runs_as_8737(image: Image) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image.tag == f"ghcr.io/argosy-project/argosy:{version}"
    assert image.config["Entrypoint"] == ["argosy", "plugin"]
    assert image.config["User"] == "8737:8737"
    assert image.config["Labels"]["org.opencontainers.image.version"] == version


def test_the_image_holds_exactly_the_modules_of_this_tree(image: Image) -> None:
    """Nothing stale from an earlier build (setuptools' build/ folder) ships in it."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = {
        f"{package.replace('.', '/')}/{module.name}"
        for package in setuptools["packages"]
        for module in (ROOT / setuptools["package-dir"][package]).glob("*.py")
    }
    site = image.root / "opt/argosy/lib/python3.11/site-packages"
    shipped = {str(p.relative_to(site)) for p in (site / "argosy").rglob("*.py")}
    assert shipped == expected


def test_only_tmp_is_writable_for_the_images_user(image: Image, image_tmp: Path) -> None:
    assert (image.root / "tmp").stat().st_mode & 0o7777 == 0o1777  # the image's own /tmp
    # every path the image's user may write, the kernel's own file systems aside
    writable = "find / ( -path /proc -o -path /dev -o -path /sys ) -prune -o -writable -print"
    done = image.run(image_tmp, *writable.split())
    assert done.stdout.split() == ["/tmp"], done.stderr


def test_every_command_and_storage_is_in_the_image(image: Image, image_tmp: Path) -> None:
    """The GC and the sidecar run from the same image: the k8s and oss extras are in."""
    done = image.run(image_tmp, "python3", "-c", "import grpc, kubernetes, oss2, botocore")
    assert done.returncode == 0, done.stderr
    done = image.run(image_tmp, "argosy", "gc", "--help")
    assert done.returncode == 0 and "--lease-namespace" in done.stdout, done.stderr


# Extracts /tmp/tree.tar.zst into /tmp/out in the image, counting the files handed to the
# file-making processes (which then make them) on the way.
_EXTRACT_COUNTING = """
from argosy.artifacts.archive import extract_tar, makers
handed = 0
real = makers.Makers.add
def add(self, *args, **kwargs):
    global handed
    handed += 1
    return real(self, *args, **kwargs)
makers.Makers.add = add
with open("/tmp/tree.tar.zst", "rb") as archive:
    extract_tar(iter(lambda: archive.read(1 << 20), b""), "/tmp/out")
print(handed)
"""


def test_the_images_python_runs_the_extractions_file_making_processes(
    image: Image, image_tmp: Path, tmp_path: Path
) -> None:
    """Past its first files an extraction hands small files to processes running the
    image's own interpreter (`python -I -S`) as the image's user."""
    tree = tmp_path / "tree"
    for n in range(extract_module.MAKERS_WAIT + 500):
        folder = tree / f"d{n % 7}" / f"e{n % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n}.txt").write_bytes(os.urandom(n % 2000))
        (folder / f"f{n}.txt").chmod((0o644, 0o755, 0o600)[n % 3])
    (image_tmp / "tree.tar.zst").write_bytes(b"".join(write_archive(tree, "tar.zst")))
    done = image.run(image_tmp, "python3", "-c", _EXTRACT_COUNTING)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 500  # handed over, and made
    assert snapshot(image_tmp / "out") == snapshot(tree)
    assert (image_tmp / "out" / "d6" / "e49").stat().st_uid == 8737
    assert done.stderr == ""  # no file-making process fell back or failed


@pytest.mark.rgw
def test_the_entrypoint_saves_and_loads_through_its_socket_as_argo_runs_it(
    image: Image, image_tmp: Path, rgw_storage: Storage, tmp_path: Path
) -> None:
    shutil.copytree(rgw_storage.secrets, image_tmp / "secrets")  # as a mounted Secret
    (image_tmp / "outputs").mkdir()
    (image_tmp / "inputs").mkdir()  # made by Argo's executor, which runs as 8737 too
    os.chown(image_tmp / "inputs", 8737, 8737)
    data = os.urandom(3 * MiB + 17)
    (image_tmp / "outputs" / "model.bin").write_bytes(data)
    log = tmp_path / "plugin.log"
    with open(log, "wb") as out:
        plugin = subprocess.Popen(
            image.command(image_tmp, *image.config["Entrypoint"], SOCKET),
            env={**image.env, "ARGOSY_SECRETS_DIR": "/tmp/secrets", "CHROOT": _chroot()},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "serving" not in log.read_text():
            assert plugin.poll() is None, f"the plugin exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"the plugin did not start: {log.read_text()}"
            time.sleep(0.05)
        socket = image_tmp / SOCKET.removeprefix("/tmp/")
        assert socket.is_socket()  # the plugin made its folder: Argo does not
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            stub = rpc.ArtifactServiceStub(channel)
            key = "runs/image/model.bin"
            saved = stub.Save(
                pb.SaveArtifactRequest(
                    path="/tmp/outputs/model.bin",
                    output_artifact=artifact(rgw_storage.configuration, key),
                ),
                timeout=120,
            )
            assert saved.success, saved.error
            assert rgw_storage.driver.stat(key).size == len(data)
            loaded = stub.Load(
                pb.LoadArtifactRequest(
                    input_artifact=artifact(rgw_storage.configuration, key),
                    path="/tmp/inputs/model.bin",
                ),
                timeout=120,
            )
            assert loaded.success, loaded.error
        got = image_tmp / "inputs" / "model.bin"
        assert got.read_bytes() == data
        assert got.stat().st_uid == 8737  # written by the image's user
        plugin.send_signal(signal.SIGTERM)
        assert plugin.wait(60) == 0, log.read_text()
        assert not socket.exists()
    finally:
        if plugin.poll() is None:
            plugin.kill()
            plugin.wait(30)
    secret = (rgw_storage.secrets / "rgw-creds" / "secretKey").read_text()
    assert secret not in log.read_text()
