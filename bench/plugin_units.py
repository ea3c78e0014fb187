"""The units of bench/plugin.py: each times one plugin call (or a pair that must run
together) or its peer, and checks what it did; the round order shuffles them.

Why a module: each unit is the exact pairing the benchmark promises (a plugin call and
the command it is held against, on the same file, object or folder), kept apart from the
set-up and the report.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import files, peers, plugin_calls
from bench.plugin_measure import (
    Ctx,
    counted,
    fail,
    gone,
    keep,
    keys,
    listed,
    loaded,
    process,
    stored,
    timed,
    tool_env,
)
from bench.plugin_report import Run

ARGOSY = str(peers.VENV_BIN / "argosy")
SOURCE_KEY = "source/random.bin"  # in the source bucket: the object the read cases read


# ------------------------------------------------------------------ the units


def unit_save(ctx: Ctx, r: int) -> None:
    key = f"save-plugin/r{r}/random.bin"
    run = timed(
        ctx,
        "save:plugin",
        r,
        ctx.size,
        lambda: plugin_calls.save(ctx.stub, ctx.write_conf, key, ctx.file, ctx.timeout),
        server=ctx.plugin,
    )
    if run and stored(ctx, run, key):
        keep(ctx, run)


def unit_cp_up(ctx: Ctx, r: int) -> None:
    key = f"save-cp/r{r}/random.bin"
    cmd = [ARGOSY, "cp", "-q", str(ctx.file), ctx.url(key)]
    run = process(ctx, "save:cp", r, ctx.size, cmd, timeout=ctx.timeout)
    if run and stored(ctx, run, key):
        keep(ctx, run)


def unit_load(ctx: Ctx, r: int) -> None:
    out = ctx.work / "down" / f"load-plugin-r{r}.bin"
    try:
        run = timed(
            ctx,
            "load:plugin",
            r,
            ctx.size,
            lambda: plugin_calls.load(ctx.stub, ctx.read_conf, SOURCE_KEY, out, ctx.timeout),
            server=ctx.plugin,
        )
        if run and loaded(ctx, run, out):
            keep(ctx, run)
    finally:
        files.remove(out)


def unit_cp_down(ctx: Ctx, r: int) -> None:
    out = ctx.work / "down" / f"load-cp-r{r}.bin"
    try:
        cmd = [ARGOSY, "cp", "-q", ctx.url(SOURCE_KEY, ctx.source_bucket), str(out)]
        run = process(ctx, "load:cp", r, ctx.size, cmd, timeout=ctx.timeout)
        if run and loaded(ctx, run, out):
            keep(ctx, run)
    finally:
        files.remove(out)


def streamed(
    ctx: Ctx, case: str, r: int, server: plugin_calls.Server, config: str, key: str
) -> Run | None:
    """Time one OpenStream whose bytes the client drops, and count them."""
    received: list[int] = []

    def call() -> None:
        received.append(plugin_calls.open_stream(server.stub, config, key, ctx.timeout))

    run = timed(ctx, case, r, ctx.size, call, server=server)
    return run if run and counted(ctx, run, received) else None


def unit_stream(ctx: Ctx, r: int) -> None:
    run = streamed(ctx, "stream:plugin", r, ctx.plugin, ctx.read_conf, SOURCE_KEY)
    if run:
        run.verified += " (the plugin checks the CRC32C)"
        keep(ctx, run)


def unit_cat(ctx: Ctx, r: int) -> None:
    cmd = [ARGOSY, "cat", "-q", ctx.url(SOURCE_KEY, ctx.source_bucket)]
    run = process(ctx, "stream:cat", r, ctx.size, cmd, timeout=ctx.timeout, stdout=Path(os.devnull))
    if run:
        run.verified = "exit 0 (argosy cat checks the CRC32C)"
        keep(ctx, run)


def unit_save_stream(ctx: Ctx, r: int) -> None:
    key = f"savestream-plugin/r{r}/random.bin"
    run = timed(
        ctx,
        "savestream:plugin",
        r,
        ctx.size,
        lambda: plugin_calls.save_stream(ctx.stub, ctx.write_conf, key, ctx.file, ctx.timeout),
        server=ctx.plugin,
    )
    if run and stored(ctx, run, key):
        keep(ctx, run)


def unit_cp_stdin(ctx: Ctx, r: int) -> None:
    key = f"savestream-cp/r{r}/random.bin"
    cmd = [ARGOSY, "cp", "-q", "-", ctx.url(key)]
    run = process(ctx, "savestream:cp", r, ctx.size, cmd, timeout=ctx.timeout, stdin=ctx.file)
    if run and stored(ctx, run, key):
        keep(ctx, run)


def unit_folder(ctx: Ctx, r: int) -> None:
    """Save the corpus, then Delete it through the proxy: the delete needs the save's
    objects, so the two are one unit."""
    key = f"folder-plugin/r{r}"
    up = timed(
        ctx,
        "folder:plugin",
        r,
        ctx.tree.files,
        lambda: plugin_calls.save(ctx.stub, ctx.write_conf, key, ctx.root, ctx.folder_timeout),
        server=ctx.plugin,
    )
    if up is None or not listed(ctx, up, key + "/", ctx.root):
        return
    keep(ctx, up)
    down = timed(
        ctx,
        "delete:plugin",
        r,
        ctx.tree.files,
        lambda: plugin_calls.delete(ctx.stub, ctx.proxied_conf, key, ctx.folder_timeout),
        server=ctx.plugin,
        proxied=True,
    )
    if down and gone(ctx, down, key + "/"):
        keep(ctx, down)


def _s5cmd(ctx: Ctx, source: Path, prefix: str) -> list[str]:
    return [
        str(peers.s5cmd_binary()),
        "--endpoint-url",
        ctx.gateway.endpoint,
        "cp",
        f"{source}/*",
        ctx.url(prefix),
    ]


def unit_s5cmd(ctx: Ctx, r: int) -> None:
    prefix = f"folder-s5cmd/r{r}/"
    cmd = _s5cmd(ctx, ctx.root, prefix)
    run = process(ctx, "folder:s5cmd", r, ctx.tree.files, cmd, timeout=ctx.folder_timeout)
    if run and listed(ctx, run, prefix, ctx.root):
        keep(ctx, run)


def argo_delete(ctx: Ctx, prefix: str) -> None:
    """Argo's GC pod deleting a folder artifact: list it, then one DeleteObject per key,
    in sequence (minio-go's RemoveObject in `workflow/artifacts/s3`)."""
    s3 = ctx.argo_client
    found = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ctx.bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    for key in found:
        s3.delete_object(Bucket=ctx.bucket, Key=key)


def unit_argo_delete(ctx: Ctx, r: int) -> None:
    """Write the sample (s5cmd, straight to RGW, not timed), then delete it Argo's way
    through the proxy (timed)."""
    prefix = f"delete-argo/r{r}/"
    done = subprocess.run(
        _s5cmd(ctx, ctx.sample, prefix),
        env=tool_env(ctx),
        capture_output=True,
        text=True,
        timeout=ctx.folder_timeout,
        check=False,
    )
    if done.returncode != 0:
        fail(ctx, "delete:argo", r, f"writing the sample failed: {done.stderr.strip()[-500:]}")
        return
    count = len(keys(ctx.admin, ctx.bucket, prefix))
    if count != ctx.sample_tree.files:
        fail(
            ctx, "delete:argo", r, f"the sample holds {count} objects, not {ctx.sample_tree.files}"
        )
        return
    run = timed(
        ctx, "delete:argo", r, count, lambda: argo_delete(ctx, prefix), server=None, proxied=True
    )
    if run and gone(ctx, run, prefix):
        keep(ctx, run)


@dataclass(frozen=True)
class Unit:
    name: str
    run: Callable[[Ctx, int], None]


UNITS: tuple[Unit, ...] = (
    Unit("plugin Save", unit_save),
    Unit("argosy cp up", unit_cp_up),
    Unit("plugin Load", unit_load),
    Unit("argosy cp down", unit_cp_down),
    Unit("plugin OpenStream", unit_stream),
    Unit("argosy cat", unit_cat),
    Unit("plugin SaveStream", unit_save_stream),
    Unit("argosy cp -", unit_cp_stdin),
    Unit("plugin folder Save + Delete", unit_folder),
    Unit("s5cmd cp folder", unit_s5cmd),
    Unit("Argo's deletes", unit_argo_delete),
)


def raw_rate(ctx: Ctx, rounds: int) -> None:
    """grpcio alone, before the rounds (RGW idle): the ceiling of any OpenStream here. The
    raw server reads the key as the number of bytes to send."""
    raw = plugin_calls.start_raw(ctx.work / "raw.sock", ctx.work / "raw.log")
    try:
        for r in range(rounds):
            run = streamed(ctx, "stream:raw", r, raw, "", str(ctx.size))
            if run:
                keep(ctx, run)
    finally:
        raw.stop()
