"""AppTest: the Real-time vs batch page — demo KPIs, tolerance and buffer edits, the status map, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from app_helpers import metrics, on_page, shows_demo_badge, texts

from recon_core.rtbatch.demo import DEMO_DAY, load_demo_rt_batch
from recon_core.rtbatch.engine import STATUSES, RtBatchResult, RtBatchSettings
from recon_core.rtbatch.metrics import MetricPolicy, StatusMap, Tolerance
from recon_core.rtbatch.run import reconcile_frames
from recon_core.rtbatch.view import tidy_csv

RT_BATCH = "pages/rt_batch.py"
NO_EDITS: dict[str, Any] = {"edited_rows": {}, "added_rows": [], "deleted_rows": []}
KPI_LABELS = ("Intervals compared", *STATUSES)


@pytest.fixture(scope="module")
def demo() -> Any:
    return load_demo_rt_batch(granularity="PT30M")


def independent(demo: Any, *, from_files: bool = False, **changes: Any) -> RtBatchResult:
    """The comparison the page should show, computed here from the engine directly.

    ``from_files``: only what files say (no word from the batch API about pending intervals).
    """
    start = datetime(DEMO_DAY.year, DEMO_DAY.month, DEMO_DAY.day, tzinfo=UTC)
    settings = RtBatchSettings(**{"granularity": "PT30M", "buffer_minutes": 60, "as_of": demo.as_of,
                                  "start": start, "end": start + timedelta(days=1), **changes})
    if from_files:
        return reconcile_frames(demo.realtime, demo.batch, settings)
    return reconcile_frames(demo.realtime, demo.batch, settings, pending_intervals=demo.pending_intervals,
                            batch_complete_until=demo.batch_complete_until)


def expected_tiles(result: RtBatchResult) -> dict[str, str]:
    v = result.variances
    pending_starts = v.loc[v["status"] == "PENDING", "interval_start"].nunique()
    tiles = {"Intervals compared": f"{v['interval_start'].nunique() - pending_starts:,}"}
    tiles.update({s: f"{int((v['status'] == s).sum()):,}" for s in STATUSES})
    return tiles


def tiles(at: Any) -> dict[str, str]:
    shown = metrics(at)
    return {label: shown[label] for label in KPI_LABELS}


def review_statuses(at: Any) -> list[str]:
    frames = [d.value for d in at.dataframe if "Real-time status" in d.value.columns]
    return list(frames[0]["Real-time status"]) if frames else []


def test_opens_on_demo_data_with_badge_kpis_charts_and_downloads(demo: Any) -> None:
    at = on_page(RT_BATCH)
    assert shows_demo_badge(at)
    assert not at.error
    expected = independent(demo)
    assert tiles(at) == expected_tiles(expected)
    # The demo's injected disagreements show up: mismatches, a pending late-batch window, an unmapped status.
    counts = expected.summary["counts"]
    assert counts["MISMATCH"] > 0 and counts["PENDING"] > 0 and counts["UNMAPPED"] > 0
    assert len(at.get("plotly_chart")) == 2  # the variance chart and the status heatmap
    mismatches = next(d.value for d in at.dataframe if "Likely cause" in d.value.columns)
    assert len(mismatches) == counts["MISMATCH"]
    assert mismatches["Likely cause"].str.startswith("boundary shift").any()
    assert review_statuses(at) == [f"Project Work ({s})" for s in expected.unmapped_statuses["realtime_status"]]
    labels = {b.label for b in at.download_button}
    assert {"Excel workbook", "MetricVariances.csv", "alerts.json", "summary.json"} <= labels
    # The chart starts on the series with the most mismatches.
    assert at.selectbox(key="rb_chart_metric").value in set(expected.variances.query("status == 'MISMATCH'").metric)


def test_a_wider_tolerance_in_the_policy_editor_clears_the_handle_time_mismatches(demo: Any) -> None:
    at = on_page(RT_BATCH)
    before = tiles(at)
    metrics_in_editor = list(at.data_editor(key="rb_policy_editor").value["metric"])
    at.session_state["rb_policy_editor"] = {**NO_EDITS, "edited_rows": {
        metrics_in_editor.index("tHandle"): {"percent": 80.0}, metrics_in_editor.index("AHT"): {"percent": 80.0}}}
    at.run()
    assert not at.exception and not at.error
    wide = Tolerance(absolute=1.0, percent=80.0)
    policy = MetricPolicy().with_tolerance("tHandle", wide).with_tolerance("AHT", wide)
    expected = independent(demo, policy=policy)
    assert tiles(at) == expected_tiles(expected)
    assert int(tiles(at)["MISMATCH"]) < int(before["MISMATCH"])
    handle = "status == 'MISMATCH' and metric in ('tHandle', 'AHT') and rt_value.notna()"
    assert len(expected.variances.query(handle)) < len(independent(demo).variances.query(handle))
    # The edit is what the policy download holds, and it survives a page switch.
    at.switch_page("pages/history.py").run()
    at.switch_page(RT_BATCH).run()
    assert not at.exception
    editor = at.data_editor(key="rb_policy_editor").value.set_index("metric")
    assert editor.loc["tHandle", "percent"] == 80.0
    assert tiles(at) == expected_tiles(expected)


def test_a_negative_tolerance_is_reported_not_raised() -> None:
    at = on_page(RT_BATCH)
    rows = list(at.data_editor(key="rb_policy_editor").value["metric"])
    at.session_state["rb_policy_editor"] = {**NO_EDITS, "edited_rows": {rows.index("nOffered"): {"absolute": -3}}}
    at.run()
    assert not at.exception
    assert any("nOffered" in e and "0 or more" in e for e in texts(at.error))
    assert not at.metric


@pytest.mark.parametrize("buffer", [0, 300])
def test_the_buffer_moves_intervals_in_and_out_of_pending(demo: Any, buffer: int) -> None:
    at = on_page(RT_BATCH)
    before = tiles(at)
    at.number_input(key="rb_buffer").set_value(buffer).run()
    assert not at.exception and not at.error
    after = tiles(at)
    assert after == expected_tiles(independent(demo, buffer_minutes=buffer))
    if buffer == 0:  # 23:30-24:00 ends at 00:00, before "as of" 00:30: compared now
        assert int(after["PENDING"].replace(",", "")) < int(before["PENDING"].replace(",", ""))
    else:  # five hours: everything after 19:30 waits
        assert int(after["PENDING"].replace(",", "")) > int(before["PENDING"].replace(",", ""))
        assert int(after["Intervals compared"]) < int(before["Intervals compared"])


def test_mapping_the_unmapped_custom_presence_empties_the_review_list(demo: Any) -> None:
    at = on_page(RT_BATCH)
    unmapped = review_statuses(at)
    assert len(unmapped) == 1 and unmapped[0].startswith("Project Work (")  # the custom presence, by its id
    status = unmapped[0].removeprefix("Project Work (").removesuffix(")")
    at.session_state["rb_status_editor"] = {**NO_EDITS, "added_rows": [
        {"realtime_status": status, "batch_classification": "BUSY"}]}
    at.run()
    assert not at.exception and not at.error
    assert review_statuses(at) == []
    assert any("Every real-time status is in the status map" in s for s in texts(at.success))
    expected = independent(demo, status_map=StatusMap().with_entry(status, "BUSY"))
    assert tiles(at)["UNMAPPED"] == "0"
    assert tiles(at) == expected_tiles(expected)


def test_the_review_lists_quick_add_puts_the_status_in_the_map() -> None:
    at = on_page(RT_BATCH)
    status = at.selectbox(key="rb_map_status").value
    assert at.selectbox(key="rb_map_target").value == "BUSY"
    at.button(key="rb_map_add").click().run()
    assert not at.exception and not at.error
    assert review_statuses(at) == []
    table = at.data_editor(key="rb_status_editor").value
    assert table.iloc[0].to_dict() == {"realtime_status": status, "batch_classification": "BUSY"}
    at.button(key="rb_save_status_map").click().run()
    assert any("Saved 1 custom status mapping" in s for s in texts(at.success))


def test_the_granularity_changes_the_intervals(demo: Any) -> None:
    at = on_page(RT_BATCH)
    at.selectbox(key="rb_granularity").set_value("PT1H").run()
    assert not at.exception and not at.error
    compared = int(tiles(at)["Intervals compared"])
    assert 20 <= compared <= 24  # a day of hours, less the pending ones


def test_a_malformed_realtime_csv_shows_a_clear_error() -> None:
    bad = (b"interval_start,interval_end,queue_id,media_type,metric,value\n"
           b"2026-10-06T10:00:00.000Z,2026-10-06T10:30:00.000Z,q1,voice,nOffered,4\n"
           b"yesterday,2026-10-06T11:00:00.000Z,q1,voice,nOffered,many\n")
    good_batch = (b"interval_start,interval_end,queue_id,media_type,metric,value\n"
                  b"2026-10-06T10:00:00.000Z,2026-10-06T10:30:00.000Z,q1,voice,nOffered,4\n")
    at = on_page(RT_BATCH, rb_source="Files", rb_rt_uploads=[("rt.csv", bad)],
                 rb_batch_uploads=[("batch.csv", good_batch)])
    assert not at.exception
    errors = texts(at.error)
    assert len(errors) == 1, errors
    assert "rt.csv" in errors[0] and "line 3" in errors[0] and "not an ISO 8601 time" in errors[0]
    assert "not a number" in errors[0]
    assert not at.metric and not shows_demo_badge(at)


def test_uploaded_tidy_files_are_compared(demo: Any) -> None:
    rt, batch = tidy_csv(demo.realtime).encode(), tidy_csv(demo.batch).encode()
    at = on_page(RT_BATCH, rb_source="Files", rb_rt_uploads=[("rt.csv", rt)], rb_batch_uploads=[("b.csv", batch)])
    assert not at.exception and not at.error
    assert not shows_demo_badge(at)
    assert any("rt.csv + b.csv" in c for c in texts(at.caption))
    assert at.date_input(key="rb_days").value == (DEMO_DAY, DEMO_DAY)  # the range starts from the files' span
    at.text_input(key="rb_as_of").input("2026-10-07T00:30:00Z").run()
    assert not at.exception and not at.error
    assert tiles(at) == expected_tiles(independent(demo, from_files=True))


def test_an_unreadable_as_of_is_reported() -> None:
    at = on_page(RT_BATCH)
    at.text_input(key="rb_as_of").input("half past midnight").run()
    assert not at.exception
    assert any("half past midnight" in e and "2026-10-07T00:30:00Z" in e for e in texts(at.error))
    assert not at.metric


def test_genesys_without_snapshots_explains_what_to_do() -> None:
    at = on_page(RT_BATCH)
    at.radio(key="rb_source").set_value("Genesys Cloud").run()
    assert not at.exception and not at.error
    assert any("collect-realtime" in i for i in texts(at.info))
    assert not at.metric
