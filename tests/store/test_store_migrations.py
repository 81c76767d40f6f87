"""The store: default location, forward-only migrations, idempotent re-open, read-only rules."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from recon_core.errors import StoreError
from recon_core.schema import CANONICAL_FIELDS
from recon_core.sql import SQLExecutionError, execute
from recon_core.store import MIGRATIONS, Migration, default_store_path, latest_version, open_store

LATEST = latest_version()
ALL_VERSIONS = sorted(m.version for m in MIGRATIONS)
NEXT = LATEST + 1  # a migration a later workbench would add

KEY_COLUMNS = [("org_key", "VARCHAR"), ("filter_hash", "VARCHAR"), ("day", "DATE")]


def versions(path: Path) -> list[int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        return [row[0] for row in rows]
    finally:
        con.close()


def tables(store_con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = execute(store_con, "SELECT table_name FROM information_schema.tables").fetchall()
    return {row[0] for row in rows}


def test_a_new_store_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "recon.duckdb"
    with open_store(path) as store:
        assert store.schema_version == latest_version() == LATEST
        assert {"genesys_fetched_days", "genesys_conversations", "genesys_staged_conversations",
                "genesys_legs", "genesys_held_back", "schema_version"} <= tables(store.con)
    assert versions(path) == ALL_VERSIONS


def test_reopening_changes_nothing_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    with open_store(path) as store:
        execute(store.con, "INSERT INTO genesys_held_back VALUES ('o', 'f', DATE '2026-10-01', 'c', 1, 'r')")
    for _ in range(2):
        with open_store(path) as store:
            assert store.schema_version == LATEST
            assert execute(store.con, "SELECT count(*) FROM genesys_held_back").fetchone() == (1,)
    assert versions(path) == ALL_VERSIONS


def test_a_store_without_schema_version_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "legacy.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE notes (text VARCHAR)")
    con.close()
    with open_store(path) as store:
        assert store.schema_version == LATEST and "notes" in tables(store.con)


def test_an_older_store_gets_only_the_newer_migrations(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    with open_store(path) as store:
        execute(store.con, "INSERT INTO genesys_held_back VALUES ('o', 'f', DATE '2026-10-01', 'c', 1, 'r')")
    calls: list[int] = []

    def backfill(con: duckdb.DuckDBPyConnection) -> None:
        calls.append(1)
        execute(con, "INSERT INTO notes SELECT 'from held back ' || conversation_id FROM genesys_held_back")

    later = (*MIGRATIONS, Migration(NEXT, "notes", ("CREATE TABLE notes (note VARCHAR)",), apply=backfill))
    for _ in range(2):
        with open_store(path, migrations=later) as store:
            assert store.schema_version == NEXT
            assert execute(store.con, "SELECT note FROM notes").fetchall() == [("from held back c",)]
    assert calls == [1]
    assert versions(path) == [*ALL_VERSIONS, NEXT]


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    open_store(path).close()
    steps = ("CREATE TABLE half_done (x INTEGER)", "SELECT * FROM nope")
    broken = (*MIGRATIONS, Migration(NEXT, "broken", steps))
    with pytest.raises(SQLExecutionError, match="nope"):
        open_store(path, migrations=broken)
    with open_store(path) as store:
        assert store.schema_version == LATEST and "half_done" not in tables(store.con)


def test_read_only_rules(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    with pytest.raises(StoreError, match="does not exist yet"):
        open_store(path, read_only=True)
    duckdb.connect(str(path)).close()  # schema 0
    with pytest.raises(StoreError, match=f"has schema 0 but this version needs {LATEST}; open it once without read"):
        open_store(path, read_only=True)
    open_store(path).close()
    with open_store(path, read_only=True) as store:
        assert store.schema_version == LATEST and store.read_only
        with pytest.raises(SQLExecutionError):
            execute(store.con, "DELETE FROM genesys_legs")


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    later = (*MIGRATIONS, Migration(NEXT, "future", ("CREATE TABLE future (x INTEGER)",)))
    open_store(path, migrations=later).close()
    with pytest.raises(StoreError, match=rf"newer version of the workbench \(schema {NEXT}; this version knows up"):
        open_store(path)


@pytest.mark.parametrize("environ, expected", [
    ({"XDG_DATA_HOME": "/data/xdg"}, Path("/data/xdg/recon-workbench/recon.duckdb")),
    ({"XDG_DATA_HOME": "relative/ignored"}, Path.home() / ".local/share/recon-workbench/recon.duckdb"),
    ({}, Path.home() / ".local/share/recon-workbench/recon.duckdb"),
])
def test_default_path_honours_xdg_data_home(environ: dict[str, str], expected: Path) -> None:
    assert default_store_path(environ) == expected


def test_default_path_is_used_when_none_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with open_store() as store:
        assert store.path == tmp_path / "recon-workbench" / "recon.duckdb"
    assert store.path is not None and store.path.exists()


def test_an_in_memory_store_is_migrated() -> None:
    with open_store(":memory:") as store:
        assert store.schema_version == LATEST and store.path is None


def test_stored_legs_have_the_canonical_columns(tmp_path: Path) -> None:
    # Fails when recon_core.schema changes without a store migration that follows it.
    with open_store(tmp_path / "recon.duckdb") as store:
        rows = execute(store.con, "SELECT column_name, data_type FROM information_schema.columns "
                                  "WHERE table_name = 'genesys_legs' ORDER BY ordinal_position").fetchall()
    assert rows == KEY_COLUMNS + [(f.name, f.sql_type) for f in CANONICAL_FIELDS]
