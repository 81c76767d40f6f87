"""Store migration 2 (alerts sent): a version-1 store is upgraded in place and keeps its data."""

from __future__ import annotations

from pathlib import Path

import duckdb

from recon_core.sql import execute
from recon_core.store import MIGRATIONS, open_store

ALERTS_SENT_COLUMNS = [
    ("alert_key", "VARCHAR"), ("alert_type", "VARCHAR"), ("severity", "VARCHAR"), ("source", "VARCHAR"),
    ("source_ref", "VARCHAR"), ("payload_json", "VARCHAR"), ("delivered", "BOOLEAN"),
    ("deliveries_json", "VARCHAR"), ("created_at", "TIMESTAMP"),
]


def test_a_version_1_store_migrates_through_2(tmp_path: Path) -> None:
    path = tmp_path / "recon.duckdb"
    version_1 = tuple(m for m in MIGRATIONS if m.version == 1)
    with open_store(path, migrations=version_1) as store:
        assert store.schema_version == 1
        execute(store.con, "INSERT INTO genesys_held_back VALUES ('o', 'f', DATE '2026-10-01', 'c', 1, 'r')")
    with open_store(path) as store:
        assert store.schema_version >= 2
        columns = execute(store.con, "SELECT column_name, data_type FROM information_schema.columns "
                                     "WHERE table_name = 'alerts_sent' ORDER BY ordinal_position").fetchall()
        assert columns == ALERTS_SENT_COLUMNS
        assert execute(store.con, "SELECT count(*) FROM genesys_held_back").fetchone() == (1,)
        execute(store.con, "INSERT INTO alerts_sent VALUES ('k', 't', 's', 'billing', 'run-1', '{}', true, '[]', "
                           "TIMESTAMP '2026-11-01 00:00:00')")
    con = duckdb.connect(str(path), read_only=True)
    try:
        described = con.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()
        # The alert key is the primary key: the same alert cannot be recorded twice.
        constraints = con.execute("SELECT constraint_type FROM duckdb_constraints() "
                                  "WHERE table_name = 'alerts_sent' AND constraint_type = 'PRIMARY KEY'").fetchall()
    finally:
        con.close()
    assert [v for v, _ in described][:2] == [1, 2]
    assert described[1][1].startswith("alerts sent")
    assert constraints == [("PRIMARY KEY",)]
