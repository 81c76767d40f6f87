"""What the Reconcile page shows, computed from a prepared run and a classified result.

Pure functions (no streamlit), tested directly: KPI values and money text, the rows of the
results table, the tolerance sensitivity curve and the explanation of one row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recon_core.match import assign_one_to_one
from recon_core.rating import RatingSettings
from recon_core.reconcile import (
    CATEGORY_COST_VARIANCE,
    CATEGORY_DUPLICATE_CHARGE,
    CATEGORY_MISSING_IN_CDR,
    CATEGORY_MISSING_IN_INVOICE,
    CATEGORY_PERIOD_BOUNDARY,
    DISCREPANCY_CATEGORIES,
    PreparedRun,
    ReconResult,
    classify,
)

TOLERANCE_GRID = (0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60)
# Up to this many rows (both sides) the curve counts every discrepancy with a full classify per
# point; above it, only unmatched rows (assign_one_to_one), so the curve stays a second or two.
EXACT_CURVE_MAX_ROWS = 60_000
CANDIDATES_SHOWN = 5
# The most rows the results grid is given (the browser slows down past this); the CSVs hold all.
GRID_ROWS_MAX = 50_000

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$"}

CATEGORY_LABELS = {
    "MATCHED": "Matched",
    "MATCHED_ROUNDING_VARIANCE": "Matched (rounding variance)",
    CATEGORY_COST_VARIANCE: "Cost variance",
    CATEGORY_MISSING_IN_CDR: "Missing in CDR",
    CATEGORY_MISSING_IN_INVOICE: "Missing in invoice",
    CATEGORY_DUPLICATE_CHARGE: "Duplicate charge",
    CATEGORY_PERIOD_BOUNDARY: "Period boundary (re-checked next period)",
}
CATEGORY_MEANING = {
    "MATCHED": "Paired one-to-one with a Genesys call within the time tolerance, and the invoice cost "
               "agrees with the expected cost within the cost tolerance.",
    "MATCHED_ROUNDING_VARIANCE": "Paired with a Genesys call; the cost differs from the contract price, but "
                                 "the carrier's own billing increment explains the whole difference.",
    CATEGORY_COST_VARIANCE: "Paired with a Genesys call, but the invoice cost differs from the expected cost "
                            "by more than the cost tolerance.",
    CATEGORY_MISSING_IN_CDR: "Billed by the carrier, but no Genesys call pairs with it within the time "
                             "tolerance.",
    CATEGORY_MISSING_IN_INVOICE: "A Genesys call that no invoice row pairs with within the time tolerance.",
    CATEGORY_DUPLICATE_CHARGE: "Charged again: repeats an invoice row that is already paired (same numbers, "
                               "duration and cost, start within the tolerance).",
    CATEGORY_PERIOD_BOUNDARY: "Missing on one side but within the time tolerance of the billing period's edge: "
                              "its counterpart may sit in the neighbouring period. Not disputed now; the next "
                              "period's run checks it again.",
}

# Columns of the results table, in display order (money and seconds as floats: display only;
# the downloads carry the exact values).
TABLE_COLUMNS = (
    "category", "invoice_record_id", "cdr_record_id", "invoice_start_utc", "cdr_start_utc", "time_offset_s",
    "direction", "source_number", "destination_number", "invoice_duration_s", "cdr_duration_s",
    "invoice_cost", "expected_cost", "cost_delta", "disputed_amount", "billing_direction", "reason",
    "nearest_record_id", "duplicate_of", "invoice_source_line", "cdr_source_line",
)
_FLOAT_COLUMNS = ("time_offset_s", "invoice_duration_s", "cdr_duration_s", "invoice_cost", "expected_cost",
                  "cost_delta", "disputed_amount")


# --------------------------------------------------------------------------------------------
# KPIs
# --------------------------------------------------------------------------------------------

def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal("0")


def format_money(amount: Any, currency: Any) -> str:
    """``$1,234.57`` / ``1,234.57 CHF`` (2 decimals, half up); a mixed-currency list gives its codes."""
    value = _decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    code = currency if isinstance(currency, str) else "/".join(str(c) for c in (currency or []))
    sign = "-" if value < 0 else ""
    text = f"{abs(value):,.2f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {code}".strip()


def discrepancy_count(summary: Mapping[str, Any]) -> int:
    """Rows in any discrepancy category."""
    counts = summary["counts"]
    return sum(int(counts.get(c, 0)) for c in DISCREPANCY_CATEGORIES)


@dataclass(frozen=True)
class Kpi:
    """One tile: label, value text, and an exact value or explanation for the tooltip."""

    label: str
    value: str
    help: str = ""


def kpis(summary: Mapping[str, Any]) -> list[Kpi]:
    """The tiles: match rate, discrepancies (count and rate), disputed, over- and under-billed."""
    money, rates, counts = summary["money"], summary["rates"], summary["counts"]
    currency = money.get("currency") or ""
    return [
        Kpi("Match rate", f"{float(rates['match_rate_pct']):.2f} %",
            f"{counts['matched']:,} invoice rows paired with a Genesys call"),
        Kpi("Discrepancies", f"{discrepancy_count(summary):,}", "rows in any discrepancy category"),
        Kpi("Discrepancy rate", f"{float(rates['discrepancy_rate_pct']):.2f} %",
            "discrepancies per invoice row and unbilled call"),
        Kpi("Disputed amount", format_money(money["disputed_amount"], currency),
            f"exactly {money['disputed_amount']} {currency}: over-billing, missing-in-CDR and duplicate charges"),
        Kpi("Over-billed", format_money(money["over_billed"], currency),
            f"exactly {money['over_billed']} {currency} above the expected cost"),
        Kpi("Under-billed", format_money(money["under_billed"], currency),
            f"exactly {money['under_billed']} {currency} below the expected cost"),
    ]


def category_breakdown(result: ReconResult) -> pd.DataFrame:
    """Rows and disputed amount per discrepancy category (every category, zeros included).

    ``disputed`` is a float for the chart (the exact amounts are in the KPIs and the downloads);
    summed column-wise, as a chart of 300k discrepancies must not cost a Python loop per row.
    """
    disc = result.discrepancies
    if len(disc):
        frame = pd.DataFrame({"category": disc["category"].to_numpy(dtype=object),
                              "disputed": _floats(disc["disputed_amount"]).fillna(0.0).to_numpy()})
        grouped = frame.groupby("category", sort=False)["disputed"].agg(["size", "sum"])
    else:
        grouped = pd.DataFrame({"size": [], "sum": []})
    rows = []
    for category in DISCREPANCY_CATEGORIES:
        size, amount = (grouped.loc[category, "size"], grouped.loc[category, "sum"]) if category in grouped.index \
            else (0, 0.0)
        rows.append({"category": CATEGORY_LABELS[category], "rows": int(size), "disputed": float(amount)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Results table
# --------------------------------------------------------------------------------------------

def _floats(values: pd.Series) -> pd.Series:
    """Any numeric column (Arrow decimals, Decimal objects, None) as float64 for display."""
    try:
        return values.astype("float64")
    except (TypeError, ValueError, ArithmeticError):
        return pd.to_numeric(values.map(lambda v: None if _text(v) == "" else float(v)), errors="coerce")


_CATEGORY_ORDER = pa.array(list(CATEGORY_LABELS), pa.string())


def _category_ranks(values: pd.Series) -> np.ndarray:
    """Each row's position of its category in ``CATEGORY_LABELS`` (the grid's order); -1 if unknown.

    Looked up in Arrow: the category columns are Arrow strings, and a round trip through Python
    objects costs more than the rest of the table at 300k rows.
    """
    array = pa.array(values, from_pandas=True)
    if array.type != pa.string():
        array = array.cast(pa.string())
    ranks = pc.index_in(array, value_set=_CATEGORY_ORDER).fill_null(-1)
    return np.asarray(ranks.to_numpy(zero_copy_only=False), dtype=np.int64)


def _table_parts(result: ReconResult, include_matched: bool) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """(rows, category rank per row) for the discrepancies and, when asked, the matched rows."""
    parts = [(result.discrepancies, _category_ranks(result.discrepancies["category"]))]
    if include_matched and len(result.matched):
        parts.append((result.matched, _category_ranks(result.matched["status"])))
    return [(frame, ranks) for frame, ranks in parts if len(frame)]


def category_counts(result: ReconResult, include_matched: bool = False) -> dict[str, int]:
    """Rows per category of :func:`results_table` (matched statuses too when ``include_matched``),
    in ``CATEGORY_LABELS`` order, categories without rows left out."""
    labels = list(CATEGORY_LABELS)
    counts = np.zeros(len(labels), dtype=np.int64)
    for _frame, ranks in _table_parts(result, include_matched):
        counts += np.bincount(ranks[ranks >= 0], minlength=len(labels))
    return {label: int(n) for label, n in zip(labels, counts, strict=True) if n}


def _display_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The grid's columns: times as ISO text, money and seconds as floats, line numbers as integers."""
    out = pd.DataFrame(index=table.index)
    for column in TABLE_COLUMNS:
        values = table[column]
        if column in _FLOAT_COLUMNS:
            out[column] = _floats(values)
        elif column.endswith("_utc"):
            stamps = pd.to_datetime(values, errors="coerce")
            out[column] = stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3].where(stamps.notna(), "")
        elif column.endswith("_line"):
            out[column] = pd.to_numeric(values, errors="coerce").astype("Int64")
        else:
            out[column] = values.astype(object).where(values.notna(), "").astype(str)
    return out


GROUP_COLUMN = "group"
"""Column of :func:`grouped_rows`: the category code on a group's header row, "" on data rows."""


def grouped_rows(table: pd.DataFrame, counts: Mapping[str, int]) -> pd.DataFrame:
    """``table`` (from :func:`results_table`) grouped by category for the grid.

    Before each category's rows comes a header row: ``category`` names it with its row count in
    the whole result (``counts``; the table itself may be cut to the grid's limit) and its
    disputed amount in ``reason``; :data:`GROUP_COLUMN` holds the category code there and "" on
    data rows. Categories follow ``counts``' order; one in ``counts`` with no row in the table
    (cut by the limit) still gets its header. The input is not changed.
    """
    data = table.assign(**{GROUP_COLUMN: ""})
    columns = [*table.columns, GROUP_COLUMN]
    pieces = []
    for category, count in counts.items():
        rows = data[data["category"] == category]
        disputed = _floats(rows["disputed_amount"]).fillna(0.0).sum() if len(rows) else 0.0
        header: dict[str, Any] = dict.fromkeys(columns)
        header.update({GROUP_COLUMN: category, "category": f"{CATEGORY_LABELS.get(category, category)} "
                                                           f"({int(count):,} row{'s' if count != 1 else ''})",
                       "reason": f"disputed {disputed:,.2f} on the rows shown" if disputed else ""})
        pieces.append(pd.DataFrame([header], columns=columns))
        pieces.append(rows[columns])
    if not pieces:
        return data[columns]
    return pd.concat(pieces, ignore_index=True)


def results_table(result: ReconResult, include_matched: bool = False, *, categories: Sequence[str] | None = None,
                  limit: int | None = None) -> pd.DataFrame:
    """The grid's rows: discrepancies (and optionally matched rows, category = their status).

    Rows are in ``CATEGORY_LABELS`` order (stable within a category: the result's own order),
    restricted to ``categories`` when given, and cut to the first ``limit``. Only the rows kept
    are converted for display (times to ISO text, money and seconds to floats), so a tolerance
    of 0 s with 300k discrepancies costs no more than the grid shows.
    """
    wanted = None if categories is None else set(categories)
    parts = []
    for frame, ranks in _table_parts(result, include_matched):
        keep = np.ones(len(frame), dtype=bool)
        if wanted is not None:
            keep = np.isin(ranks, [i for i, c in enumerate(CATEGORY_LABELS) if c in wanted])
        parts.append((frame, ranks, np.flatnonzero(keep)))
    if not any(len(rows) for _, _, rows in parts):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TABLE_COLUMNS})
    # One stable order over all parts: by category rank, then part, then the part's own row order.
    part_of = np.concatenate([np.full(len(rows), i, dtype=np.int64) for i, (_, _, rows) in enumerate(parts)])
    row_of = np.concatenate([rows for _, _, rows in parts])
    rank_of = np.concatenate([ranks[rows] for _, ranks, rows in parts])
    order = np.lexsort((row_of, part_of, rank_of))
    if limit is not None:
        order = order[: max(0, int(limit))]
    pieces = []
    for i, (frame, _, _) in enumerate(parts):
        picked = row_of[order][part_of[order] == i]
        if len(picked):
            renamed = frame.iloc[picked].rename(columns={"status": "category"})
            pieces.append(renamed.reindex(columns=list(TABLE_COLUMNS)))
    if not pieces:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in TABLE_COLUMNS})
    table = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0].reset_index(drop=True)
    # The pieces are each in order; interleave them back into the one order.
    offsets = np.cumsum([0] + [len(p) for p in pieces])[:-1]
    present = [i for i, (frame, _, _) in enumerate(parts) if (part_of[order] == i).any()]
    position = np.empty(len(order), dtype=np.int64)
    for offset, i in zip(offsets, present, strict=True):
        in_part = part_of[order] == i
        position[in_part] = offset + np.arange(int(in_part.sum()))
    return _display_columns(table.iloc[position].reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# Tolerance sensitivity
# --------------------------------------------------------------------------------------------

def tolerance_sensitivity(run: PreparedRun, rating: RatingSettings,
                          tolerances: Sequence[float] = TOLERANCE_GRID, *, exact: bool | None = None) -> pd.DataFrame:
    """Pairs and discrepancies at each time tolerance (seconds), for the sensitivity curve.

    ``pairs`` counts the one-to-one pairs within the tolerance (matched rows and cost variances).
    ``exact`` (default: when both sides hold at most ``EXACT_CURVE_MAX_ROWS`` rows) classifies at
    each tolerance and counts every discrepancy; otherwise only the assignment runs and
    ``discrepancies`` counts the unmatched rows (missing in CDR / in invoice, duplicates), without
    cost variances. The ``counted`` column says which.
    """
    if exact is None:
        exact = len(run.invoice_rows) + len(run.cdr_rows) <= EXACT_CURVE_MAX_ROWS
    rows = []
    for tolerance in tolerances:
        if tolerance > run.candidates.max_tolerance_s:
            continue
        if exact:
            summary = classify(run, float(tolerance), rating).summary
            counts = summary["counts"]
            rows.append({"tolerance_s": float(tolerance),
                         "pairs": int(counts["matched"]) + int(counts[CATEGORY_COST_VARIANCE]),
                         "discrepancies": discrepancy_count(summary), "counted": "all discrepancies"})
        else:
            assignment = assign_one_to_one(run.candidates, float(tolerance))
            rows.append({"tolerance_s": float(tolerance), "pairs": len(assignment.matches),
                         "discrepancies": len(assignment.unmatched_invoice) + len(assignment.unmatched_cdr),
                         "counted": "unmatched rows only, without cost variances"})
    return pd.DataFrame(rows, columns=["tolerance_s", "pairs", "discrepancies", "counted"])


# --------------------------------------------------------------------------------------------
# One row explained
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RowExplanation:
    """Why one result row landed where it did, with both records side by side."""

    category: str
    headline: str
    reason: str
    delta_s: float | None
    invoice_record: dict[str, Any] | None
    cdr_record: dict[str, Any] | None
    other_is_nearest: bool
    """The record on the other side is the nearest same-key row, not a partner."""
    candidates: pd.DataFrame
    """The other side's rows nearest in time with the same key: record id, Δt, in window, paired with."""


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _position(record_ids: pd.Series, record_id: str) -> int | None:
    if not record_id:
        return None
    hits = np.flatnonzero(record_ids.to_numpy(dtype=object) == record_id)
    return int(hits[0]) if len(hits) else None


def _row_at(run: PreparedRun, side: str, position: int) -> pd.Series:
    """The full row of a matcher position (``run.*_order`` maps positions to rows)."""
    rows, order = (run.invoice_rows, run.invoice_order) if side == "invoice" else (run.cdr_rows, run.cdr_order)
    return rows.iloc[int(order[position])]


def _record(run: PreparedRun, side: str, position: int | None) -> dict[str, Any] | None:
    if position is None:
        return None
    return {k: _text(v) for k, v in _row_at(run, side, position).to_dict().items()}


CANDIDATE_COLUMNS = ["record_id", "start_utc", "delta_s", "within_tolerance", "paired_with"]


def nearest_candidates(run: PreparedRun, result: ReconResult, side: str, position: int,
                       limit: int = CANDIDATES_SHOWN) -> pd.DataFrame:
    """Other-side rows with the same key within the widest window, nearest first.

    Columns: ``record_id``, ``start_utc``, ``delta_s`` (invoice start minus CDR start),
    ``within_tolerance``, ``paired_with`` (its partner at the current tolerance, if any).
    Falls back to the nearest same-key row outside the window when there is no candidate.
    """
    cand = run.candidates
    edges = cand.edges
    this_side, other_side = (edges.invoice, edges.cdr) if side == "invoice" else (edges.cdr, edges.invoice)
    mask = this_side == position
    others, deltas = other_side[mask], edges.delta_ms[mask]
    if not len(others):
        nearest = cand.invoice_nearest if side == "invoice" else cand.cdr_nearest
        if nearest.nearest[position] >= 0:
            others = np.array([nearest.nearest[position]])
            deltas = np.array([nearest.nearest_delta_ms[position]])
    order = np.argsort(np.abs(deltas), kind="stable")[:limit]
    others, deltas = others[order], deltas[order]
    other = "cdr" if side == "invoice" else "invoice"
    other_rows = [_row_at(run, other, int(o)) for o in others]
    matches = result.assignment.matches
    other_index, partner_id = (("cdr_index", "invoice_record_id") if side == "invoice"
                               else ("invoice_index", "cdr_record_id"))
    partners = dict(zip(matches[other_index].to_numpy(), matches[partner_id].to_numpy(), strict=True))
    tolerance_ms = result.assignment.tolerance_s * 1000
    return pd.DataFrame({
        "record_id": [str(r["record_id"]) for r in other_rows],
        "start_utc": [_text(r["start_time_utc"]) for r in other_rows],
        "delta_s": [d / 1000 for d in deltas],
        "within_tolerance": [bool(abs(d) <= tolerance_ms) for d in deltas],
        "paired_with": [_text(partners.get(o, "")) for o in others],
    }, columns=CANDIDATE_COLUMNS)


def explain_row(run: PreparedRun, result: ReconResult, row: Mapping[str, Any]) -> RowExplanation:
    """Explain one row of :func:`results_table` (a discrepancy or a matched pair).

    Both records come from the prepared run. A row with one side only (missing, duplicate) shows
    the nearest same-key row of the other side (``nearest_record_id``) and says so.
    """
    category = _text(row.get("category"))
    invoice_id, cdr_id = _text(row.get("invoice_record_id")), _text(row.get("cdr_record_id"))
    nearest_id = _text(row.get("nearest_record_id"))
    inv_pos = _position(run.candidates.invoice.record_id, invoice_id)
    cdr_pos = _position(run.candidates.cdr.record_id, cdr_id)
    other_is_nearest = False
    if invoice_id and not cdr_id and nearest_id:
        cdr_pos = _position(run.candidates.cdr.record_id, nearest_id)
        other_is_nearest = cdr_pos is not None
    elif cdr_id and not invoice_id and nearest_id:
        inv_pos = _position(run.candidates.invoice.record_id, nearest_id)
        other_is_nearest = inv_pos is not None
    side, position = ("invoice", inv_pos) if invoice_id else ("cdr", cdr_pos)
    candidates = (nearest_candidates(run, result, side, position) if position is not None
                  else pd.DataFrame(columns=CANDIDATE_COLUMNS))
    delta = pd.to_numeric(pd.Series([row.get("time_offset_s")]), errors="coerce").iloc[0]
    delta_s = None if pd.isna(delta) else float(delta)
    if delta_s is None and other_is_nearest and len(candidates):
        delta_s = float(candidates["delta_s"].iloc[0])
    headline = CATEGORY_MEANING.get(category, category)
    if delta_s is not None:
        headline += f" Δt = {delta_s:+.3f} s; the time tolerance is {result.assignment.tolerance_s:g} s."
    return RowExplanation(category, headline, _text(row.get("reason")), delta_s, _record(run, "invoice", inv_pos),
                          _record(run, "cdr", cdr_pos), other_is_nearest, candidates)
