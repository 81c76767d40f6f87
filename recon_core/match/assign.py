"""One-to-one assignment for a given tolerance, from a cached ``CandidateSet``.

``assign_one_to_one`` never touches DuckDB: it filters the cached candidates to the window,
solves the maximum matching (``recon_core.match.solve``) and explains every row left over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recon_core.errors import SettingsError
from recon_core.match.candidates import (
    METHOD_CALL_ID,
    METHOD_SIP_CALL_ID,
    METHOD_TIME_WINDOW,
    SIDE_CDR,
    SIDE_INVOICE,
    CallRows,
    CandidateSet,
    NearestOther,
    cost_levels,
    tolerance_ms,
)
from recon_core.match.settings import tolerance_problems
from recon_core.match.solve import first_of_groups, solve_max_matching

logger = logging.getLogger(__name__)

METHODS = (METHOD_SIP_CALL_ID, METHOD_CALL_ID, METHOD_TIME_WINDOW)
READINGS = ("primary", "alternate")

REASON_NO_KEY = "no_key"
REASON_KEY_NOT_ON_OTHER_SIDE = "key_not_on_other_side"
REASON_OUTSIDE_TOLERANCE = "outside_tolerance"
REASON_LOST_TO_OTHER_PAIR = "lost_to_other_pair"
REASONS = (REASON_NO_KEY, REASON_KEY_NOT_ON_OTHER_SIDE, REASON_OUTSIDE_TOLERANCE, REASON_LOST_TO_OTHER_PAIR)

SIDE_LABELS = {SIDE_INVOICE: "invoice", SIDE_CDR: "CDR"}

MATCH_COLUMNS = (
    "invoice_record_id",
    "cdr_record_id",
    "method",
    "delta_seconds",
    "invoice_reading",
    "cdr_reading",
    "ambiguous",
    "invoice_candidates",
    "cdr_candidates",
    "duration_delta_seconds",
    "contact_agrees",
    "invoice_index",
    "cdr_index",
)
UNMATCHED_COLUMNS = (
    "record_id",
    "reason",
    "explanation",
    "other_record_id",
    "offset_seconds",
    "winner_record_id",
    "index",
)


@dataclass(frozen=True)
class MatchAssignment:
    """The one-to-one matching at one tolerance.

    ``matches``: one row per pair, ``MATCH_COLUMNS``. ``delta_seconds`` is invoice start minus
    CDR start under the readings used (``invoice_reading`` / ``cdr_reading``: primary or
    alternate DST reading); ``method`` is sip_call_id, call_id or time_window; ``ambiguous`` is
    True when either row had another candidate (within the tolerance, or sharing its identifier)
    and ``*_candidates`` say how many. ``duration_delta_seconds`` is invoice duration minus CDR
    duration; ``contact_agrees``: the tie-breaker columns agree. ``*_index`` are positions in the
    candidate set (record_id order).

    ``unmatched_invoice`` / ``unmatched_cdr``: one row per row left over, ``UNMATCHED_COLUMNS``:
    a ``reason`` code (``REASONS``), a sentence a person can act on, the other-side row it
    refers to (nearest call, or the candidate it lost), ``offset_seconds`` = that row's start
    minus this row's start (as in the sentence), and, for lost candidates, the row that won it.
    """

    tolerance_s: float
    matches: pd.DataFrame
    unmatched_invoice: pd.DataFrame
    unmatched_cdr: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """Counts by method and by reason, for a status line or a report header."""
        return {
            "tolerance_s": self.tolerance_s,
            "matched": len(self.matches),
            "by_method": {m: int((self.matches["method"] == m).sum()) for m in METHODS},
            "ambiguous": int(self.matches["ambiguous"].sum()),
            "unmatched_invoice": {r: int((self.unmatched_invoice["reason"] == r).sum()) for r in REASONS},
            "unmatched_cdr": {r: int((self.unmatched_cdr["reason"] == r).sum()) for r in REASONS},
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists of records) for JSON reports."""
        return {
            "summary": self.summary(),
            "matches": _records(self.matches),
            "unmatched_invoice": _records(self.unmatched_invoice),
            "unmatched_cdr": _records(self.unmatched_cdr),
        }


def assign_one_to_one(candidates: CandidateSet, tolerance_s: float | None = None) -> MatchAssignment:
    """Pair invoice rows with CDR rows one-to-one within ``tolerance_s`` (default: the settings').

    Identifier matches (sip_call_id, then call_id) come first; the remaining rows are paired by
    time window: as many pairs as possible, then the smallest total |delta t|, then the smallest
    total |delta duration|, then tie-breaker agreement. Raises ``SettingsError`` when the
    tolerance is negative or wider than the candidates were generated for.
    """
    if tolerance_s is None:
        tolerance_s = candidates.settings.tolerance_s
    problems = tolerance_problems(tolerance_s)
    if not problems and tolerance_s > candidates.max_tolerance_s:
        problems.append(
            f"tolerance {tolerance_s:g} s is wider than the {candidates.max_tolerance_s:g} s the "
            "candidates were generated for; generate candidates again with a wider maximum"
        )
    if problems:
        raise SettingsError("; ".join(problems))
    window = tolerance_ms(tolerance_s)
    inv, cdr, edges, ids = candidates.invoice, candidates.cdr, candidates.edges, candidates.id_matches

    id_used_inv = np.zeros(len(inv), dtype=bool)
    id_used_cdr = np.zeros(len(cdr), dtype=bool)
    id_used_inv[ids.invoice] = True
    id_used_cdr[ids.cdr] = True

    within = np.abs(edges.delta_ms) <= window
    free = np.flatnonzero(within & ~id_used_inv[edges.invoice] & ~id_used_cdr[edges.cdr])
    f_inv, f_cdr = edges.invoice[free], edges.cdr[free]
    inv_time, cdr_time = edges.invoice_start_ms[free], edges.cdr_start_ms[free]
    levels = cost_levels(
        edges.delta_ms[free], edges.duration_delta_ms[free], edges.tie_mismatch[free], window
    )
    chosen = free[solve_max_matching(f_inv, f_cdr, levels, inv_time, cdr_time, window)]

    # Everything about the pairs, scattered by invoice position (one pass, no sort).
    t_inv, t_cdr = edges.invoice[chosen], edges.cdr[chosen]
    pairs = _Pairs.empty(len(inv), len(cdr))
    id_codes = np.where(ids.method == METHOD_SIP_CALL_ID, 0, 1).astype(np.int8)
    pairs.record(
        ids.invoice,
        ids.cdr,
        id_codes,
        ids.delta_ms,
        ids.invoice_reading,
        ids.cdr_reading,
        ids.invoice_candidates,
        ids.cdr_candidates,
    )
    pairs.record(
        t_inv,
        t_cdr,
        2,
        edges.delta_ms[chosen],
        edges.invoice_reading[chosen],
        edges.cdr_reading[chosen],
        np.bincount(f_inv, minlength=len(inv))[t_inv],
        np.bincount(f_cdr, minlength=len(cdr))[t_cdr],
    )
    matches = _matches_frame(candidates, pairs)
    unmatched_inv = _explain_side(candidates, SIDE_INVOICE, within, pairs, tolerance_s)
    unmatched_cdr = _explain_side(candidates, SIDE_CDR, within, pairs, tolerance_s)
    logger.info(
        "matched %d pairs at %g s (%d by identifier); %d invoice and %d CDR rows unmatched",
        len(matches),
        tolerance_s,
        len(ids),
        len(unmatched_inv),
        len(unmatched_cdr),
    )
    return MatchAssignment(float(tolerance_s), matches, unmatched_inv, unmatched_cdr)


@dataclass
class _Pairs:
    """Working arrays of one assignment, indexed by invoice position (partner: CDR position)
    plus the reverse link; filled by ``record`` and read by the frame and the explanations."""

    inv_partner: np.ndarray
    cdr_partner: np.ndarray
    method: np.ndarray
    delta_ms: np.ndarray
    inv_reading: np.ndarray
    cdr_reading: np.ndarray
    inv_count: np.ndarray
    cdr_count: np.ndarray

    @classmethod
    def empty(cls, n_inv: int, n_cdr: int) -> _Pairs:
        return cls(
            inv_partner=np.full(n_inv, -1, dtype=np.int64),
            cdr_partner=np.full(n_cdr, -1, dtype=np.int64),
            method=np.full(n_inv, -1, dtype=np.int8),
            delta_ms=np.zeros(n_inv, dtype=np.int64),
            inv_reading=np.zeros(n_inv, dtype=np.int8),
            cdr_reading=np.zeros(n_inv, dtype=np.int8),
            inv_count=np.zeros(n_inv, dtype=np.int64),
            cdr_count=np.zeros(n_inv, dtype=np.int64),
        )

    def record(
        self,
        inv: np.ndarray,
        cdr: np.ndarray,
        method: Any,
        delta_ms: Any,
        inv_reading: Any,
        cdr_reading: Any,
        inv_count: Any,
        cdr_count: Any,
    ) -> None:
        self.inv_partner[inv] = cdr
        self.cdr_partner[cdr] = inv
        self.method[inv] = method
        self.delta_ms[inv] = delta_ms
        self.inv_reading[inv] = inv_reading
        self.cdr_reading[inv] = cdr_reading
        self.inv_count[inv] = inv_count
        self.cdr_count[inv] = cdr_count


def _contact_agrees(inv: CallRows, cdr: CallRows, i: np.ndarray, c: np.ndarray) -> np.ndarray:
    return inv.has_tie[i] & cdr.has_tie[c] & (inv.tie_hash[i] == cdr.tie_hash[c])


def _matches_frame(candidates: CandidateSet, pairs: _Pairs) -> pd.DataFrame:
    inv, cdr = candidates.invoice, candidates.cdr
    invoice_index = np.flatnonzero(pairs.inv_partner >= 0)
    cdr_index = pairs.inv_partner[invoice_index]
    inv_count, cdr_count = pairs.inv_count[invoice_index], pairs.cdr_count[invoice_index]
    return pd.DataFrame(
        {
            "invoice_record_id": inv.record_id.array.take(invoice_index),
            "cdr_record_id": cdr.record_id.array.take(cdr_index),
            "method": pd.Categorical.from_codes(pairs.method[invoice_index], categories=list(METHODS)),
            "delta_seconds": pairs.delta_ms[invoice_index] / 1000.0,
            "invoice_reading": pd.Categorical.from_codes(
                pairs.inv_reading[invoice_index], categories=list(READINGS)
            ),
            "cdr_reading": pd.Categorical.from_codes(
                pairs.cdr_reading[invoice_index], categories=list(READINGS)
            ),
            "ambiguous": (inv_count > 1) | (cdr_count > 1),
            "invoice_candidates": inv_count,
            "cdr_candidates": cdr_count,
            "duration_delta_seconds": (inv.duration_ms[invoice_index] - cdr.duration_ms[cdr_index]) / 1000.0,
            "contact_agrees": _contact_agrees(inv, cdr, invoice_index, cdr_index),
            "invoice_index": invoice_index,
            "cdr_index": cdr_index,
        }
    )


def _best_edge_per_row(
    rows_of_edge: np.ndarray, other_of_edge: np.ndarray, delta: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each row with a masked edge: the edge with the smallest |delta| (then other position)."""
    idx = np.flatnonzero(mask)
    order = np.lexsort((other_of_edge[idx], np.abs(delta[idx]), rows_of_edge[idx]))
    idx = idx[order]
    first = first_of_groups(rows_of_edge[idx])
    return rows_of_edge[idx][first], idx[first]


def _record_ids_or_blank(rows: CallRows, positions: np.ndarray) -> pa.Array:
    """record_id at each position, '' where the position is -1 (Arrow text, no object per row)."""
    valid = positions >= 0
    ids = pa.array(rows.record_id, from_pandas=True)
    if not valid.any() or not len(ids):
        return pa.array(np.full(len(positions), "", dtype=object), pa.string())
    picked = pc.cast(ids.take(pa.array(np.where(valid, positions, 0))), pa.string())
    return pc.if_else(pa.array(valid), picked, "")


def _str_series(values: pa.Array) -> pd.arrays.ArrowStringArray | Any:
    """Arrow text as pandas' ``str`` array (shared with Arrow, not one object per value)."""
    return pa.table({"v": values}).to_pandas()["v"].array


# Offsets read best in the largest unit that keeps them above 2 (seconds up to two minutes ...).
OFFSET_UNITS = (
    (120.0, 1.0, "s"),
    (7200.0, 60.0, "min"),
    (172_800.0, 3600.0, "h"),
    (np.inf, 86_400.0, "days"),
)


def _fmt_seconds(delta_s: np.ndarray) -> np.ndarray:
    """Signed offsets for sentences: '+12.3 s', '-4.5 min', '+6.2 days'."""
    return np.asarray(_fmt_seconds_arrow(delta_s).to_numpy(zero_copy_only=False), dtype=object)


def _fmt_seconds_arrow(delta_s: np.ndarray) -> pa.Array:
    """:func:`_fmt_seconds` as Arrow text (null where an offset is not a number)."""
    delta_s = np.asarray(delta_s, dtype=np.float64)
    size = np.abs(np.round(delta_s, 1))
    lowers = [0.0] + [upper for upper, _scale, _unit in OFFSET_UNITS[:-1]]
    picks = [(size >= lower) & (size < upper) for lower, (upper, _s, _u) in zip(lowers, OFFSET_UNITS, strict=True)]
    unit = np.select(picks, np.arange(len(OFFSET_UNITS)), -1)
    scale = np.array([scale for _upper, scale, _unit in OFFSET_UNITS])[np.maximum(unit, 0)]
    suffixes = pa.array([f" {u}" for _upper, _scale, u in OFFSET_UNITS]).take(
        pa.array(unit, mask=unit < 0, type=pa.int64()))
    with np.errstate(invalid="ignore"):
        return _fixed_one_decimal_arrow(np.round(delta_s / scale, 1), signed=True, suffix=suffixes)


def _fixed_one_decimal(values: np.ndarray, *, signed: bool, suffix: str = "") -> np.ndarray:
    """``'%+.1f' % v + suffix`` (``'%.1f'`` unless ``signed``) for values already rounded to one
    decimal, as Python text (see :func:`_fixed_one_decimal_arrow`)."""
    return np.asarray(_fixed_one_decimal_arrow(values, signed=signed, suffix=suffix).to_numpy(zero_copy_only=False),
                      dtype=object)


def _fixed_one_decimal_arrow(values: np.ndarray, *, signed: bool, suffix: str | pa.Array = "") -> pa.Array:
    """``'%+.1f' % v + suffix`` (``'%.1f'`` unless ``signed``) for values already rounded to one
    decimal, built from integer tenths in Arrow: no Python formatting call per row. Not-a-number
    values (and null suffixes) give null."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    tenths = np.rint(np.abs(np.where(finite, values, 0.0)) * 10).astype(np.int64)
    sign = np.where(np.signbit(values), "-", "+" if signed else "")
    text = pc.binary_join_element_wise(
        pa.array(sign), pc.cast(pa.array(tenths // 10), pa.string()), ".",
        pc.cast(pa.array(tenths % 10), pa.string()), suffix, "")
    if not finite.all():
        text = pc.if_else(pa.array(finite), text, pa.scalar(None, pa.string()))
    return text


def _explain_side(
    candidates: CandidateSet, side: str, within: np.ndarray, pairs: _Pairs, tolerance_s: float
) -> pd.DataFrame:
    edges = candidates.edges
    if side == SIDE_INVOICE:
        rows, other = candidates.invoice, candidates.cdr
        row_of_edge, other_of_edge = edges.invoice, edges.cdr
        nearest: NearestOther = candidates.invoice_nearest
        partner, other_partner = pairs.inv_partner, pairs.cdr_partner
    else:
        rows, other = candidates.cdr, candidates.invoice
        row_of_edge, other_of_edge = edges.cdr, edges.invoice
        nearest = candidates.cdr_nearest
        partner, other_partner = pairs.cdr_partner, pairs.inv_partner
    other_label = SIDE_LABELS[other.side]
    settings = candidates.settings
    key_text = " + ".join(settings.key)

    unmatched = np.flatnonzero(partner < 0)
    is_unmatched = np.zeros(len(rows), dtype=bool)
    is_unmatched[unmatched] = True
    n = len(rows)
    reason = np.full(n, -1, dtype=np.int8)
    other_pos = np.full(n, -1, dtype=np.int64)
    delta_ms = np.full(n, np.nan)
    winner = np.full(n, -1, dtype=np.int64)

    edge_of_unmatched = is_unmatched[row_of_edge]
    # Rows with no candidate at all: key missing, key absent on the other side, or far away.
    no_key = unmatched[~rows.has_key[unmatched]]
    reason[no_key] = 0
    far = unmatched[rows.has_key[unmatched]]
    reason[far] = np.where(nearest.key_on_other_side[far], 2, 1)
    found = far[nearest.nearest[far] >= 0]
    other_pos[found] = nearest.nearest[found]
    delta_ms[found] = nearest.nearest_delta_ms[found]
    # Rows with candidates only outside the window: the nearest of them.
    r, e = _best_edge_per_row(row_of_edge, other_of_edge, edges.delta_ms, edge_of_unmatched)
    reason[r] = 2
    other_pos[r] = other_of_edge[e]
    delta_ms[r] = edges.delta_ms[e]
    # Rows with candidates inside the window: all of them are taken (the matching is maximum,
    # hence maximal); name the closest one and who holds it.
    r, e = _best_edge_per_row(row_of_edge, other_of_edge, edges.delta_ms, edge_of_unmatched & within)
    reason[r] = 3
    other_pos[r] = other_of_edge[e]
    delta_ms[r] = edges.delta_ms[e]
    winner[r] = other_partner[other_of_edge[e]]

    reason_u = reason[unmatched]
    other_u = other_pos[unmatched]
    # Sentences speak from this row: offset = other start - this start.
    sign = -1.0 if side == SIDE_INVOICE else 1.0
    offset_u = sign * delta_ms[unmatched] / 1000.0
    winner_u = winner[unmatched]
    other_ids = _record_ids_or_blank(other, other_u)
    winner_ids = _record_ids_or_blank(rows, winner_u)

    # Sentences are assembled in Arrow (no Python string operation per row).
    text = pa.array(np.full(len(unmatched), "", dtype=object), pa.string())
    constants = {
        0: f"its key ({key_text}) is empty, so only sip_call_id/call_id could match it and none did; "
           "fill in the missing number or match it by hand",
        1: f"no call with that key ({key_text}) on the {other_label} side",
    }
    codes = pa.array(reason_u)
    for code, sentence in constants.items():
        text = pc.if_else(pc.equal(codes, code), sentence, text)
    outside = reason_u == 2
    if outside.any():
        sentences = pc.binary_join_element_wise(
            "nearest candidate ", other_ids.filter(pa.array(outside)), " at ",
            _fmt_seconds_arrow(offset_u[outside]), f" (outside the {tolerance_s:g} s tolerance)", "")
        text = pc.replace_with_mask(text, pa.array(outside), sentences)
    lost = reason_u == 3
    if lost.any():
        lost_pos = np.flatnonzero(lost)
        # The winning pair, looked up by its invoice position.
        win_inv = other_u[lost_pos] if side == SIDE_CDR else winner_u[lost_pos]
        win_delta = pairs.delta_ms[win_inv] / 1000.0
        win_method = pairs.method[win_inv].astype(np.int64)
        own_gap = np.round(np.abs(offset_u[lost_pos]), 3)
        win_gap = np.round(np.abs(win_delta), 3)
        lost_mask = pa.array(lost)
        head = pc.binary_join_element_wise(
            "lost its candidate ", other_ids.filter(lost_mask), " (", _fmt_seconds_arrow(offset_u[lost_pos]),
            ") to ", "")
        win_id = winner_ids.filter(lost_mask)
        win_fmt = _fixed_one_decimal_arrow(np.round(win_gap, 1), signed=False, suffix=" s apart")
        exact = pc.binary_join_element_wise(
            win_id, ", matched exactly by ",
            pa.array(np.where(win_method == 0, METHOD_SIP_CALL_ID, METHOD_CALL_ID)), "")
        closer = pc.binary_join_element_wise("a closer pair (", win_id, ", ", win_fmt, ")", "")
        equal = pc.binary_join_element_wise("an equally close pair (", win_id, ", ", win_fmt, ")", "")
        overall = pc.binary_join_element_wise(win_id, " (", win_fmt, "), which keeps more calls matched overall", "")
        tail = pc.if_else(
            pa.array(win_method < 2), exact,
            pc.if_else(pa.array(win_gap < own_gap), closer,
                       pc.if_else(pa.array(win_gap == own_gap), equal, overall)))
        text = pc.replace_with_mask(text, lost_mask, pc.binary_join_element_wise(head, tail, ""))
    return pd.DataFrame(
        {
            "record_id": rows.record_id.array.take(unmatched),
            "reason": pd.Categorical.from_codes(reason_u, categories=list(REASONS)),
            "explanation": _str_series(text),
            "other_record_id": _str_series(other_ids),
            "offset_seconds": offset_u,
            "winner_record_id": _str_series(winner_ids),
            "index": unmatched,
        }
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.astype(
        {c: "object" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )
    return out.to_dict(orient="records")
