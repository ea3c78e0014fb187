"""`argosy demo`: the main job on the embedded default, with no outside server.

It starts an S3 server in this process (moto, on 127.0.0.1), then round-trips a file
(256 MiB by default) and a folder through it with Argosy's own transfer engine, and
reports what it measured: sizes, MiB/s, the checksums recorded on upload, verified on
download, and recomputed independently from the local bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import socket
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from argosy.artifacts import download, tree, upload
from argosy.artifacts.checksum import crc32c, to_hex
from argosy.artifacts.drivers.s3 import S3Driver, S3Settings
from argosy.artifacts.errors import LocalIOError
from argosy.artifacts.settings import MiB, TransferSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _file_crc(path: Path) -> str:
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * MiB):
            crc = crc32c(chunk, crc)
    return f"crc32c:{to_hex(crc)}"


def _make_tree(root: Path) -> int:
    """A small project-like folder: nested text files, one larger binary, an empty file."""
    count = 0
    for d in range(8):
        folder = root / f"part-{d}" / "data"
        folder.mkdir(parents=True)
        for f in range(25):
            (folder / f"rows-{f:03d}.csv").write_text(
                "".join(f"{d},{f},{i},{i * i % 97}\n" for i in range(200))
            )
            count += 1
    (root / "model.bin").write_bytes(os.urandom(12 * MiB))
    (root / "EMPTY").write_bytes(b"")
    return count + 2


def run(args: argparse.Namespace, env: Mapping[str, str], *, settings: TransferSettings) -> int:
    """The round trip, then the workflows (`workflows.run`); exit 0 when all held."""
    import logging

    from moto.server import ThreadedMotoServer

    from argosy.demo import workflows as workflow_demo

    # The workflows are read and checked first: one the engine would refuse stops the
    # demo before the round trip, a work folder or a pod folder is made.
    workflows = (
        None
        if getattr(args, "no_workflows", False)
        else workflow_demo.load(workflow_demo.workflow_files(args.workflow))
    )
    if args.workdir:
        try:
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LocalIOError(
                f"cannot create the work folder {args.workdir}: {error.strerror}"
            ) from None
    if getattr(args, "workflows_only", False):
        return workflow_demo.run(args, env, workflows=workflows)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    size_mib = args.size
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        driver = S3Driver(
            S3Settings(
                endpoint=f"http://127.0.0.1:{port}",
                region="us-east-1",
                access_key="demo",
                secret_key="demo-secret",
                addressing_style="path",
            ),
            "argosy-demo",
        )
        driver.create_bucket()
        with tempfile.TemporaryDirectory(dir=args.workdir, prefix="argosy-demo-") as tmp:
            work = Path(tmp)
            print(
                f"argosy demo: in-process S3 (moto) at http://127.0.0.1:{port}, "
                f"bucket argosy-demo, work folder {work}"
            )
            source = work / "input.bin"
            with open(source, "wb") as handle:
                for _ in range(size_mib):
                    handle.write(os.urandom(MiB))
            local_crc = _file_crc(source)

            t0 = time.monotonic()
            up = upload.upload_file(driver, "demo/input.bin", source, settings=settings)
            t_up = time.monotonic() - t0
            t0 = time.monotonic()
            back = work / "output.bin"
            down = download.download_file(driver, "demo/input.bin", back, settings=settings)
            t_down = time.monotonic() - t0
            same = filecmp.cmp(source, back, shallow=False)
            rows = [
                (
                    "file upload",
                    f"{up.size / MiB:.0f} MiB",
                    f"{up.parts} parts",
                    f"{up.size / MiB / t_up:.0f} MiB/s",
                    up.record.checksum if up.record else up.note,
                ),
                (
                    "file download",
                    f"{down.size / MiB:.0f} MiB",
                    "",
                    f"{down.size / MiB / t_down:.0f} MiB/s",
                    ("verified " if down.verified else "UNVERIFIED ") + down.checksum,
                ),
            ]

            folder = work / "folder"
            files = _make_tree(folder)
            t0 = time.monotonic()
            tup = tree.upload_tree(driver, "demo/folder/", folder, settings=settings)
            t_tup = time.monotonic() - t0
            t0 = time.monotonic()
            restored = work / "restored"
            tdown = tree.download_tree(driver, "demo/folder/", restored, settings=settings)
            t_tdown = time.monotonic() - t0
            compare = filecmp.dircmp(folder, restored)
            tree_same = _identical(compare)
            rows += [
                (
                    "folder upload",
                    f"{tup.bytes / MiB:.1f} MiB",
                    f"{tup.files} files",
                    f"{tup.files / t_tup:.0f} files/s",
                    f"{tup.verified} recorded",
                ),
                (
                    "folder download",
                    f"{tdown.bytes / MiB:.1f} MiB",
                    f"{tdown.files} files",
                    f"{tdown.files / t_tdown:.0f} files/s",
                    f"{tdown.verified} verified",
                ),
            ]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)))
        print(
            f"  local file checksum, computed independently: {local_crc} "
            f"({'matches' if local_crc == down.checksum else 'DIFFERS'}); "
            f"bytes identical: {same}"
        )
        print(f"  folder: {files} files written, restored tree identical: {tree_same}")
        print(
            "  (moto keeps objects in memory and copies the whole object for every ranged "
            "GET: its MiB/s are no benchmark; see bench/ for Ceph RGW figures)"
        )
        ok = (
            same
            and tree_same
            and down.verified
            and local_crc == down.checksum
            and tdown.verified == files
        )
        if not ok or getattr(args, "no_workflows", False):
            return 0 if ok else 1
    finally:
        server.stop()
    return workflow_demo.run(args, env, workflows=workflows)


def _identical(compare: filecmp.dircmp[str]) -> bool:
    if compare.left_only or compare.right_only or compare.diff_files or compare.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(
        compare.left, compare.right, compare.common_files, shallow=False
    )
    return not mismatch and not errors and all(_identical(s) for s in compare.subdirs.values())
