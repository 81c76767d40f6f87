"""Aggregate answers and files -> the tidy shape both sides share."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from recon_core.errors import InputFileError, SettingsError
from recon_core.rtbatch.sources import (
    floor_interval,
    granularity_minutes,
    iso_z,
    read_batch_file,
    read_tidy_csv,
    tidy_from_response,
)

CONVERSATION_ANSWER = {"results": [{
    "group": {"queueId": "q1", "mediaType": "voice"},
    "data": [{"interval": "2026-10-05T10:00:00.000Z/2026-10-05T10:30:00.000Z", "metrics": [
        {"metric": "nOffered", "stats": {"count": 12}},
        {"metric": "tHandle", "stats": {"max": 400000, "min": 1000, "count": 4, "sum": 1200000}},
        {"metric": "tAnswered", "stats": {"max": 9000, "min": 1000, "count": 4, "sum": 20000}},
        {"metric": "oServiceLevel", "stats": {"ratio": 0.75, "numerator": 3, "denominator": 4, "target": 0.8}},
    ]}]}]}


def _values(rows: list[dict]) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in rows}


def test_conversation_aggregates_become_registry_metrics() -> None:
    rows = tidy_from_response(CONVERSATION_ANSWER)
    assert _values(rows) == {"nOffered": 12.0, "nHandled": 4.0, "tHandle": 1200.0, "nAnswered": 4.0,
                             "tAnswered": 20.0, "oServiceLevel": 75.0}
    assert {(r["queue_id"], r["media_type"]) for r in rows} == {("q1", "voice")}
    assert rows[0]["interval_start"] == datetime(2026, 10, 5, 10, 0, tzinfo=UTC)


def test_user_aggregates_add_up_users_and_resolve_presence_ids() -> None:
    answer = {"systemToOrganizationMappings": {"BREAK": ["p-break"], "BUSY": ["p-busy", "p-coaching"]},
              "results": [
                  {"group": {"userId": "u1"}, "data": [{"interval": "2026-10-05T10:00:00Z/2026-10-05T10:30:00Z",
                                                        "metrics": [
                      {"metric": "tOrganizationPresence", "qualifier": "p-busy", "stats": {"sum": 60000}},
                      {"metric": "tOrganizationPresence", "qualifier": "p-coaching", "stats": {"sum": 30000}},
                      {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 90000}}]}]},
                  {"group": {"userId": "u2"}, "data": [{"interval": "2026-10-05T10:00:00Z/2026-10-05T10:30:00Z",
                                                        "metrics": [
                      {"metric": "tOrganizationPresence", "qualifier": "p-unknown", "stats": {"sum": 10000}},
                      {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 10000}}]}]}]}
    assert _values(tidy_from_response(answer)) == {"tOrganizationPresence:BUSY": 90.0,
                                                   "tOrganizationPresence:p-unknown": 10.0,
                                                   "tAgentRoutingStatus:IDLE": 100.0}


def test_observations_need_the_interval_they_describe() -> None:
    answer = {"results": [{"group": {"queueId": "q1", "mediaType": "voice"},
                           "data": [{"metric": "oWaiting", "stats": {"count": 3}}]},
                          {"group": {"queueId": "q1"},
                           "data": [{"metric": "oUserRoutingStatuses", "qualifier": "IDLE", "stats": {"count": 2}}]}]}
    with pytest.raises(ValueError, match="interval"):
        tidy_from_response(answer)
    span = (datetime(2026, 10, 5, 10, tzinfo=UTC), datetime(2026, 10, 5, 10, 30, tzinfo=UTC))
    captured = datetime(2026, 10, 5, 10, 7, tzinfo=UTC)
    rows = tidy_from_response(answer, captured_at=captured, interval=span)
    assert [(r["queue_id"], r["media_type"], r["metric"], r["value"]) for r in rows] == [
        ("q1", "voice", "oWaiting", 3.0), ("q1", "", "oUserRoutingStatuses:IDLE", 2.0)]
    assert all(r["captured_at"] == captured for r in rows)


def test_batch_file_accepts_the_api_answer_as_returned(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps([CONVERSATION_ANSWER, {}]), encoding="utf-8")
    frame = read_batch_file(path)
    assert len(frame) == 6 and str(frame["interval_start"].dt.tz) == "UTC"


def test_tidy_csv_round_trip_and_every_problem_listed(tmp_path: Path) -> None:
    good = tmp_path / "rt.csv"
    good.write_text("captured_at,interval_start,interval_end,queue_id,media_type,metric,value\n"
                    "2026-10-05T10:29:00.000Z,2026-10-05T10:00:00.000Z,2026-10-05T10:30:00.000Z,q1,voice,nOffered,7\n",
                    encoding="utf-8")
    frame = read_tidy_csv(good)
    assert frame.loc[0, "value"] == 7.0 and frame.loc[0, "captured_at"] == pd.Timestamp("2026-10-05T10:29:00Z")
    bad = tmp_path / "bad.csv"
    bad.write_text("interval_start,interval_end,queue_id,media_type,metric,value\n"
                   "yesterday,2026-10-05T10:30:00.000Z,q1,voice,nOffered,7\n"
                   "2026-10-05T10:00:00.000Z,2026-10-05T10:30:00.000Z,q1,voice,nOffered,seven\n", encoding="utf-8")
    with pytest.raises(InputFileError) as info:
        read_tidy_csv(bad)
    assert "line 2: interval_start 'yesterday'" in str(info.value) and "line 3: value 'seven'" in str(info.value)
    missing = tmp_path / "missing.csv"
    missing.write_text("interval_start,metric,value\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="missing column"):
        read_tidy_csv(missing)
    with pytest.raises(InputFileError, match="not found"):
        read_tidy_csv(tmp_path / "nope.csv")


def test_time_helpers() -> None:
    assert iso_z(datetime(2026, 10, 5, 10, 0, 0, 123456, tzinfo=UTC)) == "2026-10-05T10:00:00.123Z"
    assert floor_interval(datetime(2026, 10, 5, 10, 44, 59, tzinfo=UTC), 15) == datetime(2026, 10, 5, 10, 30,
                                                                                           tzinfo=UTC)
    assert [granularity_minutes(g) for g in ("PT15M", "pt30m", "PT1H")] == [15, 30, 60]
    with pytest.raises(SettingsError, match="PT15M, PT30M, PT1H"):
        granularity_minutes("P1D")
