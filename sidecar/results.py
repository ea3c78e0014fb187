"""What `init` and `wait` did with each artifact: the records written to the var dir
(`inputs.json`, `outputs.json`), reported to Kubernetes, and printed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InputResult:
    name: str
    status: str  # downloaded | missing-optional | failed
    path: str
    url: str = ""
    size: int = 0
    checksum: str | None = None
    archive: str = ""
    seconds: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class OutputResult:
    name: str
    status: str  # uploaded | skipped | missing-optional | failed
    path: str
    reason: str = ""
    url: str = ""
    location: Mapping[str, Any] = field(default_factory=dict)
    size: int = 0
    checksum: str | None = None
    archive: str = ""
    seconds: float = 0.0
