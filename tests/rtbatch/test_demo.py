"""The demo data (the sandbox org as both sources, no network) shows every injected disagreement."""

from __future__ import annotations

import pandas as pd
import pytest

from recon_core.rtbatch.demo import load_demo_rt_batch
from recon_core.rtbatch.engine import RtBatchResult, RtBatchSettings
from recon_core.rtbatch.reports import write_rt_batch_reports
from recon_core.rtbatch.run import reconcile_frames


@pytest.fixture(scope="module")
def demo_result() -> tuple[object, RtBatchResult]:
    demo = load_demo_rt_batch(conversations_per_day=200)
    result = reconcile_frames(demo.realtime, demo.batch, RtBatchSettings(as_of=demo.as_of),
                              pending_intervals=demo.pending_intervals, batch_complete_until=demo.batch_complete_until)
    return demo, result


def test_boundary_shifts_are_found_where_they_were_injected(demo_result: tuple) -> None:
    demo, result = demo_result
    v = result.variances
    shifts = [t for t in demo.ground_truth if t["kind"] == "boundary_shift"]
    assert shifts
    for shift in shifts:
        hour = pd.Timestamp(shift["realtimeEnd"])
        rows = v[(v["queue_id"] == shift["queueId"]) & (v["metric"] == "tHandle")
                 & v["interval_start"].isin([hour - pd.Timedelta(minutes=30), hour])]
        assert len(rows) == 2
        assert rows["likely_cause"].fillna("").str.startswith("boundary shift").all(), rows.to_dict("records")


def test_the_unmapped_custom_presence_is_on_the_review_list(demo_result: tuple) -> None:
    demo, result = demo_result
    (unmapped,) = [t for t in demo.ground_truth if t["kind"] == "unmapped_custom_status"]
    assert result.unmapped_statuses["realtime_status"].tolist() == [unmapped["presenceId"]]
    assert (result.variances["status"] == "UNMAPPED").any()


def test_late_batch_intervals_and_the_buffer_are_pending(demo_result: tuple) -> None:
    demo, result = demo_result
    v = result.variances
    pending_starts = set(v.loc[v["status"] == "PENDING", "interval_start"])
    late = {pd.Timestamp(p) for p in demo.pending_intervals}
    assert late and late <= pending_starts
    inside_buffer = {s for s in v["interval_start"].unique() if s + pd.Timedelta(minutes=90) > demo.as_of}
    assert inside_buffer <= pending_starts
    assert result.checkpoint is not None and pd.Timestamp(result.checkpoint) == min(late)


def test_demo_writes_the_same_four_files(demo_result: tuple, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, result = demo_result
    paths = write_rt_batch_reports(result, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths.values())
