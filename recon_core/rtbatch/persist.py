"""The real-time vs batch tables of the store (migration 4): write and read them.

Every write is an upsert keyed like the table's primary key, so running anything twice leaves
the same rows (no duplicates). Timestamps are stored as naive UTC ``TIMESTAMP``.

* ``rt_snapshots`` - collector snapshots (tidy + ``captured_at``), :func:`save_snapshots`;
* ``rt_batch_aggregates`` / ``rt_batch_intervals`` - batch values and which batch intervals are
  final (``complete``) or still ``pending``, :func:`save_batch_aggregates`, :func:`mark_batch_intervals`;
* ``rt_batch_results`` + ``rt_batch_checkpoint`` - :func:`save_results`;
* ``rt_batch_policy`` / ``rt_batch_status_map`` - the editable tables.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import duckdb
import pandas as pd

from recon_core.rtbatch.engine import RtBatchResult
from recon_core.rtbatch.metrics import MetricPolicy, StatusMap, Tolerance
from recon_core.rtbatch.sources import SNAPSHOT_COLUMNS, TIDY_COLUMNS
from recon_core.sql import execute, quote_ident

logger = logging.getLogger(__name__)

SNAPSHOTS_TABLE = "rt_snapshots"
BATCH_TABLE = "rt_batch_aggregates"
STATE_COMPLETE = "complete"
STATE_PENDING = "pending"


def _naive_utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.tz_convert("UTC").dt.tz_localize(None)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _with_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, sql_of: str) -> int:
    name = f"_rtbatch_{uuid.uuid4().hex[:8]}"
    con.register(name, frame)
    try:
        execute(con, sql_of.format(frame=quote_ident(name)))
    finally:
        con.unregister(name)
    return len(frame)


def upsert_snapshots_sql(frame: str) -> str:
    columns = ", ".join(SNAPSHOT_COLUMNS)
    return (f"INSERT INTO {SNAPSHOTS_TABLE} ({columns}, source) SELECT {columns}, source FROM {frame} "
            "ON CONFLICT DO UPDATE SET value = excluded.value, source = excluded.source")


def save_snapshots(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, *, source: str) -> int:
    """Add snapshot rows (tidy + ``captured_at``); the same snapshot again replaces itself. Returns rows."""
    if frame.empty:
        return 0
    out = frame[list(SNAPSHOT_COLUMNS)].copy()
    for column in ("captured_at", "interval_start", "interval_end"):
        out[column] = _naive_utc(out[column])
    out["source"] = source
    return _with_frame(con, out, upsert_snapshots_sql("{frame}"))


def upsert_batch_sql(frame: str) -> str:
    columns = ", ".join(TIDY_COLUMNS)
    return (f"INSERT INTO {BATCH_TABLE} ({columns}, source, fetched_at) SELECT {columns}, source, fetched_at "
            f"FROM {frame} ON CONFLICT DO UPDATE SET value = excluded.value, source = excluded.source, "
            "fetched_at = excluded.fetched_at")


def save_batch_aggregates(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, *, source: str) -> int:
    """Upsert batch values (tidy). Returns rows written."""
    if frame.empty:
        return 0
    out = frame[list(TIDY_COLUMNS)].copy()
    for column in ("interval_start", "interval_end"):
        out[column] = _naive_utc(out[column])
    out["source"] = source
    out["fetched_at"] = _now()
    return _with_frame(con, out, upsert_batch_sql("{frame}"))


def mark_batch_intervals(con: duckdb.DuckDBPyConnection, granularity: str,
                         intervals: Iterable[tuple[datetime, datetime]], state: str, note: str = "") -> None:
    """Record the batch state of intervals (``complete`` or ``pending``); attempts count up."""
    for start, end in intervals:
        execute(con, "INSERT INTO rt_batch_intervals VALUES (?, ?, ?, ?, ?, 1, ?) "
                     "ON CONFLICT DO UPDATE SET state = excluded.state, note = excluded.note, "
                     "attempts = rt_batch_intervals.attempts + 1, updated_at = excluded.updated_at",
                [granularity, _naive(start), _naive(end), state, note, _now()])


def batch_interval_states(con: duckdb.DuckDBPyConnection, granularity: str) -> dict[datetime, str]:
    """Interval start (aware UTC) -> ``complete`` / ``pending`` for ``granularity``."""
    rows = execute(con, "SELECT interval_start, state FROM rt_batch_intervals WHERE granularity = ?",
                   [granularity]).fetchall()
    return {r[0].replace(tzinfo=UTC): str(r[1]) for r in rows}


def _naive(when: datetime) -> datetime:
    ts = pd.Timestamp(when)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.tz_localize(None).to_pydatetime()


def upsert_results_sql(frame: str) -> str:
    return (
        "INSERT INTO rt_batch_results (granularity, interval_start, interval_end, queue_id, media_type, metric, "
        "rt_value, batch_value, abs_variance, variance_percent, threshold, threshold_kind, status, likely_cause, "
        "run_id, updated_at) SELECT granularity, interval_start, interval_end, queue_id, media_type, metric, "
        "rt_value, batch_value, abs_variance, variance_percent, threshold, threshold_kind, status, likely_cause, "
        f"run_id, updated_at FROM {frame} ON CONFLICT DO UPDATE SET interval_end = excluded.interval_end, "
        "rt_value = excluded.rt_value, batch_value = excluded.batch_value, abs_variance = excluded.abs_variance, "
        "variance_percent = excluded.variance_percent, threshold = excluded.threshold, "
        "threshold_kind = excluded.threshold_kind, status = excluded.status, likely_cause = excluded.likely_cause, "
        "run_id = excluded.run_id, updated_at = excluded.updated_at"
    )


def save_results(con: duckdb.DuckDBPyConnection, result: RtBatchResult, run_id: str) -> int:
    """Upsert the result rows and move the checkpoint forward (never back). Returns rows written."""
    granularity = result.settings.granularity
    frame = result.variances.drop(columns=["kind", "unit", "threshold_percent"]).copy()
    for column in ("interval_start", "interval_end"):
        frame[column] = _naive_utc(frame[column])
    frame["likely_cause"] = frame["likely_cause"].astype("object")
    frame["threshold_kind"] = frame["threshold_kind"].astype("object")
    frame["granularity"] = granularity
    frame["run_id"] = run_id
    frame["updated_at"] = _now()
    written = _with_frame(con, frame, upsert_results_sql("{frame}")) if not frame.empty else 0
    if result.checkpoint is not None:
        previous = load_checkpoint(con, granularity)
        if previous is None or result.checkpoint > previous:
            execute(con, "INSERT INTO rt_batch_checkpoint VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                         "last_reconciled_end = excluded.last_reconciled_end, run_id = excluded.run_id, "
                         "updated_at = excluded.updated_at",
                    [granularity, _naive(result.checkpoint), run_id, _now()])
    return written


def load_checkpoint(con: duckdb.DuckDBPyConnection, granularity: str) -> datetime | None:
    """The end of the last fully reconciled interval (aware UTC), or None."""
    row = execute(con, "SELECT last_reconciled_end FROM rt_batch_checkpoint WHERE granularity = ?",
                  [granularity]).fetchone()
    return row[0].replace(tzinfo=UTC) if row and row[0] is not None else None


def load_results(con: duckdb.DuckDBPyConnection, granularity: str | None = None) -> pd.DataFrame:
    """Stored result rows (all granularities when None), ordered."""
    where, params = ("WHERE granularity = ?", [granularity]) if granularity else ("", [])
    return execute(con, f"SELECT * FROM rt_batch_results {where} ORDER BY granularity, interval_start, queue_id, "
                        "media_type, metric", params).fetchdf()


def save_policy_to_store(con: duckdb.DuckDBPyConnection, policy: MetricPolicy) -> None:
    """Replace the stored tolerance overrides with ``policy``'s."""
    execute(con, "DELETE FROM rt_batch_policy")
    for metric, tol in policy.overrides:
        execute(con, "INSERT INTO rt_batch_policy VALUES (?, ?, ?, ?)", [metric, tol.absolute, tol.percent, _now()])


def load_policy_from_store(con: duckdb.DuckDBPyConnection) -> MetricPolicy:
    policy = MetricPolicy()
    for metric, absolute, percent in execute(con, "SELECT metric, absolute, percent FROM rt_batch_policy "
                                                  "ORDER BY metric").fetchall():
        policy = policy.with_tolerance(str(metric), Tolerance(float(absolute), float(percent)))
    return policy


def save_status_map_to_store(con: duckdb.DuckDBPyConnection, status_map: StatusMap) -> None:
    """Replace the stored custom status entries with ``status_map``'s."""
    execute(con, "DELETE FROM rt_batch_status_map")
    for status, target in status_map.entries:
        execute(con, "INSERT INTO rt_batch_status_map VALUES (?, ?, ?)", [status, target, _now()])


def load_status_map_from_store(con: duckdb.DuckDBPyConnection) -> StatusMap:
    out = StatusMap()
    for status, target in execute(con, "SELECT realtime_status, batch_classification FROM rt_batch_status_map "
                                       "ORDER BY realtime_status").fetchall():
        out = out.with_entry(str(status), str(target))
    return out
