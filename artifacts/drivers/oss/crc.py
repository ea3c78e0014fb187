"""CRC-64/XZ, OSS's `x-oss-hash-crc64ecma`: the driver checks every byte it sends and
every whole object it reads with it. The only module that imports crcmod, whose C
extension is required (the pure-Python fallback runs at ~13 MB/s)."""

from __future__ import annotations

import functools
import importlib
from typing import Any

import crcmod

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
            code="CrcmodExtensionMissing")


def crc64(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-64/XZ of `data` (OSS's x-oss-hash-crc64ecma), continuing from `crc`."""
    return int(_crc64_fn(data, crc))


def _gf2_times(matrix: tuple[int, ...], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_then(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_gf2_times(second, column) for column in first)


@functools.lru_cache(maxsize=64)
def _zeros_pow2(exponent: int) -> tuple[int, ...]:
    """The operator appending 2**exponent zero bytes to a CRC64 register."""
    if exponent == 0:
        op = (_CRC64_REFLECTED,) + tuple(1 << n for n in range(63))  # one zero bit
        for _ in range(3):
            op = _gf2_then(op, op)
        return op
    half = _zeros_pow2(exponent - 1)
    return _gf2_then(half, half)


@functools.lru_cache(maxsize=128)
def _zeros(length: int) -> tuple[int, ...]:
    """The operator appending `length` zero bytes (cached: parts mostly share one size)."""
    op: tuple[int, ...] | None = None
    exponent = 0
    while length:
        if length & 1:
            op = _zeros_pow2(exponent) if op is None else _gf2_then(op, _zeros_pow2(exponent))
        length >>= 1
        exponent += 1
    assert op is not None
    return op


def crc64_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC64 of A+B from crc64(A), crc64(B) and len(B) (zlib's crc32_combine method;
    oss2's own combine rebuilds its matrices every call, ~8 ms a part)."""
    return crc1 if len2 <= 0 else _gf2_times(_zeros(len2), crc1) ^ crc2

