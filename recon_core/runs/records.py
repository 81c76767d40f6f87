"""Runs in the store: start, complete or fail a run; list, show and reload them.

A run is recorded in two steps so an interruption is visible: :func:`begin_run` writes the
``running`` row, :func:`complete_run` writes the summary, the inputs, the classified rows and
the exact frames and flips the status to ``complete`` in one transaction (nothing is half
written: a run that died stays ``running`` or becomes ``failed``, never ``complete``).
:func:`load_result` rebuilds the :class:`~recon_core.reconcile.ReconResult` from the stored
frames, so the reports regenerate byte-identically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from recon_core import __version__
from recon_core.errors import RunNotFoundError
from recon_core.runs.frames import FRAME_CODEC, decode_frame, encode_frame
from recon_core.sql import execute
from recon_core.store import Store

logger = logging.getLogger(__name__)

STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
KIND_RECONCILE = "reconcile"
KIND_PIPELINE = "pipeline"
KIND_APP = "app"

RESULT_TABLES = ("matched", "discrepancies", "excluded", "rejected")
ASSIGNMENT_TABLES = ("matches", "unmatched_invoice", "unmatched_cdr")
_ASSIGNMENT_PREFIX = "assignment."

ROW_INDEX_COLUMNS = (
    "run_id", "table_name", "row_no", "bucket", "invoice_record_id", "invoice_call_id", "cdr_record_id",
    "cdr_call_id", "invoice_start_utc", "cdr_start_utc", "direction", "source_number", "destination_number",
    "invoice_cost", "disputed_amount", "reason",
)


@dataclass(frozen=True)
class RunInput:
    """One input file of a run: which side, its name, where it came from and its SHA-256."""

    side: str
    file_name: str
    sha256: str
    bytes: int | None = None
    uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "file_name": self.file_name, "sha256": self.sha256, "bytes": self.bytes,
                "uri": self.uri}


@dataclass(frozen=True)
class RunRecord:
    """A run as the store keeps it (the classified rows are loaded separately)."""

    run_id: str
    kind: str
    status: str
    started_at: datetime
    settings: dict[str, Any]
    package_version: str
    settings_hash: str
    input_hash: str
    summary: dict[str, Any] | None = None
    period: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    carrier: str | None = None
    finished_at: datetime | None = None
    created_utc: str | None = None
    config_hash: str | None = None
    outbox_uri: str | None = None
    error: str | None = None
    inputs: tuple[RunInput, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {"run_id": self.run_id, "kind": self.kind, "status": self.status, "period": self.period,
                "period_start": when(self.period_start), "period_end": when(self.period_end),
                "carrier": self.carrier, "started_at": when(self.started_at), "finished_at": when(self.finished_at),
                "created_utc": self.created_utc, "package_version": self.package_version,
                "settings_hash": self.settings_hash, "input_hash": self.input_hash, "config_hash": self.config_hash,
                "outbox_uri": self.outbox_uri, "error": self.error, "settings": self.settings,
                "inputs": [i.to_dict() for i in self.inputs], "summary": self.summary}


def canonical_json(value: Any) -> str:
    """Sorted-key compact JSON (``str`` for Decimals and dates): the text that hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def settings_hash(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the settings that decide a result."""
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def input_hash(inputs: Sequence[RunInput]) -> str:
    """SHA-256 over the inputs' sides and content hashes (names and places do not matter)."""
    keys = sorted((i.side, i.sha256) for i in inputs)
    return hashlib.sha256(canonical_json(keys).encode()).hexdigest()


def inputs_from_summary(summary: Mapping[str, Any]) -> tuple[RunInput, ...]:
    """The :class:`RunInput` list of a result summary's ``inputs`` (as written by the engine)."""
    found = []
    for item in summary.get("inputs", []):
        path = str(item.get("file", ""))
        found.append(RunInput(str(item.get("side", "")), Path(path).name, str(item.get("sha256", "")),
                              int(item["bytes"]) if item.get("bytes") is not None else None,
                              str(item.get("uri") or path) or None))
    return tuple(found)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def begin_run(store: Store, run_id: str, *, kind: str, settings: Mapping[str, Any], inputs: Sequence[RunInput],
              period: str | None = None, period_start: datetime | None = None, period_end: datetime | None = None,
              carrier: str | None = None, config_hash: str | None = None, outbox_uri: str | None = None) -> None:
    """Record ``run_id`` as ``running`` with its settings and inputs (one transaction)."""
    with store.transaction() as con:
        execute(con, "INSERT INTO runs (run_id, kind, status, period, period_start, period_end, carrier, started_at, "
                     "settings_json, package_version, settings_hash, input_hash, config_hash, outbox_uri) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, kind, STATUS_RUNNING, period, _naive_utc(period_start), _naive_utc(period_end), carrier,
                 _now(), canonical_json(settings), __version__, settings_hash(settings), input_hash(inputs),
                 config_hash, outbox_uri])
        _insert_inputs(con, run_id, inputs)


def _insert_inputs(con: Any, run_id: str, inputs: Sequence[RunInput]) -> None:
    execute(con, "DELETE FROM run_inputs WHERE run_id = ?", [run_id])
    for ordinal, item in enumerate(inputs):
        execute(con, "INSERT INTO run_inputs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, ordinal, item.side, item.file_name, item.uri, item.sha256, item.bytes])


def fail_run(store: Store, run_id: str, error: str) -> None:
    """Mark a ``running`` run ``failed`` with the reason (a complete run is never downgraded)."""
    with store.transaction() as con:
        execute(con, "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ? AND status = ?",
                [STATUS_FAILED, _now(), error[:2000], run_id, STATUS_RUNNING])


def _text_column(frame: pd.DataFrame, name: str) -> pa.Array:
    if name not in frame.columns:
        return pa.nulls(len(frame), pa.string())
    values = [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)
              for v in frame[name].tolist()]
    return pa.array(values, pa.string())


def _time_column(frame: pd.DataFrame, name: str) -> pa.Array:
    if name not in frame.columns:
        return pa.nulls(len(frame), pa.timestamp("us"))
    values = pd.to_datetime(frame[name]).to_numpy(dtype="datetime64[us]")
    return pa.array(values, pa.timestamp("us"), from_pandas=True)


def _money_column(frame: pd.DataFrame, name: str) -> pa.Array:
    if name not in frame.columns:
        return pa.nulls(len(frame), pa.decimal128(38, 8))
    values: list[Decimal | None] = []
    for v in frame[name].tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            values.append(None)
        else:
            values.append(Decimal(str(v)).quantize(Decimal("0.00000001")))
    return pa.array(values, pa.decimal128(38, 8))


def row_index(run_id: str, table_name: str, frame: pd.DataFrame) -> pa.Table:
    """The queryable index of one classified table: bucket and identities of each row."""
    if table_name == "matched":
        bucket = _text_column(frame, "status")
    elif table_name == "discrepancies":
        bucket = _text_column(frame, "category")
    else:
        bucket = pa.array([f"{table_name.upper()}" for _ in range(len(frame))], pa.string())
    side = frame["side"].tolist() if "side" in frame.columns else [None] * len(frame)

    def by_side(wanted: str, own: str, column: str) -> pa.Array:
        if column in frame.columns:
            return _text_column(frame, column)
        if own not in frame.columns:
            return pa.nulls(len(frame), pa.string())
        return pa.array([str(v) if s == wanted and v is not None and v == v else None
                         for s, v in zip(side, frame[own].tolist(), strict=True)], pa.string())

    def time_by_side(wanted: str, column: str) -> pa.Array:
        if column in frame.columns:
            return _time_column(frame, column)
        if "start_time_utc" not in frame.columns:
            return pa.nulls(len(frame), pa.timestamp("us"))
        times = _time_column(frame, "start_time_utc").to_pylist()
        return pa.array([t if s == wanted else None for s, t in zip(side, times, strict=True)], pa.timestamp("us"))

    columns = {
        "run_id": pa.array([run_id] * len(frame), pa.string()),
        "table_name": pa.array([table_name] * len(frame), pa.string()),
        "row_no": pa.array(range(len(frame)), pa.int64()),
        "bucket": bucket,
        "invoice_record_id": by_side("invoice", "record_id", "invoice_record_id"),
        "invoice_call_id": by_side("invoice", "call_id", "invoice_call_id"),
        "cdr_record_id": by_side("cdr", "record_id", "cdr_record_id"),
        "cdr_call_id": by_side("cdr", "call_id", "cdr_call_id"),
        "invoice_start_utc": time_by_side("invoice", "invoice_start_utc"),
        "cdr_start_utc": time_by_side("cdr", "cdr_start_utc"),
        "direction": _text_column(frame, "direction"),
        "source_number": _text_column(frame, "source_number"),
        "destination_number": _text_column(frame, "destination_number"),
        "invoice_cost": _money_column(frame, "invoice_cost") if "invoice_cost" in frame.columns
        else _money_column(frame, "cost_amount"),
        "disputed_amount": _money_column(frame, "disputed_amount"),
        "reason": _text_column(frame, "reason"),
    }
    return pa.table(columns)


def complete_run(store: Store, run_id: str, result: Any, *, outbox_uri: str | None = None,
                 extra_statements: Sequence[tuple[str, list[Any]]] = ()) -> None:
    """Write the result of ``run_id`` and mark it ``complete``, all in one transaction.

    ``extra_statements`` (SQL, parameters) run in the same transaction (e.g. boundary calls),
    so they land together with the run or not at all.
    """
    summary = result.summary
    frames: dict[str, pd.DataFrame] = {name: getattr(result, name) for name in RESULT_TABLES}
    assignment = getattr(result, "assignment", None)
    if assignment is not None:
        for name in ASSIGNMENT_TABLES:
            frames[_ASSIGNMENT_PREFIX + name] = getattr(assignment, name)
    encoded = {name: encode_frame(frame) for name, frame in frames.items()}
    index = pa.concat_tables([row_index(run_id, name, getattr(result, name)) for name in RESULT_TABLES])
    counts, money, rates = summary.get("counts", {}), summary.get("money", {}), summary.get("rates", {})
    discrepancies = len(result.discrepancies)
    currency = money.get("currency")
    disputed = money.get("disputed_amount")
    with store.transaction() as con:
        execute(con, "DELETE FROM run_frames WHERE run_id = ?", [run_id])
        execute(con, "DELETE FROM run_rows WHERE run_id = ?", [run_id])
        for name, data in encoded.items():
            execute(con, "INSERT INTO run_frames VALUES (?, ?, ?, ?, ?)",
                    [run_id, name, len(frames[name]), FRAME_CODEC, data])
        con.register("recon_run_rows_new", index)
        try:
            cols = ", ".join(ROW_INDEX_COLUMNS)
            execute(con, f"INSERT INTO run_rows ({cols}) SELECT {cols} FROM recon_run_rows_new")
        finally:
            con.unregister("recon_run_rows_new")
        execute(con, "UPDATE runs SET status = ?, finished_at = ?, created_utc = ?, summary_json = ?, "
                     "outbox_uri = coalesce(?, outbox_uri), matched = ?, discrepancies = ?, "
                     "discrepancy_rate_pct = ?, disputed_amount = ?, currency = ?, error = NULL WHERE run_id = ?",
                [STATUS_COMPLETE, _now(), summary.get("created_utc"), json.dumps(summary, default=str), outbox_uri,
                 int(counts.get("matched", len(result.matched))), discrepancies,
                 float(rates.get("discrepancy_rate_pct", 0.0)),
                 Decimal(str(disputed)) if disputed not in (None, "") else None,
                 currency if isinstance(currency, str) else ",".join(currency or []), run_id])
        for sql, params in extra_statements:
            execute(con, sql, params)


def run_settings(summary: Mapping[str, Any], profile: Any = None, **extra: Any) -> dict[str, Any]:
    """What a run records as its settings: the engine's settings, the mapping profile, and ``extra``
    (e.g. the period edges), so ``verify`` can re-run it exactly."""
    settings: dict[str, Any] = {"reconcile": summary.get("settings", {}),
                                "profile": profile.to_dict() if profile is not None else None}
    settings.update(extra)
    return settings


def record_result(store: Store, result: Any, *, kind: str = KIND_RECONCILE, inputs: Sequence[RunInput] | None = None,
                  outbox_uri: str | None = None, period: str | None = None, carrier: str | None = None,
                  profile: Any = None) -> RunRecord:
    """Record a finished result in one go (``begin_run`` + ``complete_run``); returns the stored run.

    The run id and creation time are the summary's (stamp the result first); ``profile`` (the
    mapping profile the invoice was read with) is recorded for ``verify``.
    """
    run_id = str(result.summary["run_id"])
    begin_run(store, run_id, kind=kind, settings=run_settings(result.summary, profile),
              inputs=inputs if inputs is not None else inputs_from_summary(result.summary),
              period=period, carrier=carrier, outbox_uri=outbox_uri)
    complete_run(store, run_id, result, outbox_uri=outbox_uri)
    return get_run(store, run_id)


_RUN_COLUMNS = ("run_id, kind, status, started_at, settings_json, package_version, settings_hash, input_hash, "
                "summary_json, period, period_start, period_end, carrier, finished_at, created_utc, config_hash, "
                "outbox_uri, error")


def _record(row: Sequence[Any], inputs: tuple[RunInput, ...]) -> RunRecord:
    (run_id, kind, status, started_at, settings_json, version, s_hash, i_hash, summary_json, period, period_start,
     period_end, carrier, finished_at, created_utc, config_hash, outbox_uri, error) = row
    return RunRecord(run_id, kind, status, started_at, json.loads(settings_json), version, s_hash, i_hash,
                     json.loads(summary_json) if summary_json else None, period, period_start, period_end, carrier,
                     finished_at, created_utc, config_hash, outbox_uri, error, inputs)


def _inputs_of(store: Store, run_ids: Sequence[str]) -> dict[str, tuple[RunInput, ...]]:
    if not run_ids:
        return {}
    rows = execute(store.con, "SELECT run_id, side, file_name, sha256, bytes, uri FROM run_inputs "
                              "WHERE list_contains(?, run_id) ORDER BY run_id, ordinal", [list(run_ids)]).fetchall()
    found: dict[str, list[RunInput]] = {}
    for run_id, side, name, sha, size, uri in rows:
        found.setdefault(run_id, []).append(RunInput(side, name, sha, size, uri))
    return {k: tuple(v) for k, v in found.items()}


def list_runs(store: Store, *, status: str | None = None, period: str | None = None,
              carrier: str | None = None) -> list[RunRecord]:
    """Runs newest first (by start time), optionally only one status / period / carrier."""
    where, params = [], []
    for column, value in (("status", status), ("period", period), ("carrier", carrier)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = execute(store.con, f"SELECT {_RUN_COLUMNS} FROM runs {clause} ORDER BY started_at DESC, run_id DESC",
                   params).fetchall()
    inputs = _inputs_of(store, [r[0] for r in rows])
    return [_record(r, inputs.get(r[0], ())) for r in rows]


def get_run(store: Store, run_id: str) -> RunRecord:
    """The run ``run_id`` (a unique prefix of at least 6 characters is enough).

    Raises:
        RunNotFoundError: no such run, or the prefix names several.
    """
    rows = execute(store.con, f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not rows and len(run_id) >= 6:
        rows = execute(store.con, f"SELECT {_RUN_COLUMNS} FROM runs WHERE starts_with(run_id, ?)",
                       [run_id]).fetchall()
        if len(rows) > 1:
            raise RunNotFoundError(f"run id {run_id!r} is ambiguous: it starts {len(rows)} runs "
                                   f"({', '.join(sorted(r[0] for r in rows)[:5])}); give more of it")
    if not rows:
        raise RunNotFoundError(f"no run {run_id!r} in the store; `python -m recon_core runs list` shows the run ids")
    found_id = rows[0][0]
    return _record(rows[0], _inputs_of(store, [found_id]).get(found_id, ()))


def load_frames(store: Store, run_id: str) -> dict[str, pd.DataFrame]:
    """Every stored frame of a run by name (``matched`` ..., ``assignment.matches`` ...)."""
    rows = execute(store.con, "SELECT table_name, codec, data FROM run_frames WHERE run_id = ?", [run_id]).fetchall()
    frames = {}
    for name, codec, data in rows:
        if codec != FRAME_CODEC:
            raise RunNotFoundError(f"run {run_id} stores its rows as {codec!r}, which this version cannot read")
        frames[str(name)] = decode_frame(bytes(data))
    return frames


def load_result(store: Store, run_id: str) -> Any:
    """The :class:`~recon_core.reconcile.ReconResult` of a complete run, exactly as it was recorded.

    Raises:
        RunNotFoundError: no such run, or it is not complete (running, failed).
    """
    from recon_core.match.assign import MatchAssignment
    from recon_core.reconcile import ReconResult

    record = get_run(store, run_id)
    if record.status != STATUS_COMPLETE or record.summary is None:
        raise RunNotFoundError(f"run {record.run_id} is {record.status}, so it has no result to show"
                               + (f" ({record.error})" if record.error else ""))
    frames = load_frames(store, record.run_id)
    missing = [n for n in RESULT_TABLES if n not in frames]
    if missing:
        raise RunNotFoundError(f"run {record.run_id} lacks its {', '.join(missing)} rows in the store")
    parts = {n: frames.get(_ASSIGNMENT_PREFIX + n, pd.DataFrame()) for n in ASSIGNMENT_TABLES}
    tolerance = float(record.summary.get("settings", {}).get("time_tolerance_s") or 0.0)
    assignment = MatchAssignment(tolerance, parts["matches"], parts["unmatched_invoice"], parts["unmatched_cdr"])
    return ReconResult(frames["matched"], frames["discrepancies"], frames["excluded"], frames["rejected"],
                       record.summary, assignment)


def run_rows(store: Store, run_id: str) -> pd.DataFrame:
    """The queryable row index of a run (bucket and identities per classified row)."""
    cols = ", ".join(ROW_INDEX_COLUMNS)
    return execute(store.con, f"SELECT {cols} FROM run_rows WHERE run_id = ? ORDER BY table_name, row_no",
                   [run_id]).to_arrow_table().to_pandas()


def find_complete_run(store: Store, *, input_hash_value: str, settings_hash_value: str,
                      carrier: str | None = None) -> RunRecord | None:
    """The newest complete run with these inputs and settings (the pipeline's skip check)."""
    rows = execute(store.con, "SELECT run_id FROM runs WHERE status = ? AND input_hash = ? AND settings_hash = ? "
                              "AND carrier IS NOT DISTINCT FROM ? ORDER BY started_at DESC LIMIT 1",
                   [STATUS_COMPLETE, input_hash_value, settings_hash_value, carrier]).fetchall()
    return get_run(store, rows[0][0]) if rows else None


def link_alert(store: Store, run_id: str, alert_key: str, sent: bool) -> None:
    """Remember that ``alert_key`` was raised for ``run_id`` (its payload is in ``alerts_sent``)."""
    with store.transaction() as con:
        execute(con, "INSERT OR REPLACE INTO run_alerts VALUES (?, ?, ?, ?)", [run_id, alert_key, sent, _now()])
