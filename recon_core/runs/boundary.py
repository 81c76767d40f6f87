"""Billing-period edges: calls missing on one side only because they fell on the other side of the edge.

Carriers and Genesys Cloud Voice bill in cycles (Genesys Cloud Voice: 07:00 UTC to 07:00 UTC).
A call that starts within the time tolerance of the period's start or end may be billed in
the neighbouring period, or its leg may sit in the neighbouring period's CDR window. So an
unmatched row within the tolerance of an edge (``MISSING_IN_CDR`` / ``MISSING_IN_INVOICE``) is
re-categorized ``PERIOD_BOUNDARY``: not disputed now (disputed amount 0), and kept open in the
store (``run_boundary_calls``) so the next period's run checks it again
(:func:`recheck_open_calls`). This is a pure step after classification: the row stays in the
discrepancy table, so each side's ledger still balances; the summary's counts, disputed amount
and discrepancy rate are adjusted to match.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from recon_core.reconcile import (
    CATEGORY_MISSING_IN_CDR,
    CATEGORY_MISSING_IN_INVOICE,
    CATEGORY_PERIOD_BOUNDARY,
    DISCREPANCY_CATEGORIES,
    ReconResult,
)

STATUS_OPEN = "open"
STATUS_RESOLVED = "resolved"
STATUS_CONFIRMED_MISSING = "confirmed_missing"
REASON_PREFIX = "within {tol:g} s of the billing-period edge {edge}: may be billed or recorded in the neighbouring " \
                "period; not disputed now, re-checked in the next period's run ({was})"


@dataclass(frozen=True)
class PeriodEdges:
    """The billing period ``[start, end)`` in naive UTC, and the time tolerance around its edges."""

    start: datetime
    end: datetime
    tolerance_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"start_utc": self.start.isoformat() + "Z", "end_utc": self.end.isoformat() + "Z",
                "tolerance_s": self.tolerance_s}


def _edge_of(start: pd.Timestamp | None, edges: PeriodEdges) -> datetime | None:
    if start is None or pd.isna(start):
        return None
    when = pd.Timestamp(start).to_pydatetime()
    window = timedelta(seconds=edges.tolerance_s)
    for edge in (edges.start, edges.end):
        if abs(when - edge) <= window:
            return edge
    return None


def boundary_mask(discrepancies: pd.DataFrame, edges: PeriodEdges) -> tuple[np.ndarray, list[datetime | None]]:
    """Which discrepancy rows are missing-on-one-side within the tolerance of an edge, and that edge."""
    mask = np.zeros(len(discrepancies), dtype=bool)
    which: list[datetime | None] = [None] * len(discrepancies)
    if not len(discrepancies):
        return mask, which
    categories = discrepancies["category"].tolist()
    inv = discrepancies["invoice_start_utc"].tolist()
    cdr = discrepancies["cdr_start_utc"].tolist()
    for i, category in enumerate(categories):
        if category == CATEGORY_MISSING_IN_CDR:
            edge = _edge_of(inv[i], edges)
        elif category == CATEGORY_MISSING_IN_INVOICE:
            edge = _edge_of(cdr[i], edges)
        else:
            continue
        if edge is not None:
            mask[i] = True
            which[i] = edge
    return mask, which


def _money(value: Any) -> Decimal:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return Decimal("0")
    return Decimal(str(value))


def apply_period_boundary(result: ReconResult, edges: PeriodEdges) -> ReconResult:
    """A copy of ``result`` with edge rows re-categorized ``PERIOD_BOUNDARY`` (the input is unchanged).

    The boundary rows move to the end of the discrepancy table (after every other category);
    ``summary['counts']`` gains ``PERIOD_BOUNDARY`` and loses the rows from ``MISSING_IN_*``,
    ``money.disputed_amount`` drops their disputed amount, ``rates.discrepancy_rate_pct`` no
    longer counts them, and ``summary['period_boundary']`` records the edges and tolerance.
    """
    disc = result.discrepancies
    mask, which = boundary_mask(disc, edges)
    summary = {**result.summary}
    counts = dict(summary.get("counts", {}))
    counts[CATEGORY_PERIOD_BOUNDARY] = int(mask.sum())
    section = {**edges.to_dict(), "rows": int(mask.sum()),
               "invoice_rows": int(sum(1 for i in np.flatnonzero(mask)
                                       if disc["category"].iloc[i] == CATEGORY_MISSING_IN_CDR)),
               "rechecked": []}
    if not mask.any():
        summary["counts"] = counts
        summary["period_boundary"] = section
        return dataclasses.replace(result, summary=summary)
    disc = disc.copy()
    released = Decimal("0")
    for i in np.flatnonzero(mask):
        was = str(disc["category"].iat[i])
        counts[was] = int(counts.get(was, 0)) - 1
        released += _money(disc["disputed_amount"].iat[i])
        edge = which[i]
        assert edge is not None
        disc.loc[disc.index[i], "reason"] = REASON_PREFIX.format(
            tol=edges.tolerance_s, edge=edge.isoformat() + "Z", was=f"would be {was}: {disc['reason'].iat[i]}")
    disc.loc[mask, "category"] = CATEGORY_PERIOD_BOUNDARY
    disc.loc[mask, "disputed_amount"] = Decimal("0")
    order = np.concatenate([np.flatnonzero(~mask), np.flatnonzero(mask)])
    disc = disc.iloc[order].reset_index(drop=True)
    money = dict(summary.get("money", {}))
    if "disputed_amount" in money:
        money["disputed_amount"] = str(_money(money["disputed_amount"]) - released)
    rates = dict(summary.get("rates", {}))
    ledger = summary.get("ledger", [])
    invoice_included = 0
    for entry in ledger:
        if entry.get("side") == "invoice":
            invoice_included = int(entry["rows_read"]) - int(entry["excluded"]) - int(entry["rejected"])
    missing_in_invoice_before = int(result.summary.get("counts", {}).get(CATEGORY_MISSING_IN_INVOICE, 0))
    total_rows = invoice_included + missing_in_invoice_before
    if total_rows and "discrepancy_rate_pct" in rates:
        counted = sum(int(counts.get(c, 0)) for c in DISCREPANCY_CATEGORIES if c != CATEGORY_PERIOD_BOUNDARY)
        rates["discrepancy_rate_pct"] = round(100.0 * counted / total_rows, 3)
    summary.update(counts=counts, money=money, rates=rates, period_boundary=section)
    return dataclasses.replace(result, discrepancies=disc, summary=summary)


@dataclass(frozen=True)
class BoundaryCall:
    """One row left open at a period edge (what ``run_boundary_calls`` keeps)."""

    side: str
    record_id: str
    call_id: str | None
    start_utc: datetime | None
    direction: str | None
    far_end_number: str | None
    edge_utc: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "record_id": self.record_id, "call_id": self.call_id,
                "start_utc": None if self.start_utc is None else self.start_utc.isoformat() + "Z",
                "direction": self.direction, "far_end_number": self.far_end_number,
                "edge_utc": self.edge_utc.isoformat() + "Z"}


def far_end(direction: Any, source: Any, destination: Any) -> str | None:
    """The number outside the contact center (the caller of an inbound call), without ``+``."""
    number = source if direction == "inbound" else destination
    if number is None or (isinstance(number, float) and number != number):
        return None
    return str(number).lstrip("+")


def boundary_calls(result: ReconResult, edges: PeriodEdges) -> list[BoundaryCall]:
    """The ``PERIOD_BOUNDARY`` rows of ``result`` as :class:`BoundaryCall` records."""
    disc = result.discrepancies
    calls = []
    for row in disc[disc["category"] == CATEGORY_PERIOD_BOUNDARY].itertuples(index=False):
        side = "invoice" if isinstance(row.invoice_record_id, str) and row.invoice_record_id else "cdr"
        start = row.invoice_start_utc if side == "invoice" else row.cdr_start_utc
        when = None if pd.isna(start) else pd.Timestamp(start).to_pydatetime()
        edge = _edge_of(start, edges) or edges.end
        calls.append(BoundaryCall(side, str(row.invoice_record_id if side == "invoice" else row.cdr_record_id),
                                  (row.invoice_call_id if side == "invoice" else row.cdr_call_id) or None,
                                  when, row.direction, far_end(row.direction, row.source_number,
                                                                row.destination_number), edge))
    return calls


@dataclass(frozen=True)
class RecheckOutcome:
    """What the current run says about a call an earlier run left open at the shared edge."""

    run_id: str
    side: str
    record_id: str
    status: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "side": self.side, "record_id": self.record_id, "status": self.status,
                "note": self.note}


def recheck_open_calls(open_calls: Sequence[tuple[str, BoundaryCall]], result: ReconResult,
                       tolerance_s: float) -> list[RecheckOutcome]:
    """Check calls left open by earlier runs (``(run_id, call)``) against this run's rows.

    * a CDR leg left unbilled: resolved when this run matched the same leg (billed on this
      period's invoice), else confirmed missing in the invoice;
    * an invoice row without a CDR leg: resolved when this run has an unmatched leg with the
      same direction and far-end number within the tolerance (the leg sits in this period's
      window), else confirmed missing in the CDR.
    """
    matched_legs = dict(zip(result.matched["cdr_record_id"].astype(str), result.matched["invoice_record_id"],
                            strict=True))
    disc = result.discrepancies
    loose = disc[disc["cdr_record_id"].notna() & disc["invoice_record_id"].isna()]
    outcomes = []
    window = timedelta(seconds=tolerance_s)
    for run_id, call in open_calls:
        if call.side == "cdr":
            billed_by = matched_legs.get(call.record_id)
            if billed_by is not None:
                outcomes.append(RecheckOutcome(run_id, call.side, call.record_id, STATUS_RESOLVED,
                                               f"billed on this period's invoice (row {billed_by})"))
            else:
                outcomes.append(RecheckOutcome(run_id, call.side, call.record_id, STATUS_CONFIRMED_MISSING,
                                               "not billed on this period's invoice either: missing in invoice"))
            continue
        found = None
        for row in loose.itertuples(index=False):
            if row.direction != call.direction or call.start_utc is None or pd.isna(row.cdr_start_utc):
                continue
            if far_end(row.direction, row.source_number, row.destination_number) != call.far_end_number:
                continue
            if abs(pd.Timestamp(row.cdr_start_utc).to_pydatetime() - call.start_utc) <= window:
                found = row.cdr_record_id
                break
        if found is not None:
            outcomes.append(RecheckOutcome(run_id, call.side, call.record_id, STATUS_RESOLVED,
                                           f"its Genesys leg {found} is in this period's data"))
        else:
            outcomes.append(RecheckOutcome(run_id, call.side, call.record_id, STATUS_CONFIRMED_MISSING,
                                           "still no Genesys leg on either side of the edge: missing in CDR"))
    return outcomes
