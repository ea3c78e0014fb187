"""CRC32C combination and the on-bucket record's rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from argosy.artifacts.checksum import combine_all, crc32c, crc32c_combine
from argosy.artifacts.record import Record, read_record


def test_crc32c_matches_the_standard_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


@given(st.lists(st.binary(max_size=3000), max_size=6))
def test_combining_part_crcs_equals_the_crc_of_the_whole(parts: list[bytes]) -> None:
    assert combine_all((crc32c(p), len(p)) for p in parts) == crc32c(b"".join(parts))


@given(st.binary(max_size=500), st.binary(max_size=500))
def test_combine_of_two_is_the_crc_of_their_concatenation(a: bytes, b: bytes) -> None:
    assert crc32c_combine(crc32c(a), crc32c(b), len(b)) == crc32c(a + b)


def test_a_record_round_trips_through_metadata() -> None:
    record = Record(crc=0xDEADBEEF, size=30, part_size=10, part_crcs=[1, 2, 3])
    verdict = read_record(record.to_metadata(), size=30)
    assert verdict.record == record


def test_missing_malformed_unknown_or_stale_records_are_unverified() -> None:
    good = Record(crc=1, size=30, part_size=10, part_crcs=[1, 2, 3]).to_metadata()
    assert "not written by Argosy" in read_record({}, size=30).reason
    assert "stale" in read_record(good, size=31).reason
    assert "unknown record format" in read_record({**good, "argosy-format": "9"}, size=30).reason
    assert (
        "malformed" in read_record({**good, "argosy-checksum": "crc32c:zzzzzzzz"}, size=30).reason
    )
    assert "unsupported" in read_record({**good, "argosy-checksum": "md5:abc"}, size=30).reason
    for meta in ({}, {**good, "argosy-format": "9"}):
        assert read_record(meta, size=30).record is None


def test_a_part_list_that_does_not_fit_the_size_is_ignored_not_trusted() -> None:
    meta = Record(crc=1, size=30, part_size=10, part_crcs=[1, 2]).to_metadata()
    verdict = read_record(meta, size=30)
    assert verdict.record is not None and verdict.record.part_crcs is None


def test_a_huge_part_list_is_left_out_of_the_metadata() -> None:
    meta = Record(crc=1, size=5000, part_size=1, part_crcs=list(range(5000))).to_metadata()
    assert "argosy-parts" not in meta and "argosy-checksum" in meta


def test_the_cached_combiner_stays_right_across_part_sizes_it_has_seen_before() -> None:
    import os

    data = os.urandom((5 << 20) + 3)
    for cut in (1, 4096, 1 << 20, (5 << 20) - 1, 1, 4096):  # repeats hit the cache
        a, b = data[:cut], data[cut:]
        assert crc32c_combine(crc32c(a), crc32c(b), len(b)) == crc32c(data)
