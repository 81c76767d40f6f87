"""Candidate generation: everything about the two tables that does not depend on the tolerance.

``build_candidates`` reads both tables once, at the widest tolerance the caller will ask for,
and returns a ``CandidateSet``: the rows as arrays (position = record_id order), every
same-key pair within the widest window, the exact identifier matches, and for rows with no
candidate at all the nearest same-key row on the other side. ``assign_one_to_one`` then
derives the matching for any tolerance up to that width without touching DuckDB again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recon_core.errors import SettingsError
from recon_core.match.settings import (
    DERIVED_KEY_PARTS,
    MatchSettings,
    validate_match_settings,
)
from recon_core.match.solve import CostLevels, first_of_groups, solve_max_matching
from recon_core.match.sql import (
    READING_ALTERNATE,
    READING_PRIMARY,
    column_names_sql,
    drop_view_sql,
    id_candidates_sql,
    rows_sql,
    time_candidates_sql,
)
from recon_core.sql import execute

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
TableLike = str | duckdb.DuckDBPyRelation

METHOD_SIP_CALL_ID = "sip_call_id"
METHOD_CALL_ID = "call_id"
METHOD_TIME_WINDOW = "time_window"

REQUIRED_COLUMNS = ("record_id", "start_time_utc", "duration_seconds")
DIRECTION_COLUMNS = ("direction", "source_number", "destination_number")

# |delta duration| is compared in whole seconds and capped: beyond an hour apart, durations
# say nothing more about which pairing is right.
DURATION_CAP_S = 3600
# Identifier matches ignore the window, but duplicates of one identifier pair up by time.
ID_DELTA_CAP_MS = 86_400_000

SIDE_INVOICE = "invoice"
SIDE_CDR = "cdr"

# Results are fetched as one Arrow batch: chunked columns would be copied again to be combined.
ONE_BATCH = 1 << 30


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class CallRows:
    """One side's rows as the matcher sees them; array position = rank of record_id."""

    side: str
    record_id: pd.Series
    key_hash: np.ndarray
    has_key: np.ndarray
    tie_hash: np.ndarray
    has_tie: np.ndarray
    start_ms: np.ndarray
    alt_start_ms: np.ndarray
    has_alt: np.ndarray
    duration_ms: np.ndarray
    scan_row: np.ndarray
    """Row of the table scan at each position (a scan of the same table repeats that order)."""

    def __len__(self) -> int:
        return len(self.start_ms)


@dataclass(frozen=True)
class CandidateEdges:
    """Same-key (invoice, CDR) pairs within the widest window, one per pair, in no fixed order.

    ``delta_ms`` is invoice start minus CDR start under the readings that bring them closest
    (``*_reading``: 0 primary, 1 alternate DST reading).
    """

    invoice: np.ndarray
    cdr: np.ndarray
    delta_ms: np.ndarray
    invoice_reading: np.ndarray
    cdr_reading: np.ndarray
    invoice_start_ms: np.ndarray
    """Invoice start under ``invoice_reading`` (likewise ``cdr_start_ms``)."""
    cdr_start_ms: np.ndarray
    duration_delta_ms: np.ndarray
    tie_mismatch: np.ndarray

    def __len__(self) -> int:
        return len(self.invoice)


@dataclass(frozen=True)
class IdMatches:
    """Exact identifier matches (one-to-one), made before and regardless of the time window."""

    invoice: np.ndarray
    cdr: np.ndarray
    method: np.ndarray
    delta_ms: np.ndarray
    """Invoice start minus CDR start under the closest readings (DST-flagged rows have two)."""
    invoice_reading: np.ndarray
    cdr_reading: np.ndarray
    invoice_candidates: np.ndarray
    """CDR rows sharing the invoice row's identifier (more than 1 means duplicates)."""
    cdr_candidates: np.ndarray
    """Invoice rows sharing the CDR row's identifier."""

    def __len__(self) -> int:
        return len(self.invoice)


@dataclass(frozen=True)
class NearestOther:
    """For rows without any candidate: is the key on the other side, and the nearest such row."""

    key_on_other_side: np.ndarray
    nearest: np.ndarray
    nearest_delta_ms: np.ndarray
    """Invoice start minus CDR start (same sign convention as the matches)."""


@dataclass(frozen=True)
class CandidateSet:
    """All tolerance-independent work for one pair of tables (see module docstring)."""

    settings: MatchSettings
    invoice: CallRows
    cdr: CallRows
    edges: CandidateEdges
    id_matches: IdMatches
    invoice_nearest: NearestOther
    cdr_nearest: NearestOther

    @property
    def max_tolerance_s(self) -> float:
        return self.settings.max_tolerance_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "invoice_rows": len(self.invoice),
            "cdr_rows": len(self.cdr),
            "candidate_pairs": len(self.edges),
            "id_matches": len(self.id_matches),
        }


def build_candidates(
    con: duckdb.DuckDBPyConnection,
    invoice_table: TableLike,
    cdr_table: TableLike,
    settings: MatchSettings | None = None,
    progress: Progress | None = None,
) -> CandidateSet:
    """Read both sides and generate candidates at ``settings.max_tolerance_s``.

    See :func:`build_candidates_with_rows` (which also returns columns of the rows it read).
    """
    return build_candidates_with_rows(con, invoice_table, cdr_table, settings, progress=progress)[0]


def build_candidates_with_rows(
    con: duckdb.DuckDBPyConnection,
    invoice_table: TableLike,
    cdr_table: TableLike,
    settings: MatchSettings | None = None,
    *,
    columns: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> tuple[CandidateSet, pa.Table, pa.Table]:
    """Read both sides and generate candidates at ``settings.max_tolerance_s``; with the same
    scan, ``columns`` of each side's rows (an Arrow table in scan order: row ``scan_row[p]`` of
    it is matcher position ``p``), so whoever reports the rows need not read them again.

    ``invoice_table`` / ``cdr_table`` are table or view names on ``con`` (quoted as given) or
    relations of ``con``, with the canonical columns (``record_id``, ``start_time_utc``,
    ``duration_seconds`` and whatever the key and tie-breaker use; ``start_time_alt_utc``,
    ``sip_call_id`` and ``call_id`` are optional). Rows excluded by rule (zero duration ...)
    must already be filtered out. Nothing on ``con`` is changed except temporary views that
    are dropped again.

    Raises ``SettingsError`` for invalid settings or missing columns; a query DuckDB rejects
    (e.g. a column of the wrong type) comes back as ``recon_core.sql.SQLExecutionError``.
    """
    settings = settings or MatchSettings()
    validate_match_settings(settings)
    report = progress or (lambda _fraction, _message: None)
    prefix = f"__recon_match_{uuid.uuid4().hex[:12]}"
    created_views: list[str] = []
    registered: list[str] = []
    try:
        names = {}
        for side, table in ((SIDE_INVOICE, invoice_table), (SIDE_CDR, cdr_table)):
            if isinstance(table, duckdb.DuckDBPyRelation):
                view = f"{prefix}_{side}_input"
                table.create_view(view, replace=True)
                created_views.append(view)
                names[side] = view
            else:
                names[side] = table
        present = {side: _columns(con, name) for side, name in names.items()}
        _check_columns(settings, names, present)

        report(0.05, "reading rows")
        rows: dict[str, CallRows] = {}
        identifiers: dict[str, Any] = {}
        reported: dict[str, pa.Table] = {}
        # record_id is read once (as text), for the matcher and for the report.
        extra = tuple(c for c in columns if c != "record_id")
        for side in (SIDE_INVOICE, SIDE_CDR):
            sql = rows_sql(names[side], settings.key, settings.tie_breaker, frozenset(present[side]), extra)
            table = execute(con, sql, {"outbound": "outbound", "inbound": "inbound"}).to_arrow_table(ONE_BATCH)
            reported[side] = pa.table({c: table.column("record_id" if c == "record_id" else "x_" + c)
                                       for c in columns})
            table = table.drop_columns(["x_" + c for c in extra])
            rows[side], identifiers[side] = _call_rows(side, table, record_id_order(table.column("record_id")))
            del table
        invoice, cdr = rows[SIDE_INVOICE], rows[SIDE_CDR]

        report(0.45, "generating time-window candidates")
        window_ms = tolerance_ms(settings.max_tolerance_s)
        for side in (SIDE_INVOICE, SIDE_CDR):
            name = f"{prefix}_{side}_rows"
            con.register(name, _rows_table(rows[side]))
            registered.append(name)
        raw = execute(
            con,
            time_candidates_sql(registered[0], registered[1]),
            {
                "window_ms": window_ms,
                "bucket_ms": 2 * window_ms + 1,
                "origin_ms": _earliest_start(invoice, cdr),
            },
        ).to_arrow_table(ONE_BATCH)

        report(0.65, "matching SIP Call-IDs and call ids")
        methods = [
            m
            for m, on in (
                (METHOD_SIP_CALL_ID, settings.match_sip_call_id),
                (METHOD_CALL_ID, settings.match_call_id),
            )
            if on
        ]
        id_pairs = {}
        if methods:
            id_tables = []
            for side in (SIDE_INVOICE, SIDE_CDR):
                name = f"{prefix}_{side}_ids"
                con.register(name, identifiers[side].select(["idx"] + [f"{m}_hash" for m in methods]))
                registered.append(name)
                id_tables.append(name)
            for method in methods:
                pairs = execute(
                    con, id_candidates_sql(id_tables[0], id_tables[1], f"{method}_hash")
                ).to_arrow_table()
                id_pairs[method] = _confirmed_pairs(
                    method, pairs, identifiers[SIDE_INVOICE], identifiers[SIDE_CDR]
                )
    finally:
        for name in registered:
            con.unregister(name)
        for view in created_views:
            execute(con, drop_view_sql(view))
    edges = _edges_from_raw(raw, invoice, cdr)
    id_matches = _match_identifiers(id_pairs, invoice, cdr)

    report(0.85, "finding nearest calls for rows without candidates")
    invoice_nearest = nearest_same_key(invoice, cdr, edges.invoice, is_invoice=True)
    cdr_nearest = nearest_same_key(cdr, invoice, edges.cdr, is_invoice=False)
    report(1.0, "candidates ready")
    logger.info(
        "candidates: %d invoice rows, %d CDR rows, %d pairs within %g s, %d identifier matches",
        len(invoice),
        len(cdr),
        len(edges),
        settings.max_tolerance_s,
        len(id_matches),
    )
    candidates = CandidateSet(
        settings=settings,
        invoice=invoice,
        cdr=cdr,
        edges=edges,
        id_matches=id_matches,
        invoice_nearest=invoice_nearest,
        cdr_nearest=cdr_nearest,
    )
    return candidates, reported[SIDE_INVOICE], reported[SIDE_CDR]


def tolerance_ms(tolerance_s: float) -> int:
    """Window in whole milliseconds (timestamps carry millisecond precision)."""
    return int(round(tolerance_s * 1000))


def _earliest_start(*sides: CallRows) -> int:
    """A time at or before every reading on both sides (the origin of the time buckets)."""
    starts = [int(min(side.start_ms.min(), side.alt_start_ms.min())) for side in sides if len(side)]
    return min(starts, default=0)


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    description = execute(con, column_names_sql(name)).description or []
    return [d[0] for d in description]


def _check_columns(settings: MatchSettings, names: dict[str, str], columns: dict[str, list[str]]) -> None:
    needed = list(REQUIRED_COLUMNS)
    for part in settings.key + settings.tie_breaker:
        needed += list(DIRECTION_COLUMNS) if part in DERIVED_KEY_PARTS else [part]
    problems = []
    for side, present in columns.items():
        missing = [c for c in dict.fromkeys(needed) if c not in present]
        if missing:
            problems.append(
                f"the {side} table {names[side]!r} has no column(s) {', '.join(map(repr, missing))}"
            )
    if problems:
        raise SettingsError("cannot match: " + "; ".join(problems))


def record_id_order(record_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Row order that ranks ``record_ids`` (byte order, missing last, equal ids in input order):
    the matcher's positions."""
    return np.asarray(pc.array_sort_indices(record_ids).to_numpy(), dtype=np.int64)


def _call_rows(side: str, table: pa.Table, row_at: np.ndarray) -> tuple[CallRows, pa.Table]:
    """Arrays in position order (rank by record_id: ``row_at`` from :func:`record_id_order`)
    from a result in scan order.

    Also returns the identifier columns, still in scan order, with each row's position (idx).
    record_id is unique per side; should it repeat, the (stable) sort keeps scan order.
    """
    order = pa.array(row_at)
    position = np.empty(len(row_at), dtype=np.int64)
    position[row_at] = np.arange(len(row_at))

    def valid(name: str) -> np.ndarray:
        return _frozen(table.column(name).is_valid().to_numpy(zero_copy_only=False)[row_at])

    def values(name: str, fill: int | None = None) -> np.ndarray:
        column = table.column(name)
        if fill is not None and column.null_count:
            column = pc.fill_null(column, fill)
        return _frozen(np.ascontiguousarray(column.to_numpy()[row_at], dtype=np.int64))

    start_ms = values("start_ms")
    has_alt = valid("alt_start_ms")
    alt_start_ms = np.where(has_alt, values("alt_start_ms", 0), start_ms)
    rows = CallRows(
        side=side,
        record_id=table.column("record_id").take(order).to_pandas(),
        key_hash=values("key_hash", 0),
        has_key=valid("key_hash"),
        tie_hash=values("tie_hash", 0),
        has_tie=valid("tie_hash"),
        start_ms=start_ms,
        alt_start_ms=_frozen(alt_start_ms),
        has_alt=has_alt,
        duration_ms=values("duration_ms"),
        scan_row=_frozen(row_at),
    )
    identifiers = table.select(["sip_call_id_hash", "sip_call_id", "call_id_hash", "call_id"]).append_column(
        "idx", pa.array(position)
    )
    return rows, identifiers


def _rows_table(rows: CallRows) -> pa.Table:
    """The columns candidate generation needs, as a zero-copy Arrow table for DuckDB to scan."""
    return pa.table(
        {
            "idx": np.arange(len(rows), dtype=np.int64),
            "key_hash": rows.key_hash,
            "has_key": rows.has_key,
            "start_ms": rows.start_ms,
            "alt_start_ms": rows.alt_start_ms,
            "has_alt": rows.has_alt,
        }
    )


def _edges_from_raw(raw: pa.Table, invoice: CallRows, cdr: CallRows) -> CandidateEdges:
    raw = raw.combine_chunks()

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.asarray(raw.column(name).to_numpy(), dtype=dtype)

    inv = column("invoice_idx", np.int64)
    cdr_idx = column("cdr_idx", np.int64)
    inv_reading = column("invoice_reading", np.int8)
    cdr_reading = column("cdr_reading", np.int8)
    delta = column("delta_ms", np.int64)
    # A pair can appear under several readings when a row has an alternate DST reading: keep the
    # closest (primary first on a tie). Only pairs touching such rows can repeat.
    multi = invoice.has_alt[inv] | cdr.has_alt[cdr_idx]
    if multi.any():
        pair = inv[multi] * max(len(cdr), 1) + cdr_idx[multi]
        idx = np.flatnonzero(multi)
        order = np.lexsort((cdr_reading[idx], inv_reading[idx], np.abs(delta[idx]), pair))
        best = idx[order][first_of_groups(pair[order])]
        keep = np.concatenate([np.flatnonzero(~multi), best])
        inv, cdr_idx, delta = inv[keep], cdr_idx[keep], delta[keep]
        inv_reading, cdr_reading = inv_reading[keep], cdr_reading[keep]
    return CandidateEdges(
        invoice=_frozen(inv),
        cdr=_frozen(cdr_idx),
        delta_ms=_frozen(delta),
        invoice_reading=_frozen(inv_reading),
        cdr_reading=_frozen(cdr_reading),
        invoice_start_ms=_frozen(reading_start(invoice, inv, inv_reading)),
        cdr_start_ms=_frozen(reading_start(cdr, cdr_idx, cdr_reading)),
        duration_delta_ms=_frozen(np.abs(invoice.duration_ms[inv] - cdr.duration_ms[cdr_idx])),
        tie_mismatch=_frozen(~tie_agrees(invoice, cdr, inv, cdr_idx)),
    )


def reading_start(rows: CallRows, positions: np.ndarray, reading: np.ndarray) -> np.ndarray:
    """Start (ms) of each row under the given reading (primary or alternate)."""
    if not rows.has_alt.any():
        return rows.start_ms[positions]
    return np.where(reading == READING_ALTERNATE, rows.alt_start_ms[positions], rows.start_ms[positions])


def closest_readings(
    invoice: CallRows, cdr: CallRows, inv: np.ndarray, cdr_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(delta ms, invoice reading, CDR reading) of each pair under the readings that bring the
    two starts closest; primary wins a tie."""
    delta = invoice.start_ms[inv] - cdr.start_ms[cdr_idx]
    inv_reading = np.zeros(len(inv), dtype=np.int8)
    cdr_reading = np.zeros(len(inv), dtype=np.int8)
    inv_alt, cdr_alt = invoice.has_alt[inv], cdr.has_alt[cdr_idx]
    if not (inv_alt.any() or cdr_alt.any()):
        return delta, inv_reading, cdr_reading
    times = {
        (READING_PRIMARY, READING_PRIMARY): None,
        (READING_PRIMARY, READING_ALTERNATE): cdr_alt,
        (READING_ALTERNATE, READING_PRIMARY): inv_alt,
        (READING_ALTERNATE, READING_ALTERNATE): inv_alt & cdr_alt,
    }
    for (ir, cr), valid in times.items():
        if valid is None:
            continue
        t_inv = invoice.alt_start_ms[inv] if ir == READING_ALTERNATE else invoice.start_ms[inv]
        t_cdr = cdr.alt_start_ms[cdr_idx] if cr == READING_ALTERNATE else cdr.start_ms[cdr_idx]
        candidate = t_inv - t_cdr
        better = valid & (np.abs(candidate) < np.abs(delta))
        delta = np.where(better, candidate, delta)
        inv_reading[better] = ir
        cdr_reading[better] = cr
    return delta, inv_reading, cdr_reading


def tie_agrees(invoice: CallRows, cdr: CallRows, inv: np.ndarray, cdr_idx: np.ndarray) -> np.ndarray:
    """True where both rows have the tie-breaker columns and they are equal."""
    return invoice.has_tie[inv] & cdr.has_tie[cdr_idx] & (invoice.tie_hash[inv] == cdr.tie_hash[cdr_idx])


def cost_levels(
    delta_ms: np.ndarray, duration_delta_ms: np.ndarray, tie_mismatch: np.ndarray, delta_cap_ms: int
) -> CostLevels:
    """The matcher's preference order: |delta t| (ms), then |delta duration| (s), then tie-breaker."""
    return CostLevels(
        values=(
            np.minimum(np.abs(delta_ms), delta_cap_ms),
            np.minimum((duration_delta_ms + 500) // 1000, DURATION_CAP_S),
            tie_mismatch.astype(np.int64),
        ),
        maxima=(int(delta_cap_ms), DURATION_CAP_S, 1),
    )


def _confirmed_pairs(method: str, pairs: Any, inv_ids: Any, cdr_ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the hash-equal pairs whose identifier text is really equal."""
    inv_idx = pairs.column("invoice_idx").to_numpy()
    cdr_idx = pairs.column("cdr_idx").to_numpy()
    # ``idx`` is a permutation of 0..n-1, so the row holding position p is row_of[p].
    inv_row_of = np.empty(inv_ids.num_rows, dtype=np.int64)
    inv_row_of[inv_ids.column("idx").to_numpy()] = np.arange(inv_ids.num_rows)
    cdr_row_of = np.empty(cdr_ids.num_rows, dtype=np.int64)
    cdr_row_of[cdr_ids.column("idx").to_numpy()] = np.arange(cdr_ids.num_rows)
    same = pc.equal(
        inv_ids.column(method).take(pa.array(inv_row_of[inv_idx])),
        cdr_ids.column(method).take(pa.array(cdr_row_of[cdr_idx])),
    )
    exact = same.to_numpy(zero_copy_only=False).astype(bool)
    return inv_idx[exact].astype(np.int64), cdr_idx[exact].astype(np.int64)


def _match_identifiers(
    id_pairs: dict[str, tuple[np.ndarray, np.ndarray]], invoice: CallRows, cdr: CallRows
) -> IdMatches:
    """One-to-one matches on each identifier in turn; rows matched earlier are not reused."""
    used_inv = np.zeros(len(invoice), dtype=bool)
    used_cdr = np.zeros(len(cdr), dtype=bool)
    parts: list[tuple[np.ndarray, ...]] = []
    for method, (inv, cdr_idx) in id_pairs.items():
        free = ~used_inv[inv] & ~used_cdr[cdr_idx]
        inv, cdr_idx = inv[free], cdr_idx[free]
        if inv.size == 0:
            continue
        order = np.lexsort((cdr_idx, inv))
        inv, cdr_idx = inv[order], cdr_idx[order]
        delta, inv_reading, cdr_reading = closest_readings(invoice, cdr, inv, cdr_idx)
        levels = cost_levels(
            delta,
            np.abs(invoice.duration_ms[inv] - cdr.duration_ms[cdr_idx]),
            ~tie_agrees(invoice, cdr, inv, cdr_idx),
            ID_DELTA_CAP_MS,
        )
        # Rows sharing one identifier form a complete bipartite group, so every pair of the group
        # is a candidate: an unlimited window describes it exactly for the banded programme.
        times = np.concatenate([invoice.start_ms[inv], cdr.start_ms[cdr_idx]])
        span = int(times.max() - times.min()) + 1
        chosen = solve_max_matching(
            inv,
            cdr_idx,
            levels,
            reading_start(invoice, inv, inv_reading),
            reading_start(cdr, cdr_idx, cdr_reading),
            span,
            n_left=len(invoice),
            n_right=len(cdr),
        )
        inv_count = np.bincount(inv, minlength=len(invoice))
        cdr_count = np.bincount(cdr_idx, minlength=len(cdr))
        used_inv[inv[chosen]] = True
        used_cdr[cdr_idx[chosen]] = True
        parts.append(
            (
                inv[chosen],
                cdr_idx[chosen],
                np.full(chosen.size, method, dtype=object),
                delta[chosen],
                inv_reading[chosen],
                cdr_reading[chosen],
                inv_count[inv[chosen]],
                cdr_count[cdr_idx[chosen]],
            )
        )
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        no_reading = np.zeros(0, dtype=np.int8)
        return IdMatches(empty, empty, np.zeros(0, dtype=object), empty, no_reading, no_reading, empty, empty)
    return IdMatches(*(_frozen(np.concatenate(columns)) for columns in zip(*parts, strict=True)))


def nearest_same_key(
    rows: CallRows, other: CallRows, with_edges: np.ndarray, is_invoice: bool
) -> NearestOther:
    """Nearest same-key row on the other side, for rows that have no candidate at all.

    Sorted search by (key, start) over both readings of both sides. Rows that have candidates
    find their nearest among them, so they are skipped here (left at -1).
    """
    n = len(rows)
    key_on_other = np.zeros(n, dtype=bool)
    nearest = np.full(n, -1, dtype=np.int64)
    nearest_delta = np.zeros(n, dtype=np.int64)
    has_candidate = np.zeros(n, dtype=bool)
    has_candidate[with_edges] = True
    key_on_other[has_candidate] = True
    query = np.flatnonzero(rows.has_key & ~has_candidate)
    if query.size and len(other):
        q_keys = rows.key_hash[query]
        other_idx = np.flatnonzero(other.has_key & pd.Index(other.key_hash).isin(q_keys))
        alt = other_idx[other.has_alt[other_idx]]
        o_idx = np.concatenate([other_idx, alt])
        o_t = np.concatenate([other.start_ms[other_idx], other.alt_start_ms[alt]])
        o_key = other.key_hash[o_idx]
        if o_idx.size:
            order = np.lexsort((o_idx, o_t, o_key))
            o_idx, o_t, o_key = o_idx[order], o_t[order], o_key[order]
            unique_keys, key_start = np.unique(o_key, return_index=True)
            key_stop = np.append(key_start[1:], len(o_key))
            pos = np.minimum(np.searchsorted(unique_keys, q_keys), len(unique_keys) - 1)
            present = unique_keys[pos] == q_keys
            key_on_other[query] = present
            q = query[present]
            lo, hi = key_start[pos[present]], key_stop[pos[present]]
            best = np.full(q.size, -1, dtype=np.int64)
            best_gap = np.full(q.size, np.iinfo(np.int64).max, dtype=np.int64)
            best_delta = np.zeros(q.size, dtype=np.int64)
            for times, mask in (
                (rows.start_ms[q], np.ones(q.size, dtype=bool)),
                (rows.alt_start_ms[q], rows.has_alt[q]),
            ):
                _closer_in_ranges(o_t, lo, hi, times, mask, o_idx, best, best_gap, best_delta)
            nearest[q] = best
            nearest_delta[q] = best_delta if is_invoice else -best_delta
    return NearestOther(_frozen(key_on_other), _frozen(nearest), _frozen(nearest_delta))


def _lower_bound(sorted_t: np.ndarray, lo: np.ndarray, hi: np.ndarray, values: np.ndarray) -> np.ndarray:
    """First index in each ``sorted_t[lo:hi]`` whose value is >= ``values`` (vectorised bisection)."""
    left, right = lo.copy(), hi.copy()
    last = max(len(sorted_t) - 1, 0)
    while True:
        active = left < right
        if not active.any():
            return left
        mid = (left + right) // 2
        go_right = active & (sorted_t[np.minimum(mid, last)] < values)
        left = np.where(go_right, mid + 1, left)
        right = np.where(active & ~go_right, mid, right)


def _closer_in_ranges(
    sorted_t: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    times: np.ndarray,
    mask: np.ndarray,
    ids: np.ndarray,
    best: np.ndarray,
    best_gap: np.ndarray,
    best_delta: np.ndarray,
) -> None:
    """Update the nearest entry of ``sorted_t[lo:hi]`` to each time; ties go to the lower id.

    Entries are sorted by (time, id), so the first entry of a run of equal times has the lowest
    id: the successor is the first entry >= time, the predecessor the first of the run just below.
    """
    last = max(len(sorted_t) - 1, 0)
    after = _lower_bound(sorted_t, lo, hi, times)
    has_before = after > lo
    before = _lower_bound(
        sorted_t, lo, after, np.where(has_before, sorted_t[np.clip(after - 1, 0, last)], times)
    )
    for candidate, valid in ((before, has_before), (after, after < hi)):
        ok = mask & valid
        c = np.clip(candidate, 0, last)
        delta = times - sorted_t[c]
        gap = np.abs(delta)
        better = ok & ((gap < best_gap) | ((gap == best_gap) & (ids[c] < best)))
        best[better] = ids[c][better]
        best_gap[better] = gap[better]
        best_delta[better] = delta[better]


__all__ = [
    "METHOD_CALL_ID",
    "METHOD_SIP_CALL_ID",
    "METHOD_TIME_WINDOW",
    "READING_ALTERNATE",
    "READING_PRIMARY",
    "CallRows",
    "CandidateEdges",
    "CandidateSet",
    "IdMatches",
    "NearestOther",
    "build_candidates",
    "build_candidates_with_rows",
    "cost_levels",
    "nearest_same_key",
    "tolerance_ms",
]
