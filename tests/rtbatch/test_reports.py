"""The report files, uploads, and the command's small parsers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl
import pytest
from rt_helpers import compare

from recon_core.commands.collect_realtime import parse_every, parse_queues
from recon_core.errors import SettingsError
from recon_core.rtbatch import read_batch_file, read_tidy_csv, rt_batch_report_bytes
from recon_core.rtbatch.reports import write_rt_batch_reports

RT = [("10:00", "nOffered", 10, "q1", "voice"), ("10:00", "nOffered", 5, "q2", "voice"),
      ("10:00", "tHandle", 300, "q2", "voice"), ("10:30", "nOffered", 8, "q1", "voice")]
BATCH = [("10:00", "nOffered", 20, "q1", "voice"), ("10:00", "nOffered", 5, "q2", "voice"),
         ("10:00", "tHandle", 300, "q2", "voice"), ("10:30", "nOffered", 8, "q1", "voice")]


def test_report_files_and_bytes_agree(tmp_path: Path) -> None:
    result = compare(RT, BATCH)
    paths = write_rt_batch_reports(result, tmp_path)
    blobs = rt_batch_report_bytes(result)
    assert set(blobs) == {p.name for p in paths.values()}
    assert blobs["MetricVariances.csv"] == paths["MetricVariances.csv"].read_bytes()
    assert json.loads(blobs["summary.json"])["counts"]["MISMATCH"] == 1
    book = openpyxl.load_workbook(paths["rt_vs_batch.xlsx"], read_only=True)
    assert book.sheetnames[:2] == ["Summary", "Mismatches"]
    rows = list(book["Mismatches"].iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][rows[0].index("metric")] == "nOffered"


def test_uploads_are_read_like_files() -> None:
    csv_upload = io.BytesIO(b"interval_start,interval_end,queue_id,media_type,metric,value\n"
                            b"2026-10-05T10:00:00Z,2026-10-05T10:30:00Z,q1,voice,nOffered,4\n")
    csv_upload.name = "rt.csv"
    assert read_tidy_csv(csv_upload)["value"].tolist() == [4.0]
    json_upload = io.BytesIO(json.dumps({"results": [{"group": {"queueId": "q1", "mediaType": "voice"}, "data": [
        {"interval": "2026-10-05T10:00:00Z/2026-10-05T10:30:00Z",
         "metrics": [{"metric": "nOffered", "stats": {"count": 4}}]}]}]}).encode())
    json_upload.name = "batch.json"
    assert read_batch_file(json_upload)["metric"].tolist() == ["nOffered"]


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60.0), ("60", 60.0), ("2m", 120.0), ("1h", 3600.0),
                                               ("0.5s", 0.5)])
def test_every_accepts_seconds_minutes_hours(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["soon", "0s", "-5s", "5d"])
def test_every_refuses_anything_else(text: str) -> None:
    with pytest.raises(SettingsError, match="--every"):
        parse_every(text)


def test_queues_are_split_and_deduplicated() -> None:
    assert parse_queues(["a, b", "b,c", ""]) == ("a", "b", "c")
