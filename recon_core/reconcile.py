"""Billing reconciliation: invoice rows vs CDR legs, every row in exactly one bucket.

Flow (each step a function of its own, the whole run in :func:`reconcile`):

1. **Exclusion by rule** — a row with zero duration and no charge is a failed attempt; it is
   excluded before matching and reported in ``ExcludedRows`` with its rule, never dropped.
   A zero-duration invoice row that *does* carry a charge is not excluded: it goes through
   matching, so a charge for a call that never connected is disputed.
2. **Matching** — :mod:`recon_core.match`: SIP Call-ID / call id first, then a one-to-one
   maximum matching within the time tolerance on ``direction`` + the far-end number, with
   the contact-center number as tie-breaker. Candidates are generated once at the widest
   tolerance (:func:`prepare`); any tolerance up to it is then re-derived without touching
   the inputs again (:func:`classify`), which is what makes the app's sliders instant.
3. **Rating** — :mod:`recon_core.rating`: the expected cost of each matched pair from the CDR
   duration; ``MATCHED`` when ``|Δ| ≤ max(abs_tolerance, pct_tolerance × invoice cost)``,
   ``MATCHED_ROUNDING_VARIANCE`` when the carrier's own increment fully explains the
   difference, else ``COST_VARIANCE`` (over- or under-billed). A pair whose cost cannot be
   checked (no invoice cost, no rate) stays matched with ``cost_checked = false`` and says why.
4. **Unmatched rows** — an invoice row that repeats a matched invoice row (same direction and
   numbers, start within the tolerance, same duration and cost) is a ``DUPLICATE_CHARGE``;
   any other unmatched invoice row is ``MISSING_IN_CDR``; an unmatched CDR leg is
   ``MISSING_IN_INVOICE``. Each carries the matcher's explanation.
5. **Ledger** — per side, rows read = matched + in discrepancies + excluded + rejected; a
   result whose ledger does not balance raises :class:`~recon_core.errors.LedgerError`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recon_core import __version__
from recon_core.errors import InputFileError, LedgerError
from recon_core.match.assign import MatchAssignment, assign_one_to_one
from recon_core.match.candidates import CandidateSet, build_candidates_with_rows
from recon_core.match.settings import MatchSettings
from recon_core.rating import (
    STATUS_COST_UNVERIFIED,
    STATUS_COST_VARIANCE,
    STATUS_MATCHED,
    STATUS_ROUNDING_VARIANCE,
    RatingSettings,
    rate_pairs_table,
    validate_rating_settings,
)
from recon_core.schema import CANONICAL_COLUMNS, CANONICAL_FIELDS, REJECT_COLUMNS
from recon_core.sql import connect, execute, quote_ident, quote_literal

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

CATEGORY_COST_VARIANCE = "COST_VARIANCE"
CATEGORY_MISSING_IN_CDR = "MISSING_IN_CDR"
CATEGORY_MISSING_IN_INVOICE = "MISSING_IN_INVOICE"
CATEGORY_DUPLICATE_CHARGE = "DUPLICATE_CHARGE"
DISCREPANCY_CATEGORIES = (
    CATEGORY_COST_VARIANCE, CATEGORY_MISSING_IN_CDR, CATEGORY_MISSING_IN_INVOICE, CATEGORY_DUPLICATE_CHARGE,
)
# Set by the unattended pipeline after classification (recon_core.runs.boundary): a call missing on one
# side within the time tolerance of the billing period's edge. Reported, not disputed (so not part of the
# discrepancy count or rate), and re-checked by the next period's run.
CATEGORY_PERIOD_BOUNDARY = "PERIOD_BOUNDARY"
REPORTED_CATEGORIES = (*DISCREPANCY_CATEGORIES, CATEGORY_PERIOD_BOUNDARY)
MATCHED_STATUSES = (STATUS_MATCHED, STATUS_ROUNDING_VARIANCE)

RULE_ZERO_DURATION = "zero_duration"
RULE_ZERO_DURATION_TEXT = "zero duration and no charge: a failed attempt, never billable"

MATCHED_COLUMNS = (
    "status", "invoice_record_id", "invoice_call_id", "cdr_record_id", "cdr_call_id",
    "invoice_start_utc", "cdr_start_utc", "time_offset_s", "direction", "source_number",
    "destination_number", "invoice_duration_s", "cdr_duration_s", "invoice_billed_s", "invoice_cost",
    "expected_cost", "cost_delta", "currency", "rate_per_minute_used", "rate_source", "increment_used",
    "cost_checked", "billing_direction", "ambiguous", "match_method", "invoice_reading", "reason",
    "invoice_source_file", "invoice_source_line", "cdr_source_file", "cdr_source_line",
)
DISCREPANCY_COLUMNS = (
    "category", "invoice_record_id", "invoice_call_id", "cdr_record_id", "cdr_call_id",
    "invoice_start_utc", "cdr_start_utc", "time_offset_s", "direction", "source_number",
    "destination_number", "invoice_duration_s", "cdr_duration_s", "invoice_cost", "expected_cost",
    "cost_delta", "disputed_amount", "currency", "billing_direction", "duplicate_of", "nearest_record_id",
    "reason", "invoice_source_file", "invoice_source_line", "cdr_source_file", "cdr_source_line",
)
EXCLUDED_COLUMNS = (
    "side", "record_id", "call_id", "start_time_utc", "direction", "source_number", "destination_number",
    "duration_seconds", "cost_amount", "rule", "reason", "source_file", "source_line",
)
REJECTED_COLUMNS = ("side",) + REJECT_COLUMNS


@dataclass(frozen=True)
class ReconcileSettings:
    """Everything that decides a result (recorded in ``summary.json`` for the auditor)."""

    match: MatchSettings = field(default_factory=MatchSettings)
    rating: RatingSettings = field(default_factory=RatingSettings)
    exclude_zero_duration: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "match": self.match.to_dict(),
            "rating": self.rating.to_dict(),
            "exclude_zero_duration": self.exclude_zero_duration,
        }


@dataclass(frozen=True)
class SideInput:
    """One side of the reconciliation: canonical rows in a DuckDB table, plus its rejects."""

    name: str
    table: str
    rejects: pd.DataFrame
    files: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedRun:
    """Inputs loaded, exclusions applied and candidates generated at the widest tolerance.

    :func:`classify` turns it into a :class:`ReconResult` for any tolerance and rating settings.
    Each side's rows are kept once, as an Arrow table in scan order (the columns
    classification reports): no Python object per value, so ten million rows fit.
    """

    con: duckdb.DuckDBPyConnection
    invoice: SideInput
    cdr: SideInput
    invoice_table: pa.Table
    cdr_table: pa.Table
    invoice_order: np.ndarray
    """Row of ``invoice_table`` at each candidate-set position (the matcher ranks rows by record_id)."""
    cdr_order: np.ndarray
    excluded: pd.DataFrame
    candidates: CandidateSet
    settings: ReconcileSettings
    inputs: tuple[dict[str, Any], ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    @cached_property
    def invoice_rows(self) -> pd.DataFrame:
        """The invoice rows as a DataFrame (row ``invoice_order[p]`` holds matcher position ``p``)."""
        return arrow_to_pandas(self.invoice_table)

    @cached_property
    def cdr_rows(self) -> pd.DataFrame:
        """The CDR rows as a DataFrame (row ``cdr_order[p]`` holds matcher position ``p``)."""
        return arrow_to_pandas(self.cdr_table)


@dataclass(frozen=True)
class ReconResult:
    """The classified result: the four tables the reports are written from, and the summary."""

    matched: pd.DataFrame
    discrepancies: pd.DataFrame
    excluded: pd.DataFrame
    rejected: pd.DataFrame
    summary: dict[str, Any]
    assignment: MatchAssignment

    @property
    def discrepancy_rate_pct(self) -> float:
        return float(self.summary["rates"]["discrepancy_rate_pct"])


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def file_sha256(path: Path) -> str:
    """SHA-256 of a file (streamed)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_records(paths: Sequence[Path], side: str) -> tuple[dict[str, Any], ...]:
    """File name, size and SHA-256 of every input file (folders expanded)."""
    records = []
    for path in paths:
        files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        for file in files:
            records.append({"side": side, "file": str(file), "bytes": file.stat().st_size,
                            "sha256": file_sha256(file)})
    return tuple(records)


def load_canonical_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, table: str) -> str:
    """Store a canonical DataFrame as ``table`` with the canonical column types."""
    view = f"{table}__frame"
    con.register(view, frame)
    try:
        cols = ", ".join(f"CAST({quote_ident(f.name)} AS {f.sql_type}) AS {quote_ident(f.name)}"
                         for f in CANONICAL_FIELDS)
        execute(con, f"CREATE OR REPLACE TABLE {quote_ident(table)} AS SELECT {cols} FROM {quote_ident(view)}")
    finally:
        con.unregister(view)
    return table


def load_cdr_side(con: duckdb.DuckDBPyConnection, paths: Sequence[Path], *, default_region: str = "US",
                  table: str = "cdr_canonical") -> SideInput:
    """CDR legs from canonical CSV/Parquet files, or Genesys conversation-details JSON (files or folders).

    Raises:
        InputFileError: a path is missing, or a canonical file lacks canonical columns.
    """
    genesys_paths = [p for p in paths if Path(p).is_dir() or Path(p).suffix.lower() in (".json", ".jsonl", ".gz")]
    canonical_paths = [p for p in paths if p not in genesys_paths]
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    files: list[dict[str, Any]] = []
    for path in canonical_paths:
        p = Path(path)
        if not p.exists():
            raise InputFileError(str(p), "file not found")
        reader = "read_parquet" if p.suffix.lower() == ".parquet" else "read_csv"
        extra = "" if reader == "read_parquet" else ", header=true, all_varchar=true"
        try:
            rel = execute(con, f"SELECT * FROM {reader}({quote_literal(str(p))}{extra})")
            frame = rel.to_arrow_table().to_pandas()
        except Exception as exc:  # noqa: BLE001 - DuckDB raises several types for unreadable files
            raise InputFileError(p.name, f"cannot read the CDR file ({exc})") from exc
        missing = [c for c in ("record_id", "start_time_utc", "direction", "duration_seconds")
                   if c not in frame.columns]
        if missing:
            raise InputFileError(p.name, "not a canonical CDR file: missing column(s) " + ", ".join(missing)
                                 + " (expected the columns of canonical.parquet / legs.parquet)")
        for col in CANONICAL_COLUMNS:
            if col not in frame.columns:
                frame[col] = None
        frame["source_file"] = frame["source_file"].fillna(p.name)
        frames.append(frame[list(CANONICAL_COLUMNS)])
        files.append({"source_file": p.name, "rows_read": len(frame)})
    if genesys_paths:
        from recon_core.genesys.legs import load_cdr_legs

        extraction = load_cdr_legs(genesys_paths, default_region=default_region)
        frames.append(extraction.legs)
        files.append({"source_file": ", ".join(extraction.sources), "rows_read": len(extraction.legs),
                      "conversations_read": extraction.conversations_read,
                      "held_back": len(extraction.held_back)})
        if extraction.held_back:
            notes.append(f"{len(extraction.held_back)} conversation(s) still in progress were held back, "
                         "not billed; fetch that day again later")
    if not frames:
        raise InputFileError("--cdr", "no CDR file given")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    load_canonical_frame(con, frame, table)
    empty_rejects = pd.DataFrame({c: pd.Series(dtype="object") for c in REJECT_COLUMNS})
    return SideInput("cdr", table, empty_rejects, tuple(files), tuple(notes))


# --------------------------------------------------------------------------------------------
# Prepare (expensive, once) and classify (cheap, per setting)
# --------------------------------------------------------------------------------------------

def excluded_sql(table: str, side: str) -> str:
    """Rows excluded by rule (zero duration, no charge)."""
    return (
        f"SELECT {quote_literal(side)} AS side, record_id, call_id, start_time_utc, direction, source_number, "
        f"destination_number, duration_seconds, cost_amount, {quote_literal(RULE_ZERO_DURATION)} AS rule, "
        f"{quote_literal(RULE_ZERO_DURATION_TEXT)} AS reason, source_file, source_line "
        f"FROM {quote_ident(table)} WHERE duration_seconds = 0 AND coalesce(cost_amount, 0) = 0"
    )


def included_sql(table: str, exclude_zero_duration: bool) -> str:
    """Rows that take part in matching."""
    where = "WHERE NOT (duration_seconds = 0 AND coalesce(cost_amount, 0) = 0)" if exclude_zero_duration else ""
    return f"SELECT * FROM {quote_ident(table)} {where}"


def _pandas_type(arrow_type: pa.DataType) -> Any:
    # Exact decimals stay Arrow-backed: a Python Decimal per value costs seconds at a million rows.
    return pd.ArrowDtype(arrow_type) if pa.types.is_decimal(arrow_type) else None


def arrow_to_pandas(table: pa.Table, *, keep_dictionary: bool = False) -> pd.DataFrame:
    """An Arrow table as a DataFrame without a Python object per value.

    Decimals stay Arrow decimals (``pd.ArrowDtype``), text becomes pandas' Arrow-backed
    ``str``, timestamps ``datetime64[us]`` and integer columns with gaps ``Int64`` (never
    float, so line numbers are written as ``12``, not ``12.0``). With ``keep_dictionary``,
    dictionary-encoded columns become ``category`` columns (a small integer per row).
    """
    if not keep_dictionary:
        table = pa.table({name: _decoded(column) for name, column in zip(table.column_names, table.columns,
                                                                         strict=True)})
    # Text and decimals are shared with Arrow, not copied.
    frame = table.to_pandas(types_mapper=_pandas_type)
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_integer(column.type) and column.null_count:
            values = pc.fill_null(column, 0).to_numpy().astype(np.int64)
            frame[name] = pd.arrays.IntegerArray(values, column.is_null().to_numpy(zero_copy_only=False))
    return frame


CLASSIFY_COLUMNS = (
    "record_id", "call_id", "start_time_utc", "direction", "source_number", "destination_number",
    "duration_seconds", "billed_seconds", "cost_amount", "rate_per_minute", "currency", "source_file", "source_line",
)


# Text columns with a handful of distinct values: kept dictionary-encoded, so gathering a
# million of them moves small integers instead of strings (decoded when a frame is made).
DICTIONARY_COLUMNS = ("direction", "currency", "source_file")


def _dictionary_encoded(table: pa.Table) -> pa.Table:
    """``table`` with its :data:`DICTIONARY_COLUMNS` dictionary-encoded."""
    for name in DICTIONARY_COLUMNS:
        i = table.column_names.index(name)
        table = table.set_column(i, name, pc.dictionary_encode(table.column(i)))
    return table


def prepare(
    con: duckdb.DuckDBPyConnection,
    invoice: SideInput,
    cdr: SideInput,
    settings: ReconcileSettings,
    *,
    inputs: tuple[dict[str, Any], ...] = (),
    progress: Progress | None = None,
) -> PreparedRun:
    """Apply the exclusion rule and generate match candidates at the widest tolerance."""
    report = progress or (lambda _f, _m: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    _release_unused_memory()  # what loading the inputs freed
    excluded_parts = []
    for side in (invoice, cdr):
        # A view, not a copy: at ten million rows a second copy of each side costs gigabytes.
        execute(con, f"CREATE OR REPLACE VIEW {quote_ident(side.table + '_included')} AS "
                     f"{included_sql(side.table, settings.exclude_zero_duration)}")
        if settings.exclude_zero_duration:
            excluded_parts.append(arrow_to_pandas(execute(con, excluded_sql(side.table, side.name)).to_arrow_table()))
    excluded = (pd.concat(excluded_parts, ignore_index=True) if excluded_parts
                else pd.DataFrame(columns=list(EXCLUDED_COLUMNS)))
    report(0.1, "generating match candidates")
    # One scan per side serves the matcher and classification (the columns it reports).
    candidates, invoice_table, cdr_table = build_candidates_with_rows(
        con, invoice.table + "_included", cdr.table + "_included", settings.match, columns=CLASSIFY_COLUMNS,
        progress=lambda f, m: report(0.1 + 0.85 * f, m))
    timings["candidates_s"] = round(time.perf_counter() - started, 3)
    invoice_table, cdr_table = _dictionary_encoded(invoice_table), _dictionary_encoded(cdr_table)
    _release_unused_memory()
    return PreparedRun(con, invoice, cdr, invoice_table, cdr_table, candidates.invoice.scan_row,
                       candidates.cdr.scan_row, excluded, candidates, settings, inputs, timings)


def _decimal_array(values: pd.Series) -> pa.Array:
    """A money column as an Arrow decimal array (exact), whatever pandas holds it in."""
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is not None:
        if pa.types.is_decimal(array.type):
            return array
        if pa.types.is_null(array.type):
            return pa.nulls(len(values), pa.decimal128(38, 8))
        if pa.types.is_integer(array.type) or pa.types.is_string(array.type):
            return pc.cast(array, pa.decimal128(38, 8))
    # floats and mixed objects go through their text form, one value at a time
    return pa.array([None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else Decimal(str(v))
                     for v in values], pa.decimal128(38, 8))


def _positive_part(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """max(value, 0) per row, exact; missing counts as 0."""
    zero = pa.scalar(Decimal("0"), array.type)
    filled = pc.fill_null(array, zero)
    return pc.if_else(pc.greater(filled, zero), filled, zero)


def _texts(values: pd.Series | pd.Categorical | np.ndarray) -> pa.Array:
    """A column of text (str, categorical or object) as an Arrow string array."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        categories = pa.array(np.asarray(values.categories, dtype=object), pa.string())
        codes = np.asarray(values.codes)
        return categories.take(pa.array(codes, mask=codes < 0))
    return pc.cast(pa.array(values, from_pandas=True), pa.string())


def _decoded(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A dictionary-encoded column as plain values (others unchanged)."""
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _gather(table: pa.Table, rows: np.ndarray, columns: Sequence[str], *, decode: bool = True) -> dict[str, Any]:
    """``columns`` of ``table`` at row indices ``rows``, decoded (unless ``decode`` is false)."""
    picked = table.select(list(columns)).take(pa.array(rows, pa.int64()))
    return {name: _decoded(picked.column(name)) if decode else picked.column(name) for name in columns}


def _far_end(invoice: dict[str, Any], cdr: dict[str, Any]) -> pa.Array | pa.ChunkedArray:
    """The far-end number of each pair (from the CDR, direction falling back to the invoice's),
    without its leading ``+``: the rate deck is searched with it."""
    direction = pc.coalesce(cdr["direction"], invoice["direction"])
    inbound = pc.fill_null(pc.equal(direction, "inbound"), False)
    far_end = pc.if_else(inbound, cdr["source_number"], cdr["destination_number"])
    return pc.utf8_ltrim(far_end, characters="+")


def _rate_pairs(run: PreparedRun, inv_rows: np.ndarray, cdr_rows: np.ndarray, rating: RatingSettings) -> pa.Table:
    """The rating of every pair (:data:`recon_core.rating.OUTPUT_COLUMNS`), in pair order."""
    inv = _gather(run.invoice_table, inv_rows,
                  ("cost_amount", "billed_seconds", "rate_per_minute", "direction", "source_number"))
    cdr_columns = ["duration_seconds", "start_time_utc"]
    if rating.rate_deck is not None:
        cdr_columns += ["direction", "source_number", "destination_number"]
    cdr = _gather(run.cdr_table, cdr_rows, cdr_columns)
    far_end = _far_end(inv, cdr) if rating.rate_deck is not None else pa.nulls(len(inv_rows), pa.string())
    return rate_pairs_table(pa.table({
        "cdr_duration_s": cdr["duration_seconds"], "invoice_cost": inv["cost_amount"],
        "invoice_billed_s": inv["billed_seconds"], "invoice_rate": inv["rate_per_minute"],
        "direction": inv["direction"], "far_end_number": far_end, "cdr_start_utc": cdr["start_time_utc"],
    }), rating)


INVOICE_PAIR_COLUMNS = {
    "invoice_record_id": "record_id", "invoice_call_id": "call_id", "invoice_start_utc": "start_time_utc",
    "direction": "direction", "source_number": "source_number", "destination_number": "destination_number",
    "invoice_duration_s": "duration_seconds", "invoice_billed_s": "billed_seconds", "invoice_cost": "cost_amount",
    "currency": "currency", "invoice_source_file": "source_file", "invoice_source_line": "source_line",
}
CDR_PAIR_COLUMNS = {
    "cdr_record_id": "record_id", "cdr_call_id": "call_id", "cdr_start_utc": "start_time_utc",
    "cdr_duration_s": "duration_seconds", "cdr_source_file": "source_file", "cdr_source_line": "source_line",
}


def _pair_columns(run: PreparedRun, matches: pd.DataFrame, rated: pa.Table, inv_rows: np.ndarray,
                  cdr_rows: np.ndarray, selected: np.ndarray | None, *, decode: bool = True) -> dict[str, Any]:
    """The report columns of the selected pairs (``None``: all), straight from the row tables
    (dictionary-encoded columns stay encoded unless ``decode``)."""
    def pick(values: np.ndarray) -> np.ndarray:
        return values if selected is None else values[selected]

    inv = _gather(run.invoice_table, pick(inv_rows), list(INVOICE_PAIR_COLUMNS.values()), decode=decode)
    cdr = _gather(run.cdr_table, pick(cdr_rows), list(CDR_PAIR_COLUMNS.values()), decode=decode)
    if selected is not None:
        rated = rated.take(pa.array(selected, pa.int64()))
    columns: dict[str, Any] = {name: inv[source] for name, source in INVOICE_PAIR_COLUMNS.items()}
    columns.update({name: cdr[source] for name, source in CDR_PAIR_COLUMNS.items()})
    columns.update({name: rated.column(name) for name in rated.column_names})
    columns["time_offset_s"] = pa.array(pick(matches["delta_seconds"].to_numpy(dtype=np.float64)))
    columns["ambiguous"] = pa.array(pick(matches["ambiguous"].to_numpy(dtype=bool)))
    method, reading = matches["method"].array, matches["invoice_reading"].array
    if selected is not None:
        method, reading = method.take(selected), reading.take(selected)
    columns["match_method"] = _texts(method) if decode else _dictionary_of(method)
    columns["invoice_reading"] = _texts(reading) if decode else _dictionary_of(reading)
    return columns


def _dictionary_of(values: pd.Categorical | Any) -> pa.Array:
    """A categorical column as an Arrow dictionary array (codes and categories, no text per row)."""
    if not isinstance(values, pd.Categorical):
        return pc.dictionary_encode(_texts(values))
    codes = np.asarray(values.codes, dtype=np.int32)
    categories = pa.array(np.asarray(values.categories, dtype=object), pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), categories)


# Low-cardinality text columns of ReconResult.matched (the rating's reason is one sentence for
# nearly every matched row): pandas ``category`` columns, so ten million matched rows hold a
# small integer per value instead of a string.
MATCHED_CATEGORY_COLUMNS = (
    "status", "direction", "currency", "rate_source", "increment_used", "billing_direction", "match_method",
    "invoice_reading", "invoice_source_file", "cdr_source_file", "reason",
)


def _unmatched_part(table: pa.Table, rows: np.ndarray, unmatched: pd.DataFrame, side: str) -> dict[str, Any]:
    """Discrepancy columns of one side's unmatched rows (the other side's columns left out)."""
    prefix = "invoice_" if side == "invoice" else "cdr_"
    sources = {prefix + "record_id": "record_id", prefix + "call_id": "call_id",
               prefix + "start_utc": "start_time_utc", "direction": "direction",
               "source_number": "source_number", "destination_number": "destination_number",
               prefix + "duration_s": "duration_seconds", prefix + "source_file": "source_file",
               prefix + "source_line": "source_line"}
    if side == "invoice":
        sources.update({"invoice_cost": "cost_amount", "currency": "currency"})
    picked = _gather(table, rows, list(sources.values()))
    columns = {name: picked[source] for name, source in sources.items()}
    columns["nearest_record_id"] = _texts(unmatched["other_record_id"])
    columns["reason"] = _texts(unmatched["explanation"])
    return columns


def duplicate_charges_sql(unmatched: str, matched: str) -> str:
    """For each unmatched invoice row, the nearest matched invoice row it repeats.

    Equality on direction, both numbers, duration and cost (a repeat is the same charge), then
    the start within the tolerance ($tolerance_ms): the equality key is selective, so dense
    numbers do not multiply rows.
    """
    return (
        f"SELECT u.pos, m.invoice_record_id FROM {quote_ident(unmatched)} u JOIN {quote_ident(matched)} m "
        "ON u.direction IS NOT DISTINCT FROM m.direction AND u.source_number IS NOT DISTINCT FROM m.source_number "
        "AND u.destination_number IS NOT DISTINCT FROM m.destination_number "
        "AND u.duration = m.duration AND u.cost = m.cost "
        "WHERE abs(u.start_ms - m.start_ms) <= $tolerance_ms "
        "QUALIFY row_number() OVER (PARTITION BY u.pos ORDER BY abs(u.start_ms - m.start_ms), "
        "m.invoice_record_id) = 1"
    )


def duplicate_side_sql(rows: str, matched: bool) -> str:
    """The columns :func:`duplicate_charges_sql` reads, from a table of invoice rows with
    ``unmatched_pos`` (position among the unmatched rows, -1 for others) and ``is_matched``:
    its unmatched rows (``matched=False``) or its matched rows, with their record id."""
    extra, where = (", record_id AS invoice_record_id", "is_matched") if matched else ("", "unmatched_pos >= 0")
    return (
        "SELECT unmatched_pos AS pos, CAST(direction AS VARCHAR) AS direction, "
        "CAST(source_number AS VARCHAR) AS source_number, "
        "CAST(destination_number AS VARCHAR) AS destination_number, "
        "epoch_ms(start_time_utc) AS start_ms, CAST(duration_seconds AS DECIMAL(38,3)) AS duration, "
        f"CAST(cost_amount AS DECIMAL(38,8)) AS cost{extra} FROM {quote_ident(rows)} WHERE {where}"
    )


def find_duplicate_charges(con: duckdb.DuckDBPyConnection, invoice_rows: pa.Table, matched_rows: np.ndarray,
                           unmatched_rows: np.ndarray, tolerance_s: float) -> pa.Array:
    """For each unmatched invoice row, the matched invoice row it repeats (or null).

    ``invoice_rows`` holds the canonical invoice columns; ``matched_rows`` / ``unmatched_rows``
    are row indices into it. A repeat has the same direction, source and destination number,
    the same duration and cost, and starts within the time tolerance of the matched row.
    DuckDB scans the rows where they are (no copy of the matched side is made).
    Out: a string array aligned with ``unmatched_rows``.
    """
    n = len(unmatched_rows)
    if n == 0 or len(matched_rows) == 0:
        return pa.nulls(n, pa.string())
    unmatched_pos = np.full(invoice_rows.num_rows, -1, dtype=np.int64)
    unmatched_pos[unmatched_rows] = np.arange(n, dtype=np.int64)
    is_matched = np.zeros(invoice_rows.num_rows, dtype=bool)
    is_matched[matched_rows] = True
    name = "recon_dup_rows"
    con.register(name, invoice_rows.select(
        ["record_id", "direction", "source_number", "destination_number", "start_time_utc", "duration_seconds",
         "cost_amount"]).append_column("unmatched_pos", pa.array(unmatched_pos)).append_column(
        "is_matched", pa.array(is_matched)))
    try:
        sql = (f"WITH u AS ({duplicate_side_sql(name, False)}), m AS ({duplicate_side_sql(name, True)}) "
               + duplicate_charges_sql("u", "m"))
        hits = execute(con, sql, {"tolerance_ms": int(round(tolerance_s * 1000))}).to_arrow_table()
    finally:
        con.unregister(name)
    hit_of = np.full(n, -1, dtype=np.int64)
    hit_of[hits.column("pos").to_numpy()] = np.arange(hits.num_rows, dtype=np.int64)
    return pc.cast(hits.column("invoice_record_id"), pa.string()).take(pa.array(hit_of, mask=hit_of < 0))


def _epoch_ms(stamps: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return pc.cast(pc.cast(stamps, pa.timestamp("ms"), safe=False), pa.int64())


def _concat(parts: Sequence[dict[str, Any]], columns: Sequence[str]) -> pa.Table:
    """One table from parts that each hold some of ``columns`` (absent columns are null; the
    offset stays a float column even when no part has it)."""
    tables = []
    for part in parts:
        n = len(next(iter(part.values())))
        tables.append(pa.table({c: part[c] if c in part
                                else pa.nulls(n, pa.float64() if c == "time_offset_s" else pa.null())
                                for c in columns}))
    return pa.concat_tables(tables, promote_options="permissive").combine_chunks()


def _flags(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy, missing = False (a column no part had is all missing)."""
    if pa.types.is_null(column.type):
        return np.zeros(len(column), dtype=bool)
    return np.asarray(pc.fill_null(column, False).to_numpy(zero_copy_only=False), dtype=bool)


def _discrepancy_order(table: pa.Table) -> pa.Array:
    """Row order of the discrepancy table: category, then start times (missing last, compared to
    the millisecond), then record ids (missing first); stable, so exact ties keep their order."""
    def times(name: str) -> pa.Array | pa.ChunkedArray:
        column = table.column(name)
        if pa.types.is_null(column.type):  # no part had the column
            column = pc.cast(column, pa.timestamp("us"))
        return pc.fill_null(_epoch_ms(column), np.iinfo(np.int64).max)

    def texts(name: str) -> pa.Array | pa.ChunkedArray:
        return pc.fill_null(pc.cast(table.column(name), pa.string()), "")

    rank = pc.index_in(table.column("category"), value_set=pa.array(list(DISCREPANCY_CATEGORIES)))
    keys = pa.table({"rank": rank, "inv_t": times("invoice_start_utc"), "cdr_t": times("cdr_start_utc"),
                     "inv_id": texts("invoice_record_id"), "cdr_id": texts("cdr_record_id")})
    return pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in keys.column_names])


def _constant(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def classify(run: PreparedRun, tolerance_s: float | None = None, rating: RatingSettings | None = None,
             *, progress: Progress | None = None) -> ReconResult:
    """Classify every row for ``tolerance_s`` (≤ the prepared maximum) and ``rating`` settings.

    Never reads the inputs again: the app calls this after every slider change. Rows stay in
    Arrow until the result frames are made (no Python object per value): each report column
    is gathered once, straight from the side's rows.
    """
    report = progress or (lambda _f, _m: None)
    started = time.perf_counter()
    tolerance = run.settings.match.tolerance_s if tolerance_s is None else float(tolerance_s)
    rating = rating or run.settings.rating
    validate_rating_settings(rating)
    report(0.0, "assigning pairs one-to-one")
    assignment = assign_one_to_one(run.candidates, tolerance)
    assigned = time.perf_counter()
    matches = assignment.matches
    inv_rows = run.invoice_order[matches["invoice_index"].to_numpy()]
    cdr_rows = run.cdr_order[matches["cdr_index"].to_numpy()]
    report(0.3, f"rating {len(matches):,} matched pairs")
    rated = _rate_pairs(run, inv_rows, cdr_rows, rating)
    status = rated.column("status")
    is_variance = pc.fill_null(pc.equal(status, STATUS_COST_VARIANCE), False).to_numpy(zero_copy_only=False)
    variance_at = np.flatnonzero(is_variance)
    kept = np.flatnonzero(~is_variance) if len(variance_at) else None
    matched_columns = _pair_columns(run, matches, rated, inv_rows, cdr_rows, kept, decode=False)
    unverified = pc.equal(matched_columns["status"], STATUS_COST_UNVERIFIED)
    matched_columns["status"] = pc.if_else(unverified, STATUS_MATCHED, matched_columns["status"])
    matched_columns["cost_checked"] = pc.invert(unverified)
    for name in MATCHED_CATEGORY_COLUMNS:
        if not pa.types.is_dictionary(matched_columns[name].type):
            matched_columns[name] = pc.dictionary_encode(matched_columns[name])
    matched = arrow_to_pandas(pa.table({name: matched_columns[name] for name in MATCHED_COLUMNS}),
                              keep_dictionary=True)
    del matched_columns, unverified

    report(0.6, "classifying unmatched rows")
    disputed_total: Decimal | None = None
    parts: list[dict[str, Any]] = []
    if len(variance_at):
        variance = _pair_columns(run, matches, rated, inv_rows, cdr_rows, variance_at)
        variance = {name: values for name, values in variance.items() if name in DISCREPANCY_COLUMNS}
        variance["category"] = _constant(CATEGORY_COST_VARIANCE, len(variance_at))
        variance["disputed_amount"] = _positive_part(variance["cost_delta"])
        parts.append(variance)
    del rated

    inv_unmatched_rows = run.invoice_order[assignment.unmatched_invoice["index"].to_numpy()]
    if len(inv_unmatched_rows):
        invoice_part = _unmatched_part(run.invoice_table, inv_unmatched_rows, assignment.unmatched_invoice,
                                       "invoice")
        duplicate_of = find_duplicate_charges(run.con, run.invoice_table, inv_rows, inv_unmatched_rows, tolerance)
        is_duplicate = pc.is_valid(duplicate_of)
        invoice_part["duplicate_of"] = duplicate_of
        invoice_part["category"] = pc.if_else(is_duplicate, CATEGORY_DUPLICATE_CHARGE, CATEGORY_MISSING_IN_CDR)
        invoice_part["reason"] = pc.if_else(
            is_duplicate,
            pc.binary_join_element_wise("charged again: repeats matched invoice row ", duplicate_of,
                                        " (same numbers, duration and cost, start within the tolerance)", ""),
            pc.binary_join_element_wise("billed, but no Genesys call matches: ", invoice_part["reason"], ""))
        invoice_part["disputed_amount"] = _positive_part(invoice_part["invoice_cost"])
        parts.append(invoice_part)
    cdr_unmatched_rows = run.cdr_order[assignment.unmatched_cdr["index"].to_numpy()]
    if len(cdr_unmatched_rows):
        cdr_part = _unmatched_part(run.cdr_table, cdr_unmatched_rows, assignment.unmatched_cdr, "cdr")
        cdr_part["category"] = _constant(CATEGORY_MISSING_IN_INVOICE, len(cdr_unmatched_rows))
        cdr_part["reason"] = pc.binary_join_element_wise("made, but not on the invoice: ", cdr_part["reason"], "")
        # The disputed amount of a call nobody billed is a plain 0 (filled in after the sort).
        cdr_part["is_unbilled"] = pa.array(np.ones(len(cdr_unmatched_rows), dtype=bool))
        parts.append(cdr_part)
    if parts:
        for part in parts:
            part["category"] = _decoded(part["category"])
        table = _concat(parts, list(DISCREPANCY_COLUMNS) + ["is_unbilled"])
        table = table.take(_discrepancy_order(table))
        discrepancies = arrow_to_pandas(table.select(list(DISCREPANCY_COLUMNS)))
        unbilled = _flags(table.column("is_unbilled"))
        if unbilled.any():
            # The sum the Decimal objects below add up to (the plain zeros add nothing), from Arrow.
            billed = pc.sum(pc.filter(table.column("disputed_amount"), pa.array(~unbilled))).as_py()
            disputed_total = Decimal("0") if billed is None else Decimal(billed)
            # Mixed scales in one column (0 for unbilled calls, the money scale elsewhere) need
            # Decimal objects: one per discrepancy row, never per matched row.
            disputed = np.empty(len(unbilled), dtype=object)
            disputed[:] = table.column("disputed_amount").to_pylist()
            disputed[unbilled] = Decimal("0")
            discrepancies["disputed_amount"] = disputed
    else:
        discrepancies = pd.DataFrame(columns=list(DISCREPANCY_COLUMNS))
    _release_unused_memory()
    rejected = _rejected_frame(run)
    excluded = run.excluded.reindex(columns=list(EXCLUDED_COLUMNS)).reset_index(drop=True)
    timings = dict(run.timings)
    timings["assign_s"] = round(assigned - started, 3)
    timings["classify_s"] = round(time.perf_counter() - started, 3)
    summary = build_summary(run, tolerance, rating, matched, discrepancies, excluded, rejected, assignment, timings,
                            disputed_total=disputed_total)
    report(1.0, "done")
    return ReconResult(matched, discrepancies, excluded, rejected, summary, assignment)


def _release_unused_memory() -> None:
    """Hand Arrow's freed intermediate buffers back to the system: its allocator keeps them for
    reuse, but the pandas frames that follow are allocated elsewhere (peak memory at 10M rows)."""
    pa.default_memory_pool().release_unused()


def _rejected_frame(run: PreparedRun) -> pd.DataFrame:
    parts = []
    for side in (run.invoice, run.cdr):
        if len(side.rejects):
            parts.append(side.rejects.assign(side=side.name).reindex(columns=list(REJECTED_COLUMNS)))
    return (pd.concat(parts, ignore_index=True) if parts
            else pd.DataFrame({c: pd.Series(dtype="object") for c in REJECTED_COLUMNS}))


def _sum_money(values: pd.Series) -> Decimal:
    """Exact sum of a money column (missing values count as 0)."""
    if len(values) == 0:
        return Decimal("0")
    total = pc.sum(_decimal_array(values)).as_py()
    return Decimal("0") if total is None else Decimal(total)


def _count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = execute(con, f"SELECT count(*) FROM {quote_ident(table)}").fetchone()
    return int(row[0]) if row else 0


def build_summary(run: PreparedRun, tolerance_s: float, rating: RatingSettings, matched: pd.DataFrame,
                  discrepancies: pd.DataFrame, excluded: pd.DataFrame, rejected: pd.DataFrame,
                  assignment: MatchAssignment, timings: dict[str, float], *,
                  disputed_total: Decimal | None = None) -> dict[str, Any]:
    """Counts, money, rates, settings, inputs and the per-side row ledger.

    ``disputed_total``: the sum of ``discrepancies["disputed_amount"]`` when the caller knows it
    already (:func:`classify` does; summing a column of Decimal objects costs a second at 300k rows).

    Raises:
        LedgerError: a side's rows read differ from matched + discrepancies + excluded + rejected.
    """
    categories = (pd.Series(discrepancies["category"].to_numpy(dtype=object)) if len(discrepancies)
                  else pd.Series([], dtype=object))
    by_category = {c: int((categories == c).sum()) for c in DISCREPANCY_CATEGORIES}
    by_status = {s: int((matched["status"] == s).sum()) for s in MATCHED_STATUSES}
    ledger: list[dict[str, Any]] = []
    for side in (run.invoice, run.cdr):
        normalized = _count_rows(run.con, side.table)
        rejected_n = int((rejected["side"] == side.name).sum()) if len(rejected) else 0
        read = normalized + rejected_n
        side_discrepancies = (
            by_category[CATEGORY_COST_VARIANCE]
            + (by_category[CATEGORY_MISSING_IN_CDR] + by_category[CATEGORY_DUPLICATE_CHARGE]
               if side.name == "invoice" else by_category[CATEGORY_MISSING_IN_INVOICE])
        )
        excluded_n = int((excluded["side"] == side.name).sum()) if len(excluded) else 0
        entry = {"side": side.name, "rows_read": read, "matched": len(matched),
                 "in_discrepancies": side_discrepancies, "excluded": excluded_n, "rejected": rejected_n}
        entry["balanced"] = read == len(matched) + side_discrepancies + excluded_n + rejected_n
        ledger.append(entry)
        if not entry["balanced"]:
            raise LedgerError(
                f"{side.name} ledger does not balance: read {read} != matched {len(matched)} + discrepancies "
                f"{side_discrepancies} + excluded {excluded_n} + rejected {rejected_n}")
    over = _sum_money(discrepancies.loc[(categories == CATEGORY_COST_VARIANCE).to_numpy()
                                        & (discrepancies["billing_direction"] == "OVER_BILLED").to_numpy(),
                                        "cost_delta"]) if len(discrepancies) else Decimal("0")
    under = -_sum_money(discrepancies.loc[(categories == CATEGORY_COST_VARIANCE).to_numpy()
                                          & (discrepancies["billing_direction"] == "UNDER_BILLED").to_numpy(),
                                          "cost_delta"]) if len(discrepancies) else Decimal("0")
    invoice_costs = pc.sum(run.invoice_table.column("cost_amount")).as_py()
    invoice_total = Decimal("0") if invoice_costs is None else Decimal(invoice_costs)
    if len(excluded):
        invoice_total += _sum_money(excluded.loc[excluded["side"] == "invoice", "cost_amount"])
    expected_total = _sum_money(matched["expected_cost"]) + _sum_money(
        discrepancies.loc[(categories == CATEGORY_COST_VARIANCE).to_numpy(), "expected_cost"]
    ) if len(discrepancies) else _sum_money(matched["expected_cost"])
    if disputed_total is not None:
        disputed = disputed_total
    else:
        disputed = _sum_money(discrepancies["disputed_amount"]) if len(discrepancies) else Decimal("0")
    invoice_included = run.invoice_table.num_rows
    invoice_discrepancies = int(ledger[0]["in_discrepancies"])
    total_rows = invoice_included + by_category[CATEGORY_MISSING_IN_INVOICE]
    currencies = sorted(str(c) for c in pc.unique(run.invoice_table.column("currency")).drop_null().to_pylist())
    return {
        "run_id": None,  # set by run_reconciliation (depends on inputs, settings and time)
        "package_version": __version__,
        "created_utc": None,
        "settings": {"time_tolerance_s": tolerance_s, "match": run.settings.match.to_dict(),
                     "rating": rating.to_dict(), "exclude_zero_duration": run.settings.exclude_zero_duration},
        "inputs": list(run.inputs),
        "counts": {"matched": len(matched), **by_status, **by_category,
                   "excluded": len(excluded), "rejected": len(rejected),
                   "ambiguous_matches": int(matched["ambiguous"].fillna(False).astype(bool).sum())
                   + int(discrepancies.get("ambiguous", pd.Series(dtype=bool)).fillna(False).astype(bool).sum())},
        "money": {
            "currency": currencies[0] if len(currencies) == 1 else currencies,
            "invoice_total": str(invoice_total), "expected_total": str(expected_total),
            "over_billed": str(over), "under_billed": str(under), "disputed_amount": str(disputed),
        },
        "rates": {
            "match_rate_pct": round(100.0 * len(matched) / invoice_included, 3) if invoice_included else 0.0,
            "discrepancy_rate_pct": round(
                100.0 * (invoice_discrepancies + by_category[CATEGORY_MISSING_IN_INVOICE]) / total_rows, 3)
            if total_rows else 0.0,
        },
        "matching": assignment.summary(),
        "ledger": ledger,
        "notes": list(run.invoice.notes) + list(run.cdr.notes),
        "timings_s": timings,
    }


def run_id_for(summary: dict[str, Any], created: datetime) -> str:
    """A run id that names the time and fingerprints inputs and settings."""
    digest = hashlib.sha256(repr((summary["inputs"], summary["settings"])).encode()).hexdigest()[:10]
    return f"{created.strftime('%Y%m%dT%H%M%SZ')}-{digest}"


def prepare_files(
    invoice_paths: Sequence[Path],
    cdr_paths: Sequence[Path],
    profile: Any,
    settings: ReconcileSettings,
    *,
    progress: Progress | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> PreparedRun:
    """Ingest the invoice with ``profile``, load the CDR legs and :func:`prepare` (no classification).

    The app caches this and calls :func:`classify` on every setting change.

    Raises:
        ReconError subclasses for unreadable inputs or invalid settings.
    """
    from recon_core.ingest import ingest_files

    report = progress or (lambda _f, _m: None)
    con = con or connect()
    started = time.perf_counter()
    report(0.0, "reading the invoice")
    ingest = ingest_files(profile, invoice_paths, con=con, table_prefix="invoice",
                          progress=lambda f, m: report(0.35 * f, m))
    # Materialized once: the canonical view joins the number map on every read.
    execute(con, f"CREATE OR REPLACE TABLE invoice_side AS SELECT * FROM {quote_ident(ingest.canonical_table)}")
    invoice = SideInput("invoice", "invoice_side", ingest.rejects_frame(),
                        tuple(f.to_dict() for f in ingest.files),
                        tuple(n for f in ingest.files for n in f.notes))
    report(0.35, "reading the CDR legs")
    cdr = load_cdr_side(con, cdr_paths, default_region=getattr(profile, "default_region", "US"))
    load_s = time.perf_counter() - started
    inputs = input_records(invoice_paths, "invoice") + input_records(cdr_paths, "cdr")
    run = prepare(con, invoice, cdr, settings, inputs=inputs, progress=lambda f, m: report(0.45 + 0.55 * f, m))
    run.timings["load_s"] = round(load_s, 3)
    return run


def reconcile(
    invoice_paths: Sequence[Path],
    cdr_paths: Sequence[Path],
    profile: Any,
    settings: ReconcileSettings,
    *,
    progress: Progress | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[PreparedRun, ReconResult]:
    """:func:`prepare_files`, then :func:`classify` at the settings' tolerance; stamps run id and time.

    Raises:
        ReconError subclasses for unreadable inputs or invalid settings; LedgerError if rows were lost.
    """
    report = progress or (lambda _f, _m: None)
    started = time.perf_counter()
    run = prepare_files(invoice_paths, cdr_paths, profile, settings, con=con,
                        progress=lambda f, m: report(0.7 * f, m))
    result = classify(run, progress=lambda f, m: report(0.7 + 0.3 * f, m))
    created = datetime.now(UTC).replace(microsecond=0)
    result.summary["created_utc"] = created.isoformat().replace("+00:00", "Z")
    result.summary["run_id"] = run_id_for(result.summary, created)
    result.summary["timings_s"]["total_s"] = round(time.perf_counter() - started, 3)
    return run, result
