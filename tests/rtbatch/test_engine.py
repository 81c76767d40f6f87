"""The comparison rules, table by table: tolerance kinds, zeros, the buffer, boundary shifts, statuses."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from rt_helpers import at, compare, row, tidy

from recon_core.errors import SettingsError
from recon_core.rtbatch.engine import RtBatchSettings, validate_settings
from recon_core.rtbatch.metrics import MetricPolicy, StatusMap, Tolerance
from recon_core.rtbatch.run import reconcile_frames

# metric, real-time, batch, expected status, expected threshold, threshold kind
POLICY_CASES = [
    ("nOffered", 1000, 1001, "OK", 2.0, "absolute"),          # counts: max(2, 0.1 %)
    ("nOffered", 1000, 1003, "MISMATCH", 2.0, "absolute"),
    ("nOffered", 5000, 5004, "OK", 5.004, "percent"),         # 0.1 % of 5004 beats 2
    ("nOffered", 5000, 5006, "MISMATCH", 5.006, "percent"),
    ("nHandled", 40, 42, "OK", 2.0, "absolute"),
    ("tHandle", 1000, 1049, "OK", 52.45, "percent"),          # durations: 5 %
    ("tHandle", 1000, 1060, "MISMATCH", 53.0, "percent"),
    ("AHT", 300, 314, "OK", 15.7, "percent"),                 # averages: 5 %
    ("AHT", 300, 320, "MISMATCH", 16.0, "percent"),
    ("oServiceLevel", 80, 81.9, "OK", 2.0, "points"),         # ratios: 2 percentage points
    ("oServiceLevel", 80, 82.5, "MISMATCH", 2.0, "points"),
    ("oWaiting", 3, 5, "OK", 2.0, "absolute"),                # current state, when the batch has it
    ("oWaiting", 3, 6, "MISMATCH", 2.0, "absolute"),
    ("tAgentRoutingStatus:IDLE", 1800, 1700, "MISMATCH", 85.0, "percent"),
    ("tAgentRoutingStatus:IDLE", 1780, 1700, "OK", 85.0, "percent"),
]


@pytest.mark.parametrize(("metric", "rt", "batch", "expected", "threshold", "kind"), POLICY_CASES)
def test_every_policy_kind_has_its_default_tolerance(metric: str, rt: float, batch: float, expected: str,
                                                     threshold: float, kind: str) -> None:
    result = compare([("10:00", metric, rt)], [("10:00", metric, batch)])
    got = row(result, "10:00", metric)
    assert got["status"] == expected
    assert got["threshold"] == pytest.approx(threshold)
    assert got["threshold_kind"] == kind
    assert got["abs_variance"] == pytest.approx(abs(rt - batch))
    assert got["variance_percent"] == pytest.approx((rt - batch) / batch * 100)


@pytest.mark.parametrize(("override", "expected"), [
    (Tolerance(absolute=1.0, percent=10.0), "OK"),
    (Tolerance(absolute=1.0, percent=5.0), "MISMATCH"),
    (Tolerance(absolute=25.0, percent=0.0), "OK"),
])
def test_an_edited_tolerance_replaces_the_default(override: Tolerance, expected: str) -> None:
    policy = MetricPolicy().with_tolerance("AHT", override)
    result = compare([("10:00", "AHT", 300)], [("10:00", "AHT", 320)], policy=policy)
    assert row(result, "10:00", "AHT")["status"] == expected


# metric, real-time (None = no value), batch, expected status, threshold, variance_percent (None = undefined)
ZERO_CASES = [
    ("nOffered", 0, 0, "OK", 2.0, None),
    ("tHandle", 0, 0, "OK", 1.0, None),
    ("tHandle", math.nan, math.nan, "OK", 1.0, None),   # both absent
    ("nOffered", 0, 2, "OK", 2.0, -100.0),              # one side zero: the absolute rule only
    ("nOffered", 0, 3, "MISMATCH", 2.0, -100.0),
    ("tHandle", 0, 0.8, "OK", 1.0, -100.0),
    ("tHandle", 0, 30, "MISMATCH", 1.0, -100.0),        # 5 % of 30 would be 1.5: the absolute rule applies
    ("tHandle", 30, 0, "MISMATCH", 1.0, None),
    ("oServiceLevel", 0, 1.5, "OK", 2.0, -100.0),
]


@pytest.mark.parametrize(("metric", "rt", "batch", "expected", "threshold", "percent"), ZERO_CASES)
def test_zero_and_absent_values(metric: str, rt: float, batch: float, expected: str, threshold: float,
                                percent: float | None) -> None:
    result = compare([("10:00", metric, rt)], [("10:00", metric, batch)])
    got = row(result, "10:00", metric)
    assert got["status"] == expected
    assert got["threshold"] == pytest.approx(threshold)
    if percent is None:
        assert pd.isna(got["variance_percent"])
    else:
        assert got["variance_percent"] == pytest.approx(percent)


def test_a_value_missing_on_one_side_counts_as_zero_and_says_so() -> None:
    result = compare([("10:00", "nOffered", 10)], [("10:00", "nOffered", 10), ("10:00", "nAbandoned", 4)])
    got = row(result, "10:00", "nAbandoned")
    assert got["status"] == "MISMATCH" and pd.isna(got["rt_value"]) and got["batch_value"] == 4
    assert "no real-time value" in got["likely_cause"]


# as_of, buffer minutes, expected status of the 10:00-10:30 interval (values disagree)
BUFFER_CASES = [
    ("10:45", 60, "PENDING"),
    ("11:29", 60, "PENDING"),
    ("11:30", 60, "MISMATCH"),
    ("12:00", 60, "MISMATCH"),
    ("10:30", 0, "MISMATCH"),
    ("10:59", 30, "PENDING"),
    ("11:00", 30, "MISMATCH"),
]


@pytest.mark.parametrize(("as_of", "buffer", "expected"), BUFFER_CASES)
def test_inside_the_buffer_an_interval_is_pending_never_a_mismatch(as_of: str, buffer: int, expected: str) -> None:
    result = compare([("10:00", "nOffered", 10)], [("10:00", "nOffered", 30)], as_of=as_of, buffer_minutes=buffer)
    got = row(result, "10:00", "nOffered")
    assert got["status"] == expected
    if expected == "PENDING":
        assert "not final before 2026-10-05T" in got["likely_cause"]
        assert not result.alerts


@pytest.mark.parametrize(("pending", "complete_until", "expected"), [
    (("10:00",), None, "PENDING"),        # the batch API kept answering 409/503
    ((), "10:15", "PENDING"),             # the batch source confirms data only up to 10:15
    ((), "10:30", "MISMATCH"),
    (("10:30",), None, "MISMATCH"),       # another interval pending does not hold this one back
])
def test_the_batch_source_must_confirm_completion(pending: tuple[str, ...], complete_until: str | None,
                                                  expected: str) -> None:
    rt = [("10:00", "nOffered", 10), ("10:30", "nOffered", 1)]
    batch = [("10:00", "nOffered", 30), ("10:30", "nOffered", 1)]
    result = compare(rt, batch, pending=pending, complete_until=complete_until)
    assert row(result, "10:00", "nOffered")["status"] == expected


def test_intervals_outside_the_batch_data_are_pending() -> None:
    result = compare([("10:00", "nOffered", 5), ("10:30", "nOffered", 7)], [("10:00", "nOffered", 5)])
    got = row(result, "10:30", "nOffered")
    assert got["status"] == "PENDING" and "does not cover" in got["likely_cause"]
    assert result.checkpoint == at("10:30")


def test_averages_are_derived_from_sums_and_counts_not_averaged() -> None:
    # AHT = tHandle.sum / tHandle.count on each side; 15-minute parts are added before dividing
    # (averaging the two 15-minute AHTs, 300 and 300, would hide nothing here, but 600/2 and 300/1
    # averaged would give 300 only by luck: the check is on the derived value and its components).
    rt = tidy([("10:00", "tHandle", 700), ("10:00", "nHandled", 2), ("10:15", "tHandle", 200),
               ("10:15", "nHandled", 1)], minutes=15)
    batch = tidy([("10:00", "tHandle", 900), ("10:00", "nHandled", 3)], minutes=30)
    result = reconcile_frames(rt, batch, RtBatchSettings(as_of=at("23:00")))
    got = row(result, "10:00", "AHT")
    assert got["rt_value"] == pytest.approx(300.0) and got["batch_value"] == pytest.approx(300.0)
    assert got["status"] == "OK"
    assert row(result, "10:00", "nHandled")["rt_value"] == 3


def test_a_source_interval_longer_than_the_granularity_is_left_out_with_a_note() -> None:
    rt = tidy([("10:00", "nOffered", 10)], minutes=60)
    batch = tidy([("10:00", "nOffered", 10)], minutes=30)
    result = reconcile_frames(rt, batch, RtBatchSettings(as_of=at("23:00")))
    assert "longer than PT30M" in result.summary["notes"][0]
    assert row(result, "10:00", "nOffered")["status"] == "MISMATCH"  # real time has no 30-minute value


# --- boundary shift -------------------------------------------------------------------------


def test_a_call_counted_in_the_adjacent_interval_is_a_boundary_shift() -> None:
    # One 100-second call ends at 10:29:59 in the batch and at 10:30:00 in real time.
    rt = [("10:00", "tHandle", 500), ("10:00", "nHandled", 4), ("10:30", "tHandle", 400), ("10:30", "nHandled", 3)]
    batch = [("10:00", "tHandle", 600), ("10:00", "nHandled", 5), ("10:30", "tHandle", 300), ("10:30", "nHandled", 2)]
    result = compare(rt, batch)
    for hhmm, word in (("10:00", "next"), ("10:30", "previous")):
        got = row(result, hhmm, "tHandle")
        assert got["status"] == "MISMATCH"
        assert got["likely_cause"].startswith(f"boundary shift: with the {word} interval")
        assert "10:30:00 boundary" in got["likely_cause"]
    assert result.summary["boundary_shifts"] >= 2


@pytest.mark.parametrize(("rt", "batch"), [
    # the neighbour agrees on its own: a genuine difference, not a shift
    ([("10:00", "tHandle", 500), ("10:30", "tHandle", 300)], [("10:00", "tHandle", 600), ("10:30", "tHandle", 300)]),
    # the sums over both intervals still disagree
    ([("10:00", "tHandle", 500), ("10:30", "tHandle", 900)], [("10:00", "tHandle", 600), ("10:30", "tHandle", 300)]),
])
def test_no_boundary_shift_without_agreement_over_two_intervals(rt: list, batch: list) -> None:
    got = row(compare(rt, batch), "10:00", "tHandle")
    assert got["status"] == "MISMATCH"
    assert not str(got["likely_cause"] or "").startswith("boundary shift")


def test_no_boundary_shift_is_claimed_against_a_pending_neighbour() -> None:
    rt = [("10:00", "tHandle", 500), ("10:30", "tHandle", 400)]
    batch = [("10:00", "tHandle", 600), ("10:30", "tHandle", 300)]
    got = row(compare(rt, batch, as_of="11:45"), "10:00", "tHandle")  # 10:30 is still inside the buffer
    assert got["status"] == "MISMATCH" and not str(got["likely_cause"] or "").startswith("boundary")


# --- statuses -------------------------------------------------------------------------------


def test_an_unmapped_status_goes_to_the_review_list_instead_of_failing() -> None:
    rt = [("10:00", "tOrganizationPresence:BREAK", 600, "", ""), ("10:00", "tOrganizationPresence:BUSY", 300, "", ""),
          ("10:00", "tOrganizationPresence:Project Work", 900, "", "")]
    batch = [("10:00", "tOrganizationPresence:BREAK", 600, "", ""),
             ("10:00", "tOrganizationPresence:BUSY", 1200, "", "")]
    result = compare(rt, batch)
    assert row(result, "10:00", "tOrganizationPresence:BREAK")["status"] == "OK"
    busy = row(result, "10:00", "tOrganizationPresence:BUSY")
    assert busy["status"] == "UNMAPPED" and "Project Work" in busy["likely_cause"]
    unmapped = row(result, "10:00", "tOrganizationPresence:Project Work")
    assert unmapped["status"] == "UNMAPPED" and unmapped["rt_value"] == 900
    review = result.unmapped_statuses
    assert review[["metric", "realtime_status", "intervals", "total_value"]].to_dict("records") == [
        {"metric": "tOrganizationPresence", "realtime_status": "Project Work", "intervals": 1, "total_value": 900.0}]
    assert result.summary["counts"]["MISMATCH"] == 0 and not result.alerts

    mapped = compare(rt, batch, status_map=StatusMap().with_entry("project work", "BUSY"))
    assert row(mapped, "10:00", "tOrganizationPresence:BUSY")["status"] == "OK"
    assert row(mapped, "10:00", "tOrganizationPresence:BUSY")["rt_value"] == 1200
    assert mapped.unmapped_statuses.empty and mapped.summary["counts"]["UNMAPPED"] == 0


def test_built_in_statuses_map_to_themselves_and_entries_can_remap_them() -> None:
    status_map = StatusMap().with_entry("Lunch", "MEAL").with_entry("NOT_RESPONDING", "IDLE")
    assert status_map.classify("idle") == "IDLE"
    assert status_map.classify(" lunch ") == "MEAL"
    assert status_map.classify("NOT_RESPONDING") == "IDLE"
    assert status_map.classify("Project Work") is None
    rt = [("10:00", "tAgentRoutingStatus:IDLE", 100, "", ""),
          ("10:00", "tAgentRoutingStatus:NOT_RESPONDING", 50, "", "")]
    batch = [("10:00", "tAgentRoutingStatus:IDLE", 150, "", "")]
    result = compare(rt, batch, status_map=status_map)
    assert row(result, "10:00", "tAgentRoutingStatus:IDLE")["status"] == "OK"


# --- summary, checkpoint, alerts ---------------------------------------------------------------


def test_checkpoint_stops_before_the_first_pending_interval() -> None:
    rt = [("10:00", "nOffered", 1), ("10:30", "nOffered", 1), ("11:00", "nOffered", 1), ("11:30", "nOffered", 1)]
    result = compare(rt, rt, pending=("11:00",))
    assert [row(result, t, "nOffered")["status"] for t in ("10:00", "10:30", "11:00", "11:30")] == [
        "OK", "OK", "PENDING", "OK"]
    assert result.checkpoint == at("11:00")
    assert result.summary["checkpoint"] == "2026-10-05T11:00:00.000Z"


def test_one_alert_per_interval_meeting_the_rule() -> None:
    rt = [("10:00", "nOffered", 10), ("10:00", "nAbandoned", 9), ("10:30", "nOffered", 10)]
    batch = [("10:00", "nOffered", 20), ("10:00", "nAbandoned", 1), ("10:30", "nOffered", 20)]
    result = compare(rt, batch)
    assert [a["interval"][:24] for a in result.alerts] == ["2026-10-05T10:00:00.000Z", "2026-10-05T10:30:00.000Z"]
    first = result.alerts[0]
    assert first["alert_type"] == "DATA_RECONCILIATION_FAILURE" and first["severity"] == "warning"
    assert {m["metric_name"] for m in first["metrics"]} == {"nOffered", "nAbandoned"}
    item = next(m for m in first["metrics"] if m["metric_name"] == "nOffered")
    assert item["rt_value"] == 10 and item["batch_value"] == 20 and item["variance_percent"] == -50.0
    assert item["threshold_percent"] == 0.1 and item["interval_end"] == "2026-10-05T10:30:00.000Z"
    only_two = compare(rt, batch, alert_min_mismatches=2)
    assert len(only_two.alerts) == 1
    critical = compare(rt, batch, alert_critical_mismatches=2)
    assert critical.alerts[0]["severity"] == "critical"
    assert compare(rt, batch, alert_min_mismatches=0).alerts == ()


def test_output_times_are_utc_with_milliseconds_and_z() -> None:
    result = compare([("10:00", "nOffered", 10)], [("10:00", "nOffered", 20)])
    assert result.summary["first_interval"] == "2026-10-05T10:00:00.000Z"
    assert result.alerts[0]["timestamp"] == "2026-10-05T23:00:00.000Z"
    assert str(result.variances["interval_start"].dt.tz) == "UTC"


@pytest.mark.parametrize(("settings", "message"), [
    (RtBatchSettings(granularity="PT5M"), "granularity"),
    (RtBatchSettings(buffer_minutes=-1), "buffer"),
    (RtBatchSettings(start=at("11:00"), end=at("10:00")), "end of the range"),
])
def test_invalid_settings_are_refused(settings: RtBatchSettings, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        validate_settings(settings)


def test_empty_sides_give_an_empty_result_not_an_error() -> None:
    from recon_core.rtbatch.sources import empty_tidy

    result = reconcile_frames(empty_tidy(), empty_tidy(), RtBatchSettings(as_of=at("23:00")))
    assert result.variances.empty and result.checkpoint is None and result.alerts == ()
    only_batch = reconcile_frames(empty_tidy(snapshots=True), tidy([("10:00", "nOffered", 3)]),
                                  RtBatchSettings(as_of=at("23:00")))
    assert row(only_batch, "10:00", "nOffered")["status"] == "MISMATCH"
