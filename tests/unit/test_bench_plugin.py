"""bench/plugin.py's client never times a failed stream as a fast one, and its report holds
each case to its target against the right peer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from argosy.plugin import artifact_pb2 as pb
from bench import plugin_calls, plugin_report
from bench.plugin_calls import CallFailed
from bench.plugin_report import Run

MiB = 1 << 20


class FakeStub:
    """OpenStream answers these frames, whatever is asked."""

    def __init__(self, *frames: pb.OpenStreamResponse) -> None:
        self.frames = frames

    def OpenStream(self, request: Any, timeout: float) -> Iterator[pb.OpenStreamResponse]:  # noqa: N802
        return iter(self.frames)


def test_a_stream_is_counted_only_when_it_says_is_end() -> None:
    ok = FakeStub(pb.OpenStreamResponse(data=b"abc"), pb.OpenStreamResponse(is_end=True))
    assert plugin_calls.open_stream(ok, "", "k", 5) == 3
    cut = FakeStub(pb.OpenStreamResponse(data=b"abc"))
    with pytest.raises(CallFailed, match="without is_end after 3 B"):
        plugin_calls.open_stream(cut, "", "k", 5)


def test_a_stream_that_ends_in_an_error_frame_or_goes_on_after_is_end_fails() -> None:
    broken = FakeStub(pb.OpenStreamResponse(data=b"ab"), pb.OpenStreamResponse(error="x: boom"))
    with pytest.raises(CallFailed, match="x: boom"):
        plugin_calls.open_stream(broken, "", "k", 5)
    late = FakeStub(pb.OpenStreamResponse(is_end=True), pb.OpenStreamResponse(data=b"a"))
    with pytest.raises(CallFailed, match="after is_end"):
        plugin_calls.open_stream(late, "", "k", 5)


def test_the_raw_server_streams_the_bytes_its_key_asks_for_over_a_unix_socket(
    tmp_path: Path,
) -> None:
    raw = plugin_calls.start_raw(tmp_path / "raw.sock", tmp_path / "raw.log")
    try:
        assert plugin_calls.open_stream(raw.stub, "", str(5 * MiB + 3), 60) == 5 * MiB + 3
    finally:
        raw.stop()
    assert raw.process.returncode == 0


def run(case: str, rate: float, *, rss_mib: float = 50, round_: int = 0) -> Run:
    """A run of `rate` (MiB/s, files/s or objects/s, as the case counts) taking 1 s."""
    unit = plugin_report.CASES[case][1]
    amount = int(rate * MiB) if unit == "MiB/s" else int(rate)
    return Run(case, round_, amount, 1.0, int(rss_mib * MiB), 0, 1.0, 0.0, 1.0, 0.0, "", "")


META: dict[str, Any] = {
    "size_mib": 1024,
    "corpus_files": 20000,
    "corpus_bytes": 275 * MiB,
    "delay_ms": 20,
    "sample_files": 2000,
    "rounds": 1,
    "seed": 7,
    "raw_factor": 1.25,
}


def good_runs() -> list[Run]:
    return [
        run("save:plugin", 100),
        run("save:cp", 100),
        run("load:plugin", 100),
        run("load:cp", 100),
        run("stream:plugin", 80),
        run("stream:cat", 100),
        run("stream:raw", 1000),
        run("savestream:plugin", 80),
        run("savestream:cp", 100),
        run("folder:plugin", 800),
        run("folder:s5cmd", 1000),
        run("delete:plugin", 1000),
        run("delete:argo", 100),
    ]


def test_every_case_at_its_target_is_met() -> None:
    runs = good_runs()
    meta = {**META, "open_stream_peer": plugin_report.stream_peer(runs, 1.25)}
    found = plugin_report.verdicts(runs, meta)
    assert [round(v.ratio, 2) for v in found] == [1.0, 1.0, 0.8, 0.8, 0.8, 10.0]
    assert all(v.met for v in found)
    assert "MISSED" not in plugin_report.table(runs, meta)


def test_a_case_under_its_target_and_a_call_over_200_mib_are_missed() -> None:
    runs = [r for r in good_runs() if r.case != "save:plugin"]
    runs.append(run("save:plugin", 94, rss_mib=210))
    meta = {**META, "open_stream_peer": "stream:cat"}
    save = plugin_report.verdicts(runs, meta)[0]
    assert save.ratio == pytest.approx(0.94, abs=0.01) and not save.met
    lines = plugin_report.table(runs, meta).splitlines()
    assert any(line.startswith("| Save, 1 GiB file") and "| MISSED |" in line for line in lines)
    assert any(line.startswith("| plugin peak RSS") and "| MISSED |" in line for line in lines)


def test_open_stream_is_held_to_the_raw_rate_when_grpcio_is_not_well_above_argosy_cat() -> None:
    runs = [r for r in good_runs() if r.case != "stream:raw"] + [run("stream:raw", 120)]
    assert plugin_report.stream_peer(runs, 1.25) == "stream:raw"
    assert plugin_report.stream_peer(good_runs(), 1.25) == "stream:cat"
    meta = {**META, "open_stream_peer": "stream:raw"}
    stream = plugin_report.verdicts(runs, meta)[2]
    assert stream.row.peer == "stream:raw" and stream.ratio == pytest.approx(80 / 120, abs=0.01)
    assert "NOT with argosy cat" in plugin_report.table(runs, meta)


def test_a_ratio_just_under_its_target_is_not_printed_as_the_target() -> None:
    runs = [r for r in good_runs() if r.case != "save:plugin"] + [run("save:plugin", 94.9)]
    meta = {**META, "open_stream_peer": "stream:cat"}
    lines = plugin_report.table(runs, meta).splitlines()
    save = next(line for line in lines if line.startswith("| Save, 1 GiB file"))
    assert "| 0.949x | >= 0.95x | MISSED |" in save
