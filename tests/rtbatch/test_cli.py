"""``python -m recon_core rt-batch`` and ``collect-realtime``: files in, four files out, exit codes."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from loopback_webhook import WebhookRecorder

from recon_core.cli import main
from recon_core.sandbox import ManualClock, OrgSpec, SandboxConfig, run_sandbox
from recon_core.store import open_store

HEADER = "captured_at,interval_start,interval_end,queue_id,media_type,metric,value\n"


def _realtime(tmp_path: Path) -> Path:
    path = tmp_path / "realtime.csv"
    path.write_text(HEADER + "".join(
        f"2026-10-05T{h}:{m}.000Z,2026-10-05T{s}:00.000Z,2026-10-05T{e}:00.000Z,q1,voice,{metric},{value}\n"
        for h, m, s, e, metric, value in [
            ("10", "10:00", "10:00", "10:30", "nOffered", 3),    # an early snapshot, superseded
            ("10", "29:00", "10:00", "10:30", "nOffered", 10),   # the last before 10:30: the real-time value
            ("10", "31:00", "10:00", "10:30", "nOffered", 99),   # taken after the close: ignored
            ("10", "29:00", "10:00", "10:30", "tHandle", 500),
            ("10", "29:00", "10:00", "10:30", "nHandled", 4),
            ("10", "59:00", "10:30", "11:00", "tHandle", 400),
            ("10", "59:00", "10:30", "11:00", "nHandled", 3),
        ]), encoding="utf-8")
    return path


def _batch(tmp_path: Path) -> Path:
    def entry(interval: str, offered: int | None, handle_ms: int, handled: int) -> dict:
        metrics = [{"metric": "tHandle", "stats": {"count": handled, "sum": handle_ms, "min": 1, "max": 1}}]
        if offered is not None:
            metrics.insert(0, {"metric": "nOffered", "stats": {"count": offered}})
        return {"interval": interval, "metrics": metrics}

    answer = {"results": [{"group": {"queueId": "q1", "mediaType": "voice"}, "data": [
        entry("2026-10-05T10:00:00.000Z/2026-10-05T10:30:00.000Z", 10, 600_000, 5),
        entry("2026-10-05T10:30:00.000Z/2026-10-05T11:00:00.000Z", None, 300_000, 2)]}]}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(answer), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(autouse=True)
def _no_alert_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECON_ALERT_WEBHOOK_URL", "RECON_SMTP_HOST", "RECON_ALERT_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)


def test_files_in_four_files_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["rt-batch", "--realtime", str(_realtime(tmp_path)), "--batch", str(_batch(tmp_path)),
                 "--out", str(out), "--as-of", "2026-10-05T13:00:00Z", "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["MetricVariances.csv", "alerts.json", "rt_vs_batch.xlsx",
                                                      "summary.json"]
    rows = {(r["interval_start"], r["metric"]): r for r in _rows(out / "MetricVariances.csv")}
    offered = rows[("2026-10-05T10:00:00.000Z", "nOffered")]
    assert offered["rt_value"] == "10.0" and offered["batch_value"] == "10.0" and offered["status"] == "OK"
    assert offered["interval_end"] == "2026-10-05T10:30:00.000Z"
    handle = rows[("2026-10-05T10:00:00.000Z", "tHandle")]
    assert handle["status"] == "MISMATCH" and handle["likely_cause"].startswith("boundary shift")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["MISMATCH"] >= 2 and summary["checkpoint"] == "2026-10-05T11:00:00.000Z"
    alerts = json.loads((out / "alerts.json").read_text())
    assert [a["state"] for a in alerts["alerts"]] == ["would_send", "would_send"]
    printed = capsys.readouterr().out
    assert "MISMATCH" in printed and "boundary shift" in printed


def test_policy_and_status_map_files_change_the_outcome(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"metrics": {"tHandle": {"absolute": 200, "percent": 0}}}))
    statuses = tmp_path / "statuses.json"
    statuses.write_text(json.dumps({"statuses": {"Project Work": "BUSY"}}))
    out = tmp_path / "out"
    store = tmp_path / "store.duckdb"
    assert main(["rt-batch", "--realtime", str(_realtime(tmp_path)), "--batch", str(_batch(tmp_path)), "--out",
                 str(out), "--as-of", "2026-10-05T13:00:00Z", "--policy", str(policy), "--status-map",
                 str(statuses), "--store", str(store), "--quiet"]) == 0
    rows = {(r["interval_start"], r["metric"]): r for r in _rows(out / "MetricVariances.csv")}
    assert rows[("2026-10-05T10:00:00.000Z", "tHandle")]["status"] == "OK"
    assert rows[("2026-10-05T10:00:00.000Z", "tHandle")]["threshold"] == "200.0"
    # Saved in the store: the next run without the files uses them.
    assert main(["rt-batch", "--store", str(store), "--batch", str(_batch(tmp_path)), "--out", str(out),
                 "--as-of", "2026-10-05T13:00:00Z", "--quiet"]) == 0
    rows = {(r["interval_start"], r["metric"]): r for r in _rows(out / "MetricVariances.csv")}
    assert rows[("2026-10-05T10:00:00.000Z", "tHandle")]["status"] == "OK"


def test_re_runs_on_a_store_add_no_rows_and_send_no_alert_twice(tmp_path: Path, webhook: WebhookRecorder,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_ALERT_WEBHOOK_URL", webhook.url)
    store = tmp_path / "store.duckdb"
    args = ["rt-batch", "--realtime", str(_realtime(tmp_path)), "--batch", str(_batch(tmp_path)), "--store",
            str(store), "--as-of", "2026-10-05T13:00:00Z", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert len(webhook.received) == 2
    assert main([*args, "--out", str(tmp_path / "two")]) == 0
    assert len(webhook.received) == 2
    alerts = json.loads((tmp_path / "two" / "alerts.json").read_text())
    assert [a["state"] for a in alerts["alerts"]] == ["already_sent", "already_sent"]
    with open_store(store) as opened:
        results = opened.con.execute("SELECT count(*), count(DISTINCT (interval_start, metric)) "
                                     "FROM rt_batch_results").fetchone()
        snapshots = opened.con.execute("SELECT count(*) FROM rt_snapshots").fetchone()
    assert results is not None and results[0] == results[1] == len(_rows(tmp_path / "two" / "MetricVariances.csv"))
    assert snapshots == (7,)


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "OUT"], "give the real-time side"),
    (["--realtime", "RT", "--out", "OUT"], "give the batch side"),
    (["--realtime", "RT", "--batch", "MISSING", "--out", "OUT"], "file not found"),
    (["--realtime", "RT", "--batch", "BATCH", "--out", "OUT", "--granularity", "PT5M"], "granularity"),
    (["--realtime", "RT", "--batch", "BATCH", "--out", "OUT", "--policy", "BADPOLICY"], "unknown metric"),
    (["--realtime", "RT", "--batch", "BATCH", "--base-url", "http://127.0.0.1:9", "--out", "OUT"], "not both"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                         message: str) -> None:
    bad_policy = tmp_path / "bad.json"
    bad_policy.write_text(json.dumps({"metrics": {"Speed": {"percent": 1}}}))
    paths = {"RT": str(_realtime(tmp_path)), "BATCH": str(_batch(tmp_path)), "OUT": str(tmp_path / "out"),
             "MISSING": str(tmp_path / "missing.json"), "BADPOLICY": str(bad_policy)}
    code = main(["rt-batch", *[paths.get(a, a) for a in args], "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_collect_realtime_imports_tidy_csv_then_rt_batch_reads_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    assert main(["collect-realtime", "--store", str(store), "--import", str(_realtime(tmp_path))]) == 0
    out = tmp_path / "out"
    assert main(["rt-batch", "--store", str(store), "--batch", str(_batch(tmp_path)), "--out", str(out),
                 "--as-of", "2026-10-05T13:00:00Z", "--quiet"]) == 0
    rows = {(r["interval_start"], r["metric"]): r for r in _rows(out / "MetricVariances.csv")}
    assert rows[("2026-10-05T10:00:00.000Z", "nOffered")]["rt_value"] == "10.0"


def test_collect_realtime_needs_queues_and_a_sane_interval(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect-realtime", "--base-url", "http://127.0.0.1:9"]) == 2
    assert "--queues" in capsys.readouterr().err
    assert main(["collect-realtime", "--base-url", "http://127.0.0.1:9", "--queues", "q1", "--every", "soon"]) == 2
    assert "--every" in capsys.readouterr().err


ORG = OrgSpec(seed=11, start=date(2026, 10, 5), end=date(2026, 10, 7), conversations_per_day=120)


def test_both_commands_against_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    clock = ManualClock(datetime(2026, 10, 5, 18, tzinfo=UTC))
    config = SandboxConfig(org=ORG, clock=clock, batch_aggregates_after_s=0)
    monkeypatch.setenv("GENESYS_CLIENT_ID", config.client_id)
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", config.client_secret)
    store = tmp_path / "store.duckdb"
    with run_sandbox(config) as server:
        queues = ",".join(q.id for q in server.org.directory.queues)
        assert main(["collect-realtime", "--base-url", server.base_url, "--queues", queues, "--every", "1s",
                     "--iterations", "1", "--store", str(store)]) == 0
        assert "from 1 snapshots" in capsys.readouterr().out
        # The real-time side from a file of Oct 5 snapshots; the batch side from the sandbox's API.
        assert main(["rt-batch", "--realtime", str(_realtime(tmp_path)), "--store", str(store), "--base-url",
                     server.base_url, "--queues", queues, "--from", "2026-10-05T10:00:00Z", "--to",
                     "2026-10-05T11:00:00Z", "--as-of", "2026-10-05T18:00:00Z", "--out", str(tmp_path / "out"),
                     "--quiet"]) == 0
        assert server.request_count("/api/v2/analytics/conversations/aggregates/query") >= 2
    assert "batch: fetched 2 intervals" in capsys.readouterr().out
