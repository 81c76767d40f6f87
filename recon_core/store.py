"""The local store: one DuckDB file, its schema versioned by forward-only migrations.

The file lives at ``$XDG_DATA_HOME/recon-workbench/recon.duckdb`` (``~/.local/share/...``
when ``XDG_DATA_HOME`` is unset) unless a path is given. ``schema_version`` records every
migration applied; :func:`open_store` applies the missing ones in order, each in its own
transaction, so opening an older store upgrades it and re-opening a current one changes
nothing.

Adding a migration: append ``Migration(<next version>, "what it adds", (<SQL>, ...))`` (or
``apply=<function(con)>`` for work SQL alone cannot express) to :data:`MIGRATIONS`. Never edit
a released migration: stores in the field have already run it. Migration SQL is a snapshot of
the schema at that version, which is why migration 1 spells out the canonical leg columns
instead of deriving them from :mod:`recon_core.schema` (a test fails when the two drift; the
fix is a new migration).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from recon_core.errors import StoreError
from recon_core.sql import connect, execute

logger = logging.getLogger(__name__)

APP_DIR_NAME = "recon-workbench"
STORE_FILE_NAME = "recon.duckdb"


@dataclass(frozen=True)
class Migration:
    """One forward step of the store schema: SQL statements and/or a function of the connection."""

    version: int
    description: str
    statements: tuple[str, ...] = ()
    apply: Callable[[duckdb.DuckDBPyConnection], None] | None = None


SCHEMA_VERSION_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
)

_GENESYS_KEY_COLUMNS = "org_key VARCHAR NOT NULL, filter_hash VARCHAR NOT NULL, day DATE NOT NULL"

GENESYS_TABLES_V1: tuple[str, ...] = (
    # One row per (org, filter, UTC day) whose pages are all in; written last, in the same
    # transaction as the day's conversations and legs.
    "CREATE TABLE genesys_fetched_days ("
    f"{_GENESYS_KEY_COLUMNS}, filter_json VARCHAR NOT NULL, api_base_url VARCHAR NOT NULL, "
    "method VARCHAR NOT NULL, complete BOOLEAN NOT NULL, pages INTEGER NOT NULL, "
    "conversations INTEGER NOT NULL, legs INTEGER NOT NULL, held_back INTEGER NOT NULL, "
    "data_availability_date TIMESTAMP, fetched_at TIMESTAMP NOT NULL, "
    "PRIMARY KEY (org_key, filter_hash, day))",
    # Raw conversations exactly as received (compact JSON text), one row per conversation.
    "CREATE TABLE genesys_conversations ("
    f"{_GENESYS_KEY_COLUMNS}, conversation_id VARCHAR NOT NULL, ordinal INTEGER NOT NULL, "
    "conversation_start TIMESTAMP, conversation_end TIMESTAMP, raw_json VARCHAR NOT NULL, "
    "PRIMARY KEY (org_key, filter_hash, day, conversation_id))",
    # Pages of a day being fetched; moved into genesys_conversations when the day is complete.
    "CREATE TABLE genesys_staged_conversations ("
    f"{_GENESYS_KEY_COLUMNS}, page_number INTEGER NOT NULL, page_ordinal INTEGER NOT NULL, "
    "conversation_id VARCHAR NOT NULL, conversation_start TIMESTAMP, conversation_end TIMESTAMP, "
    "raw_json VARCHAR NOT NULL)",
    # Canonical call record columns as of schema version 1 (see the module doc).
    "CREATE TABLE genesys_legs ("
    f"{_GENESYS_KEY_COLUMNS}, record_id VARCHAR NOT NULL, call_id VARCHAR, sip_call_id VARCHAR, "
    "start_time_utc TIMESTAMP, start_time_alt_utc TIMESTAMP, time_flag VARCHAR, direction VARCHAR, "
    "source_number VARCHAR, source_is_e164 BOOLEAN, destination_number VARCHAR, destination_is_e164 BOOLEAN, "
    "duration_seconds DECIMAL(12,3), billed_seconds DECIMAL(12,3), cost_amount DECIMAL(18,8), "
    "rate_per_minute DECIMAL(18,8), currency VARCHAR, source_file VARCHAR, source_line BIGINT, "
    "flags VARCHAR, "
    "PRIMARY KEY (org_key, filter_hash, day, record_id))",
    "CREATE TABLE genesys_held_back ("
    f"{_GENESYS_KEY_COLUMNS}, conversation_id VARCHAR NOT NULL, source_line BIGINT NOT NULL, "
    "reason VARCHAR NOT NULL)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "Genesys Cloud: fetched days, raw conversations, staged pages, legs, held-back calls",
              GENESYS_TABLES_V1),
    # Alerts already sent (recon_core.alerts), so a re-run never sends the same alert twice.
    Migration(2, "alerts sent: one row per alert key with its payload and delivery outcome", (
        "CREATE TABLE alerts_sent (alert_key VARCHAR PRIMARY KEY, alert_type VARCHAR NOT NULL, "
        "severity VARCHAR NOT NULL, source VARCHAR NOT NULL, source_ref VARCHAR, payload_json VARCHAR NOT NULL, "
        "delivered BOOLEAN NOT NULL, deliveries_json VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL)",
    )),
    # Run store (recon_core.runs): every reconciliation run, its inputs, classified rows (exact
    # frames for byte-identical regeneration + a queryable row index), alerts sent for it, and
    # the calls left open at a billing-period edge for the next period's run to re-check.
    Migration(3, "run store: runs, inputs, classified rows, alert links, open period-boundary calls", (
        "CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, status VARCHAR NOT NULL, "
        "period VARCHAR, period_start TIMESTAMP, period_end TIMESTAMP, carrier VARCHAR, "
        "started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, created_utc VARCHAR, "
        "settings_json VARCHAR NOT NULL, summary_json VARCHAR, package_version VARCHAR NOT NULL, "
        "settings_hash VARCHAR NOT NULL, input_hash VARCHAR NOT NULL, config_hash VARCHAR, "
        "outbox_uri VARCHAR, error VARCHAR, matched BIGINT, discrepancies BIGINT, "
        "discrepancy_rate_pct DOUBLE, disputed_amount DECIMAL(38,8), currency VARCHAR)",
        "CREATE TABLE run_inputs (run_id VARCHAR NOT NULL, ordinal INTEGER NOT NULL, side VARCHAR NOT NULL, "
        "file_name VARCHAR NOT NULL, uri VARCHAR, sha256 VARCHAR NOT NULL, bytes BIGINT, "
        "PRIMARY KEY (run_id, ordinal))",
        "CREATE TABLE run_frames (run_id VARCHAR NOT NULL, table_name VARCHAR NOT NULL, row_count BIGINT NOT NULL, "
        "codec VARCHAR NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, table_name))",
        "CREATE TABLE run_rows (run_id VARCHAR NOT NULL, table_name VARCHAR NOT NULL, row_no BIGINT NOT NULL, "
        "bucket VARCHAR NOT NULL, invoice_record_id VARCHAR, invoice_call_id VARCHAR, cdr_record_id VARCHAR, "
        "cdr_call_id VARCHAR, invoice_start_utc TIMESTAMP, cdr_start_utc TIMESTAMP, direction VARCHAR, "
        "source_number VARCHAR, destination_number VARCHAR, invoice_cost DECIMAL(38,8), "
        "disputed_amount DECIMAL(38,8), reason VARCHAR, PRIMARY KEY (run_id, table_name, row_no))",
        "CREATE TABLE run_alerts (run_id VARCHAR NOT NULL, alert_key VARCHAR NOT NULL, sent BOOLEAN NOT NULL, "
        "created_at TIMESTAMP NOT NULL, PRIMARY KEY (run_id, alert_key))",
        "CREATE TABLE run_boundary_calls (run_id VARCHAR NOT NULL, carrier VARCHAR NOT NULL, "
        "period VARCHAR NOT NULL, edge_utc TIMESTAMP NOT NULL, side VARCHAR NOT NULL, record_id VARCHAR NOT NULL, "
        "call_id VARCHAR, start_utc TIMESTAMP, direction VARCHAR, far_end_number VARCHAR, "
        "status VARCHAR NOT NULL, resolved_by_run VARCHAR, outcome VARCHAR, "
        "PRIMARY KEY (run_id, side, record_id))",
    )),
    # Real-time vs batch (recon_core.rtbatch): collector snapshots, batch aggregates and which
    # batch intervals are final, results (one row per interval/queue/media/metric), the checkpoint,
    # and the editable tolerance policy and status map.
    Migration(4, "real-time vs batch: snapshots, batch aggregates, batch intervals, results, checkpoint, "
                 "policy, status map", (
        "CREATE TABLE rt_snapshots (captured_at TIMESTAMP NOT NULL, interval_start TIMESTAMP NOT NULL, "
        "interval_end TIMESTAMP NOT NULL, queue_id VARCHAR NOT NULL, media_type VARCHAR NOT NULL, "
        "metric VARCHAR NOT NULL, value DOUBLE, source VARCHAR NOT NULL, "
        "PRIMARY KEY (captured_at, interval_start, interval_end, queue_id, media_type, metric))",
        "CREATE TABLE rt_batch_aggregates (interval_start TIMESTAMP NOT NULL, interval_end TIMESTAMP NOT NULL, "
        "queue_id VARCHAR NOT NULL, media_type VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, "
        "source VARCHAR NOT NULL, fetched_at TIMESTAMP NOT NULL, "
        "PRIMARY KEY (interval_start, interval_end, queue_id, media_type, metric))",
        "CREATE TABLE rt_batch_intervals (granularity VARCHAR NOT NULL, interval_start TIMESTAMP NOT NULL, "
        "interval_end TIMESTAMP NOT NULL, state VARCHAR NOT NULL, note VARCHAR, attempts INTEGER NOT NULL, "
        "updated_at TIMESTAMP NOT NULL, PRIMARY KEY (granularity, interval_start))",
        "CREATE TABLE rt_batch_results (granularity VARCHAR NOT NULL, interval_start TIMESTAMP NOT NULL, "
        "interval_end TIMESTAMP NOT NULL, queue_id VARCHAR NOT NULL, media_type VARCHAR NOT NULL, "
        "metric VARCHAR NOT NULL, rt_value DOUBLE, batch_value DOUBLE, abs_variance DOUBLE, "
        "variance_percent DOUBLE, threshold DOUBLE, threshold_kind VARCHAR, status VARCHAR NOT NULL, "
        "likely_cause VARCHAR, run_id VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL, "
        "PRIMARY KEY (granularity, interval_start, queue_id, media_type, metric))",
        "CREATE TABLE rt_batch_checkpoint (granularity VARCHAR PRIMARY KEY, last_reconciled_end TIMESTAMP, "
        "run_id VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)",
        "CREATE TABLE rt_batch_policy (metric VARCHAR PRIMARY KEY, absolute DOUBLE NOT NULL, "
        "percent DOUBLE NOT NULL, updated_at TIMESTAMP NOT NULL)",
        "CREATE TABLE rt_batch_status_map (realtime_status VARCHAR PRIMARY KEY, "
        "batch_classification VARCHAR NOT NULL, updated_at TIMESTAMP NOT NULL)",
    )),
)


def latest_version(migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    return max((m.version for m in migrations), default=0)


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/recon-workbench/recon.duckdb`` (``~/.local/share`` when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / APP_DIR_NAME / STORE_FILE_NAME


class Store:
    """An open store: the DuckDB connection and where it came from. Use as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only

    @property
    def schema_version(self) -> int:
        return schema_version(self.con)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """``BEGIN`` ... ``COMMIT``; rolls back and re-raises on any exception (or interrupt)."""
        execute(self.con, "BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            execute(self.con, "ROLLBACK")
            raise
        execute(self.con, "COMMIT")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied (0 for a store without ``schema_version``)."""
    exists = execute(con, "SELECT count(*) FROM information_schema.tables "
                          "WHERE table_name = 'schema_version' AND table_schema = 'main'").fetchone()
    if not exists or not exists[0]:
        return 0
    row = execute(con, "SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations newer than the store, in version order; returns the versions applied.

    Each migration and its ``schema_version`` row commit together, or not at all.
    """
    execute(con, SCHEMA_VERSION_TABLE_SQL)
    current = schema_version(con)
    applied = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version <= current:
            continue
        execute(con, "BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                execute(con, statement)
            if migration.apply is not None:
                migration.apply(con)
            execute(con, "INSERT INTO schema_version VALUES (?, ?, now()::TIMESTAMP)",
                    [migration.version, migration.description])
        except BaseException:
            execute(con, "ROLLBACK")
            raise
        execute(con, "COMMIT")
        logger.info("store migrated to version %d: %s", migration.version, migration.description)
        applied.append(migration.version)
    return applied


def open_store(path: Path | str | None = None, read_only: bool = False, *,
               migrations: tuple[Migration, ...] = MIGRATIONS) -> Store:
    """Open (creating if needed) the store at ``path`` (default :func:`default_store_path`) and migrate it.

    ``":memory:"`` opens a throw-away in-memory store.

    Raises:
        StoreError: the file is in use by another program, or (read-only) missing or older
            than this version, or made by a newer version of the workbench.
    """
    memory = str(path) == ":memory:"
    target = None if memory else Path(path) if path is not None else default_store_path()
    if target is not None:
        if read_only and not target.exists():
            raise StoreError(f"store {target} does not exist yet (fetch some data first)")
        if not read_only:
            target.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = connect(":memory:" if target is None else str(target), read_only=read_only)
    except duckdb.IOException as exc:
        raise StoreError(f"store {target} cannot be opened ({exc}); is another workbench using it?") from exc
    latest = latest_version(migrations)
    try:
        version = schema_version(con)
        if version > latest:
            raise StoreError(f"store {target} was written by a newer version of the workbench "
                             f"(schema {version}; this version knows up to {latest}); upgrade the workbench")
        if version < latest:
            if read_only:
                raise StoreError(f"store {target} has schema {version} but this version needs {latest}; "
                                 "open it once without read-only to upgrade it")
            migrate(con, migrations)
    except BaseException:
        con.close()
        raise
    return Store(con, target, read_only)
