"""The run store's migration (version 3): an older store file opens, migrates and keeps its data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from recon_core.errors import StoreError
from recon_core.store import MIGRATIONS, latest_version, open_store


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small reconciled sandbox result (two days, light traffic)."""
    from datetime import date

    from recon_core.profiles import load_carrier_profile
    from recon_core.rating import rating_settings_from_dict
    from recon_core.reconcile import ReconcileSettings, reconcile
    from recon_core.sandbox.export import export_conversations
    from recon_core.sandbox.invoice import InvoiceSpec, export_invoice

    folder = tmp_path_factory.mktemp("run_store_schema")
    spec = InvoiceSpec(carrier="twilio", start=date(2026, 10, 5), end=date(2026, 10, 6), conversations_per_day=60)
    manifest = export_invoice(spec, folder / "invoice.csv")
    export_conversations(spec.org_spec(), folder / "conversations.json")
    settings = ReconcileSettings(rating=rating_settings_from_dict(manifest.rating_settings))
    _, reconciled = reconcile([folder / "invoice.csv"], [folder / "conversations.json"],
                              load_carrier_profile("twilio"), settings)
    return reconciled


RUN_TABLES = {"runs", "run_inputs", "run_frames", "run_rows", "run_alerts", "run_boundary_calls"}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _v1_store(path: Path) -> None:
    """A store as version 1 of the workbench left it: Genesys tables only, with a fetched day in it."""
    only_v1 = tuple(m for m in MIGRATIONS if m.version == 1)
    with open_store(path, migrations=only_v1) as store:
        assert store.schema_version == 1
        store.con.execute("INSERT INTO genesys_held_back VALUES ('org', 'f', DATE '2026-10-01', 'conv-1', 7, "
                          "'in progress')")
        assert not RUN_TABLES & _tables(store.con)


def test_a_version_1_store_file_migrates_to_the_run_store_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    _v1_store(path)
    with open_store(path) as store:
        assert store.schema_version == latest_version() >= 3
        assert _tables(store.con) >= RUN_TABLES
        assert store.con.execute("SELECT conversation_id, reason FROM genesys_held_back").fetchall() == [
            ("conv-1", "in progress")]
    versions = duckdb.connect(str(path), read_only=True)
    try:
        applied = [r[0] for r in versions.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
    finally:
        versions.close()
    assert applied == sorted(m.version for m in MIGRATIONS)


def test_a_migrated_store_records_and_reopens_a_run(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    from recon_core.runs.history import stamped
    from recon_core.runs.records import load_result, record_result

    path = tmp_path / "recon.duckdb"
    _v1_store(path)
    run = stamped(result, datetime(2026, 11, 5, tzinfo=UTC))
    with open_store(path) as store:
        record_result(store, run)
    with open_store(path, read_only=True) as store:
        again = load_result(store, run.summary["run_id"])
    assert len(again.matched) == len(run.matched) and again.summary == run.summary


def test_a_version_1_store_is_not_migrated_read_only(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    _v1_store(path)
    with pytest.raises(StoreError, match="without read-only"):
        open_store(path, read_only=True)
    from recon_core.runs.history import saved_runs

    assert saved_runs(path) == []  # the History page upgrades it once, then reads read-only
    with open_store(path, read_only=True) as store:
        assert store.schema_version == latest_version()
