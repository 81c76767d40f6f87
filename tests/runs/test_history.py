"""What the History page lists and compares (recon_core.runs.history over the DuckDB run store)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recon_core.runs.history import compare_runs, regenerate_files, runs_table, save_run, saved_runs, stamped
from recon_core.store import default_store_path


@pytest.mark.parametrize(("environ", "expected"), [
    ({"XDG_DATA_HOME": "/srv/data"}, Path("/srv/data/recon-workbench/recon.duckdb")),
    ({"XDG_DATA_HOME": "relative/ignored"}, Path.home() / ".local/share/recon-workbench/recon.duckdb"),
    ({}, Path.home() / ".local/share/recon-workbench/recon.duckdb"),
])
def test_the_pages_save_into_the_run_store_at_the_user_data_dir(environ: dict[str, str], expected: Path) -> None:
    assert default_store_path(environ) == expected


def _summary(run_id: str, created: datetime, matched: int, disputed: str) -> dict:
    return {"run_id": run_id, "created_utc": created.isoformat().replace("+00:00", "Z"),
            "settings": {"time_tolerance_s": 10.0}, "counts": {"matched": matched, "COST_VARIANCE": 1},
            "rates": {"match_rate_pct": 99.0}, "money": {"disputed_amount": disputed, "currency": "USD"},
            "inputs": [{"side": "invoice", "file": "/tmp/x/inv.csv"}, {"side": "cdr", "file": "/tmp/y/c.json"}]}


def test_saved_runs_newest_first_with_inputs_hashes_and_counts(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "recon.duckdb"
    assert saved_runs(store) == []  # nothing recorded yet: no store file is created by reading
    assert not store.exists()
    older = save_run(result, store, datetime(2026, 11, 1, tzinfo=UTC))
    newer = save_run(result, store, datetime(2026, 11, 2, tzinfo=UTC))
    runs = saved_runs(store)
    assert [r.run_id for r in runs] == [newer.run_id, older.run_id]
    table = runs_table(runs)
    assert table.loc[0, "invoice"] == "twilio_2026-10.csv" and table.loc[0, "kind"] == "app"
    assert len(table.loc[0, "invoice_sha256"]) == 12
    assert table.loc[0, "discrepancies"] == len(result.discrepancies)
    assert table.loc[0, "disputed"] == f"{result.summary['money']['disputed_amount']} USD"


def test_regenerated_files_of_a_saved_run_match_the_files_of_the_stamped_result(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    from recon_core.reports.reconciliation import write_reconciliation_reports

    moment = datetime(2026, 11, 7, 8, 9, tzinfo=UTC)
    saved = save_run(result, tmp_path / "recon.duckdb", moment)
    direct = write_reconciliation_reports(stamped(result, moment), tmp_path / "direct")
    again = regenerate_files(tmp_path / "recon.duckdb", saved.run_id, tmp_path / "again")
    assert {n: p.read_bytes() for n, p in direct.items()} == {n: p.read_bytes() for n, p in again.items()}


def test_compare_runs_shows_both_values_and_the_change() -> None:
    a = _summary("a", datetime(2026, 11, 1, tzinfo=UTC), 10, "1.50")
    b = _summary("b", datetime(2026, 11, 2, tzinfo=UTC), 12, "0.25")
    table = compare_runs(a, b).set_index("measure")
    assert table.loc["matched"].tolist() == ["10", "12", "+2"]
    assert table.loc["disputed amount", "change"] == "-1.25"
    assert table.loc["duplicate charges"].tolist() == ["", "", ""]
