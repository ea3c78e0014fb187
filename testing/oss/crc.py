"""CRC-64/XZ (ECMA-182) as Alibaba OSS computes it for ``x-oss-hash-crc64ecma``.

The OSS test server must hand out the same CRC64 that real OSS does, because
oss2 (with ``enable_crc=True``) compares it with its own.  The value is
CRC-64/XZ: the ECMA-182 polynomial, reflected, all-ones init and xor-out; with
``crcmod`` that is ``mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=~0,
rev=True)``, exactly what ``oss2.utils.Crc64`` builds (check value of
``b"123456789"`` is ``0x995DC9BBDF1939FA``).

A multipart object's CRC is the CRC of its whole content.  Rather than reading
a multi-GiB object again at CompleteMultipartUpload, the server combines the
part CRCs with the zlib ``crc32_combine`` construction (GF(2) matrices that
append ``n`` zero bytes), implemented here independently of oss2 so that the
server does not share code with the client it checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import crcmod

CRC64_POLY = 0x142F0E1EBA9EA3693
_POLY_REFLECTED = 0xC96C5795D7870F42
_MASK = (1 << 64) - 1

crc64: Callable[..., int] = crcmod.mkCrcFun(CRC64_POLY, initCrc=0, xorOut=_MASK, rev=True)
"""``crc64(data, previous_crc=0) -> int``; pass the previous result to continue a stream."""


def _times(matrix: tuple[int, ...], vector: int) -> int:
    total = 0
    index = 0
    while vector:
        if vector & 1:
            total ^= matrix[index]
        vector >>= 1
        index += 1
    return total


def _multiply(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The operator 'apply b, then a'."""
    return tuple(_times(a, column) for column in b)


@functools.lru_cache(maxsize=64)
def _zero_bytes_power(exponent: int) -> tuple[int, ...]:
    """Operator appending ``2**exponent`` zero bytes to a raw CRC register."""
    if exponent == 0:
        one_bit = (_POLY_REFLECTED,) + tuple(1 << n for n in range(63))
        operator = one_bit
        for _ in range(3):  # 1 bit -> 2 -> 4 -> 8 bits = one byte
            operator = _multiply(operator, operator)
        return operator
    half = _zero_bytes_power(exponent - 1)
    return _multiply(half, half)


@functools.lru_cache(maxsize=256)
def _zero_bytes_operator(length: int) -> tuple[int, ...]:
    """Operator appending ``length`` zero bytes (cached: most parts share a size)."""
    operator: tuple[int, ...] | None = None
    exponent = 0
    while length:
        if length & 1:
            power = _zero_bytes_power(exponent)
            operator = power if operator is None else _multiply(power, operator)
        length >>= 1
        exponent += 1
    assert operator is not None
    return operator


def crc64_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC of ``A + B`` from ``crc64(A)``, ``crc64(B)`` and ``len(B)``."""
    if length2 == 0:
        return crc1
    return _times(_zero_bytes_operator(length2), crc1) ^ crc2


def crc64_of_parts(parts: Iterable[tuple[int, int]]) -> int:
    """Combine ``(crc, size)`` pairs, in order, into the CRC of the concatenation."""
    total = 0
    for part_crc, size in parts:
        total = crc64_combine(total, part_crc, size)
    return total
