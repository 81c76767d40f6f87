"""The pipeline end to end on local folders, against the sandbox Genesys Cloud: a month, skip, force,
the billing-period edge and the next period's re-check, verify from the published files."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pipeline_helpers import SANDBOX_ENV, add_edge_call, make_month, sandbox_for, write_config

from recon_core.cli import main
from recon_core.pipeline.config import load_config
from recon_core.pipeline.runner import CDR_LEGS_FILE, run_pipeline
from recon_core.reports.reconciliation import REPORT_FILES
from recon_core.runs.access import store_session
from recon_core.runs.records import list_runs
from recon_core.sql import execute

CSV_FILES = ("MatchedCalls.csv", "Discrepancies.csv", "ExcludedRows.csv", "RejectedRows.csv")


def _outcome(result, name: str):  # type: ignore[no-untyped-def]
    return next(o for o in result.outcomes if o.uri.endswith("/" + name))


def _run_folder(outbox: Path, run_id: str) -> Path:
    return outbox / "2026-10" / "twilio" / run_id


@pytest.mark.slow
def test_a_month_is_reconciled_then_skipped_then_forced_identically(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    month = make_month(tmp_path / "gen", per_day=10)
    inbox, outbox, store = tmp_path / "inbox", tmp_path / "outbox", tmp_path / "recon.duckdb"
    (inbox / "twilio").mkdir(parents=True)
    edge_sid = add_edge_call(month.invoice, inbox / "twilio" / month.invoice.name, datetime(2026, 11, 1))
    (inbox / "notes.txt").write_text("not an invoice", encoding="utf-8")
    for name, value in SANDBOX_ENV.items():
        monkeypatch.setenv(name, value)
    with sandbox_for(month) as url:
        config_path = write_config(tmp_path / "recon.toml", inbox=str(inbox), outbox=str(outbox), store=store,
                                   base_url=url, threshold=50.0)
        assert main(["run", "--config", str(config_path), "--quiet"]) == 0
        first_out = capsys.readouterr().out
        config = load_config(config_path)
        again = run_pipeline(config, environ=SANDBOX_ENV)
        forced = run_pipeline(config, force=True, environ=SANDBOX_ENV)

    assert "notes.txt: no_carrier" in first_out
    with store_session(store, read_only=True) as s:
        runs = list_runs(s)
    assert [r.status for r in runs] == ["complete", "complete"]
    forced_run, first_run = runs
    assert first_run.period == "2026-10" and first_run.carrier == "twilio" and first_run.kind == "pipeline"
    assert f"run {first_run.run_id}" in first_out and "reports:" in first_out

    skipped = _outcome(again, month.invoice.name)
    assert skipped.status == "skipped" and first_run.run_id in skipped.message and "--force" in skipped.message
    assert again.exit_code == 0 and len(runs) == 2

    # reports in <outbox>/<period>/<carrier>/<run_id>/, nothing half-written anywhere
    folder = _run_folder(outbox, first_run.run_id)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*REPORT_FILES, CDR_LEGS_FILE, "run.json"])
    assert sorted(p.name for p in (outbox / "2026-10" / "twilio").iterdir()) == sorted(
        [first_run.run_id, forced_run.run_id])

    # the Genesys days were fetched once (period + margin: 30 Sep .. 1 Nov), then reused
    assert first_run.settings["fetch"]["days_fetched"] == 33
    assert forced_run.settings["fetch"]["days_reused"] == 33 and forced_run.settings["fetch"]["days_fetched"] == 0

    # --force: a new run, the same rows
    redone = _outcome(forced, month.invoice.name)
    assert redone.status == "complete" and redone.run_id == forced_run.run_id
    for name in CSV_FILES:
        assert (folder / name).read_bytes() == (_run_folder(outbox, forced_run.run_id) / name).read_bytes(), name

    # the injected faults are found exactly; the edge call is PERIOD_BOUNDARY, not missing
    summary = json.loads((folder / "summary.json").read_text())
    expected = Counter(r["expected_category"] for r in month.manifest.rows)
    counts = summary["counts"]
    assert counts["COST_VARIANCE"] == expected["COST_VARIANCE"]
    assert counts["MISSING_IN_CDR"] == expected["MISSING_IN_CDR"]
    assert counts["DUPLICATE_CHARGE"] == expected["DUPLICATE_CHARGE"]
    assert counts["PERIOD_BOUNDARY"] == 1 and all(e["balanced"] for e in summary["ledger"])
    discrepancies = (folder / "Discrepancies.csv").read_text(encoding="utf-8").splitlines()
    edge_line = next(line for line in discrepancies if edge_sid in line)
    assert edge_line.startswith("PERIOD_BOUNDARY,") and "re-checked in the next period's run" in edge_line
    assert summary["period"]["start_utc"] == "2026-10-01T00:00:00Z"
    assert summary["inputs"][0]["file"].endswith("inbox/twilio/twilio_2026-10.csv")

    # the auditor re-runs it from the published files
    invoice = inbox / "twilio" / month.invoice.name
    code = main(["verify", first_run.run_id, "--invoice", str(invoice), "--cdr", str(folder / CDR_LEGS_FILE),
                 "--store", str(store), "--quiet"])
    assert code == 0, capsys.readouterr().out
    assert "same result" in capsys.readouterr().out


def _split_by_month(invoice: Path, october: Path, november: Path) -> None:
    """The sandbox invoice of late October + early November as two monthly invoices (split at 00:00 UTC)."""
    from email.utils import parsedate_to_datetime

    lines = invoice.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    start_at = header.split(",").index("start_time")
    parts: dict[bool, list[str]] = {True: [], False: []}
    for line in rows:
        fields = next(csv.reader([line]))
        try:
            in_november = parsedate_to_datetime(fields[start_at]).month == 11
        except (TypeError, ValueError, IndexError):
            in_november = False  # the unreadable line stays with October
        parts[in_november].append(line)
    october.parent.mkdir(parents=True, exist_ok=True)
    october.write_text("\n".join([header, *parts[False]]) + "\n", encoding="utf-8")
    november.write_text("\n".join([header, *parts[True]]) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_the_next_period_rechecks_the_calls_left_open_at_the_edge(tmp_path: Path) -> None:
    month = make_month(tmp_path / "gen", start=date(2026, 10, 29), end=date(2026, 11, 2), per_day=20)
    inbox, outbox, store = tmp_path / "inbox", tmp_path / "outbox", tmp_path / "recon.duckdb"
    october, november = inbox / "twilio" / "twilio_2026-10.csv", inbox / "twilio" / "twilio_2026-11.csv"
    _split_by_month(month.invoice, tmp_path / "split" / october.name, tmp_path / "split" / november.name)
    edge_sid = add_edge_call(tmp_path / "split" / october.name, october, datetime(2026, 11, 1))
    lines = october.read_text(encoding="utf-8").splitlines()
    edge_row = next(line for line in lines if edge_sid in line)
    nov_sid = "CAnov" + edge_sid[5:]
    # November's invoice also bills a call 2 s after the edge that Genesys never saw
    nov_row = (edge_row.replace("Sat, 31 Oct 2026 23:59:57", "Sun, 01 Nov 2026 00:00:02")
               .replace("Sun, 01 Nov 2026 00:00:27", "Sun, 01 Nov 2026 00:00:32").replace(edge_sid, nov_sid))
    november.write_text((tmp_path / "split" / november.name).read_text(encoding="utf-8") + nov_row + "\n",
                        encoding="utf-8")
    with sandbox_for(month, now=datetime(2026, 12, 3, tzinfo=UTC)) as url:
        config = load_config(write_config(tmp_path / "recon.toml", inbox=str(inbox), outbox=str(outbox),
                                          store=store, base_url=url, threshold=100.0))
        first = run_pipeline(config, period="2026-10", environ=SANDBOX_ENV)
        oct_run = _outcome(first, october.name)
        assert oct_run.status == "complete", oct_run.message
        assert _outcome(first, november.name).status == "skipped"  # not October: left for its own run
        second = run_pipeline(config, period="2026-11", environ=SANDBOX_ENV)
    assert _outcome(second, october.name).status == "skipped"  # already done (and not November)
    nov = _outcome(second, november.name)
    assert nov.status == "complete" and nov.period == "2026-11", nov.message
    assert "re-checked 1 call" in nov.message
    with store_session(store, read_only=True) as s:
        rows = execute(s.con, "SELECT period, record_id, status, resolved_by_run, outcome FROM run_boundary_calls "
                              "ORDER BY period, record_id").fetchall()
    assert (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) == ("2026-10", edge_sid, "confirmed_missing", nov.run_id)
    assert "missing in CDR" in rows[0][4]
    assert ("2026-11", nov_sid, "open") in [r[:3] for r in rows]
    summary = json.loads((outbox / "2026-11" / "twilio" / nov.run_id / "summary.json").read_text())
    assert summary["period_boundary"]["rechecked"][0]["record_id"] == edge_sid
    assert summary["counts"]["PERIOD_BOUNDARY"] >= 1
