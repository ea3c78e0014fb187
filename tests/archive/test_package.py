"""The archive package loads its modules on first use, and offers every name it lists."""

from __future__ import annotations

import importlib
import subprocess
import sys

from argosy.artifacts import archive


def test_every_listed_name_resolves_to_its_modules_own_object() -> None:
    assert set(archive.__all__) == set(archive._WHERE)
    for name, module in archive._WHERE.items():
        own = getattr(importlib.import_module(f"argosy.artifacts.archive.{module}"), name)
        assert getattr(archive, name) is own


def test_writing_an_archive_loads_neither_the_readers_nor_the_extractor() -> None:
    code = (
        "import sys; from argosy.artifacts import archive; archive.write_archive; "
        "print(sorted(m for m in sys.modules if m.startswith('argosy.artifacts.archive.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "formats" in loaded and "tarwriter" in loaded
    assert "extract" not in loaded and "tarreader" not in loaded and "zipreader" not in loaded
