"""PERIOD_BOUNDARY: calls missing on one side within the tolerance of the billing-period edge."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pandas as pd

from recon_core.runs.boundary import (
    CATEGORY_PERIOD_BOUNDARY,
    STATUS_CONFIRMED_MISSING,
    STATUS_RESOLVED,
    BoundaryCall,
    PeriodEdges,
    apply_period_boundary,
    boundary_calls,
    far_end,
    recheck_open_calls,
)


def _row(result, category: str) -> pd.Series:  # type: ignore[no-untyped-def]
    disc = result.discrepancies
    return disc[disc["category"] == category].iloc[0]


def _edges_around(result) -> tuple[PeriodEdges, pd.Series, pd.Series]:  # type: ignore[no-untyped-def]
    """Edges placed 3 s before a missing-in-CDR row and 4 s after a missing-in-invoice leg."""
    billed = _row(result, "MISSING_IN_CDR")
    unbilled = _row(result, "MISSING_IN_INVOICE")
    start = pd.Timestamp(billed["invoice_start_utc"]).to_pydatetime() - timedelta(seconds=3)
    end = pd.Timestamp(unbilled["cdr_start_utc"]).to_pydatetime() + timedelta(seconds=4)
    return PeriodEdges(start, end, 10.0), billed, unbilled


def test_edge_rows_become_period_boundary_and_the_ledger_still_balances(result) -> None:  # type: ignore[no-untyped-def]
    edges, billed, unbilled = _edges_around(result)
    before = result.discrepancies.copy()
    moved = apply_period_boundary(result, edges)
    pd.testing.assert_frame_equal(result.discrepancies, before)  # the input is not changed

    boundary = moved.discrepancies[moved.discrepancies["category"] == CATEGORY_PERIOD_BOUNDARY]
    assert set(boundary["invoice_record_id"].dropna()) == {billed["invoice_record_id"]}
    assert set(boundary["cdr_record_id"].dropna()) == {unbilled["cdr_record_id"]}
    assert moved.discrepancies["category"].iloc[-2:].tolist() == [CATEGORY_PERIOD_BOUNDARY] * 2  # listed last
    assert all("re-checked in the next period's run" in r and "would be MISSING_IN" in r for r in boundary["reason"])
    assert all(d == Decimal("0") for d in boundary["disputed_amount"])

    counts, old = moved.summary["counts"], result.summary["counts"]
    assert counts[CATEGORY_PERIOD_BOUNDARY] == 2
    assert counts["MISSING_IN_CDR"] == old["MISSING_IN_CDR"] - 1
    assert counts["MISSING_IN_INVOICE"] == old["MISSING_IN_INVOICE"] - 1
    assert len(moved.discrepancies) == len(result.discrepancies)
    assert moved.summary["ledger"] == result.summary["ledger"] and all(e["balanced"] for e in moved.summary["ledger"])
    released = Decimal(str(billed["disputed_amount"]))
    assert Decimal(moved.summary["money"]["disputed_amount"]) == Decimal(
        result.summary["money"]["disputed_amount"]) - released
    assert moved.summary["rates"]["discrepancy_rate_pct"] < result.summary["rates"]["discrepancy_rate_pct"]
    assert moved.summary["period_boundary"]["rows"] == 2


def test_rows_farther_than_the_tolerance_stay_missing(result) -> None:  # type: ignore[no-untyped-def]
    edges, _, _ = _edges_around(result)
    narrow = PeriodEdges(edges.start, edges.end, 2.0)  # the rows are 3 s and 4 s from the edges
    moved = apply_period_boundary(result, narrow)
    assert moved.summary["counts"][CATEGORY_PERIOD_BOUNDARY] == 0
    assert moved.discrepancies["category"].tolist() == result.discrepancies["category"].tolist()


def test_the_next_period_run_resolves_or_confirms_the_open_calls(result) -> None:  # type: ignore[no-untyped-def]
    matched = result.matched.iloc[0]
    unbilled = _row(result, "MISSING_IN_INVOICE")
    when = pd.Timestamp(unbilled["cdr_start_utc"]).to_pydatetime()
    edge = when
    number = far_end(unbilled["direction"], unbilled["source_number"], unbilled["destination_number"])
    open_calls = [
        ("run-1", BoundaryCall("cdr", str(matched["cdr_record_id"]), None, when, "inbound", "1", edge)),
        ("run-1", BoundaryCall("cdr", "leg-nobody-billed", None, when, "inbound", "1", edge)),
        ("run-1", BoundaryCall("invoice", "CA-previous", None, when + timedelta(seconds=2), unbilled["direction"],
                               number, edge)),
        ("run-1", BoundaryCall("invoice", "CA-phantom", None, when, unbilled["direction"], "19999999999", edge)),
    ]
    outcomes = {o.record_id: o for o in recheck_open_calls(open_calls, result, 10.0)}
    assert outcomes[str(matched["cdr_record_id"])].status == STATUS_RESOLVED
    assert str(matched["invoice_record_id"]) in outcomes[str(matched["cdr_record_id"])].note
    assert outcomes["leg-nobody-billed"].status == STATUS_CONFIRMED_MISSING
    assert outcomes["CA-previous"].status == STATUS_RESOLVED and unbilled["cdr_record_id"] in outcomes[
        "CA-previous"].note
    assert outcomes["CA-phantom"].status == STATUS_CONFIRMED_MISSING


def test_boundary_calls_carry_side_identity_and_edge(result) -> None:  # type: ignore[no-untyped-def]
    edges, billed, unbilled = _edges_around(result)
    calls = {c.side: c for c in boundary_calls(apply_period_boundary(result, edges), edges)}
    assert calls["invoice"].record_id == billed["invoice_record_id"] and calls["invoice"].edge_utc == edges.start
    assert calls["cdr"].record_id == unbilled["cdr_record_id"] and calls["cdr"].edge_utc == edges.end


def test_boundary_rows_get_their_own_sheet_in_the_dispute_pack(result, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    from recon_core.reports.reconciliation import WORKBOOK_FILE, write_reconciliation_reports

    edges, _billed, _unbilled = _edges_around(result)
    moved = apply_period_boundary(result, edges)
    plain = load_workbook(write_reconciliation_reports(result, tmp_path / "plain")[WORKBOOK_FILE], read_only=True)
    assert CATEGORY_PERIOD_BOUNDARY not in plain.sheetnames  # no empty sheet in ordinary runs

    book = load_workbook(write_reconciliation_reports(moved, tmp_path / "edge")[WORKBOOK_FILE], read_only=True)
    sheet = book[CATEGORY_PERIOD_BOUNDARY]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) - 1 == moved.summary["counts"][CATEGORY_PERIOD_BOUNDARY] == 2
    assert all(row[0] == CATEGORY_PERIOD_BOUNDARY for row in rows[1:])
    # every discrepancy row is on exactly one category sheet
    category_sheets = [n for n in book.sheetnames if n in {"COST_VARIANCE", "MISSING_IN_CDR", "MISSING_IN_INVOICE",
                                                            "DUPLICATE_CHARGE", CATEGORY_PERIOD_BOUNDARY}]
    assert sum(sum(1 for _ in book[n].iter_rows()) - 1 for n in category_sheets) == len(moved.discrepancies)
