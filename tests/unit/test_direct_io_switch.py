"""Downloads go through the page cache unless O_DIRECT is asked for: `--direct-io` on the
command line, or ARGOSY_DIRECT_IO in the environment (the sidecar's only way)."""

from __future__ import annotations

import argparse

import pytest

from argosy.artifacts.settings import TransferSettings
from argosy.commands.config import Config
from argosy.sidecar.context import transfer_settings


def _cli(direct_io: bool, env: dict[str, str]) -> TransferSettings:
    args = argparse.Namespace(part_size=None, concurrency=None, direct_io=direct_io)
    return Config(args=args, env=env).transfer()


def test_the_page_cache_is_the_default() -> None:
    assert not TransferSettings().direct_io
    assert not _cli(False, {}).direct_io
    assert not transfer_settings(2, {}).direct_io


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_the_environment_asks_for_o_direct_in_the_cli_and_the_sidecar(value: str) -> None:
    env = {"ARGOSY_DIRECT_IO": value}
    assert _cli(False, env).direct_io
    assert transfer_settings(2, env).direct_io


@pytest.mark.parametrize("value", ["", "0", "no", "false", "off"])
def test_anything_else_in_the_environment_leaves_it_off(value: str) -> None:
    assert not _cli(False, {"ARGOSY_DIRECT_IO": value}).direct_io


def test_the_flag_asks_for_o_direct() -> None:
    assert _cli(True, {}).direct_io
