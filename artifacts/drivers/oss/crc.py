"""CRC-64/XZ, OSS's `x-oss-hash-crc64ecma`: the driver checks every byte it sends and
every whole object it reads with it. The only module that imports crcmod, whose C
extension is required (the pure-Python fallback runs at ~13 MB/s)."""

from __future__ import annotations

import importlib
from typing import Any

import crcmod

from argosy.artifacts.checksum import crc_combiner
from argosy.artifacts.errors import InvalidSpec

_CRC64_POLY = 0x142F0E1EBA9EA3693
_CRC64_REFLECTED = 0xC96C5795D7870F42
_MASK64 = (1 << 64) - 1
_crc64_fn: Any = crcmod.mkCrcFun(_CRC64_POLY, initCrc=0, xorOut=_MASK64, rev=True)


def crc_extension_loaded() -> bool:
    return bool(getattr(importlib.import_module("crcmod.crcmod"), "_usingExtension", False))


def require_crc_extension() -> None:
    if not crc_extension_loaded():
        raise InvalidSpec(
            "the OSS driver needs crcmod's C extension (CRC64 in pure Python runs at ~13 MB/s)"
            ": install a C compiler and Python headers (e.g. apt-get install gcc python3-dev), "
            "then pip install --force-reinstall --no-binary crcmod crcmod",
            code="CrcmodExtensionMissing",
        )


def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-64/XZ of `data` (OSS's x-oss-hash-crc64ecma), continuing from `crc`."""
    return int(_crc64_fn(data, crc))


# CRC64 of A+B from crc64(A), crc64(B) and len(B), by the storage core's combiner
# (oss2's own rebuilds its matrices every call, ~8 ms a part)
crc64_combine = crc_combiner(_CRC64_REFLECTED, 64)
