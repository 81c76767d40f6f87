"""AppTest: the History page reads the DuckDB run store: empty, reopen a run, compare two runs."""

from __future__ import annotations

from app_helpers import metrics, on_page, texts

from pages.ui import HISTORY_KEY, PREPARE_SETTINGS
from recon_core.demo import DemoFiles
from recon_core.profiles import load_carrier_profile
from recon_core.reconcile import classify, reconcile
from recon_core.runs.history import save_run, saved_runs
from recon_core.store import default_store_path


def test_history_without_saved_runs_says_how_to_save_one() -> None:
    at = on_page("pages/history.py")
    assert any("Save this run to History" in i for i in texts(at.info))
    assert not at.dataframe


def test_a_run_saved_earlier_reopens_from_the_store_with_its_kpis_and_files(demo: DemoFiles) -> None:
    run, _ = reconcile([demo.invoice], [demo.conversations], load_carrier_profile(demo.profile), PREPARE_SETTINGS)
    saved = save_run(classify(run, 10.0, demo.rating()), default_store_path())
    assert saved.path == default_store_path() and saved.path.name == "recon.duckdb"
    assert [r.run_id for r in saved_runs(default_store_path())] == [saved.run_id]

    at = on_page("pages/history.py")
    table = at.dataframe[0].value
    assert table["run_id"].tolist() == [saved.run_id]
    assert not table["this session"].any()
    assert table["invoice_sha256"].iloc[0] and table["status"].iloc[0] == "complete"
    assert metrics(at)["Discrepancies"] == "14"
    assert len(at.download_button) == 6
    assert any("Save a second run" in c for c in texts(at.caption))
    assert not at.exception


def test_two_runs_compare_side_by_side_with_the_calls_that_changed_bucket(demo: DemoFiles) -> None:
    run, _ = reconcile([demo.invoice], [demo.conversations], load_carrier_profile(demo.profile), PREPARE_SETTINGS)
    from datetime import UTC, datetime

    wide = save_run(classify(run, 10.0, demo.rating()), default_store_path(), datetime(2026, 11, 1, tzinfo=UTC))
    narrow = save_run(classify(run, 0.0, demo.rating()), default_store_path(), datetime(2026, 11, 2, tzinfo=UTC))

    at = on_page("pages/history.py", **{HISTORY_KEY: [narrow.run_id]})
    table = at.dataframe[0].value
    assert table["run_id"].tolist() == [narrow.run_id, wide.run_id]
    assert table["this session"].tolist() == [True, False]
    compared = next(d.value for d in at.dataframe if "measure" in d.value.columns).set_index("measure")
    assert compared.loc["time tolerance (s)", "run A"] == "10.0"
    assert compared.loc["time tolerance (s)", "run B"] == "0.0"
    changed = [t for t in texts(at.markdown) if "changed bucket" in t]
    assert changed and not changed[0].endswith(": 0**"), changed
    assert not at.exception
