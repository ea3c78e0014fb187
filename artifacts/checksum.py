"""CRC32C, computed natively and combinable across parts.

Parts are checksummed independently (in parallel, in the same pass that moves their
bytes) and their CRCs are combined into the whole object's CRC without reading the
bytes again. The `crc32c` package uses the CPU's CRC32 instruction (13 GB/s here),
takes any buffer (memoryviews of bytearrays included) and releases the GIL on large
buffers; the combination is zlib's crc32_combine algorithm over GF(2) for the
Castagnoli polynomial.
"""

from __future__ import annotations

from collections.abc import Iterable

import crc32c as _native

ALGORITHM = "crc32c"
_POLY = 0x82F63B78  # reflected Castagnoli


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of `data`, continuing from `crc`."""
    return int(_native.crc32c(data, crc))


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    i = 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC of A+B given crc(A), crc(B) and len(B)."""
    if len2 <= 0:
        return crc1
    odd = [_POLY] + [1 << n for n in range(31)]  # operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def combine_all(parts: Iterable[tuple[int, int]]) -> int:
    """The CRC of the concatenation of parts given as (crc, length) in order."""
    total = 0
    for crc, length in parts:
        total = crc32c_combine(total, crc, length)
    return total


def to_hex(crc: int) -> str:
    return f"{crc:08x}"
