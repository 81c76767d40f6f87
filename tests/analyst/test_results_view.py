"""What the Reconcile page computes: money text, KPIs, the results table, the sensitivity curve, explanations."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from recon_core.analyst.results_view import (
    CATEGORY_LABELS,
    GROUP_COLUMN,
    category_breakdown,
    category_counts,
    explain_row,
    format_money,
    grouped_rows,
    kpis,
    results_table,
    tolerance_sensitivity,
)
from recon_core.demo import DemoFiles
from recon_core.profiles import load_carrier_profile
from recon_core.rating import RatingSettings
from recon_core.reconcile import PreparedRun, ReconcileSettings, ReconResult, classify, reconcile


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("1.42596", "USD", "$1.43"),
    ("0.005", "USD", "$0.01"),  # half up, as carriers round
    ("-12345.5", "EUR", "-€12,345.50"),
    (Decimal("7"), "CHF", "7.00 CHF"),
    ("3", ["EUR", "USD"], "3.00 EUR/USD"),
    ("0E-8", "", "0.00"),
])
def test_format_money(amount: Any, currency: Any, expected: str) -> None:
    assert format_money(amount, currency) == expected


@pytest.fixture(scope="module")
def demo_run(demo: DemoFiles) -> Iterator[tuple[PreparedRun, ReconResult, DemoFiles]]:
    # Prepared as the page prepares (a rating that needs no rates), classified with the demo's rating.
    settings = ReconcileSettings(rating=RatingSettings(rate_source="invoice_rate"))
    run, _ = reconcile([demo.invoice], [demo.conversations], load_carrier_profile(demo.profile), settings)
    yield run, classify(run, 10.0, demo.rating()), demo
    run.con.close()


def test_kpis_of_the_demo(demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    _, result, _ = demo_run
    tiles = {k.label: k.value for k in kpis(result.summary)}
    assert tiles["Discrepancies"] == "14"
    assert tiles["Disputed amount"] == format_money(result.summary["money"]["disputed_amount"], "USD")
    breakdown = category_breakdown(result).set_index("category")
    assert breakdown["rows"].to_dict() == {"Cost variance": 5, "Missing in CDR": 3, "Missing in invoice": 4,
                                           "Duplicate charge": 2}
    # The chart's amounts add up to the disputed KPI; nothing is disputed for calls missing from the invoice.
    assert breakdown["disputed"].sum() == pytest.approx(float(result.summary["money"]["disputed_amount"]))
    assert breakdown.loc["Missing in invoice", "disputed"] == 0 and breakdown.loc["Missing in CDR", "disputed"] > 0


def test_results_table_holds_discrepancies_then_optionally_matched_rows(
        demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    _, result, _ = demo_run
    only = results_table(result)
    assert len(only) == 14 and set(only["category"]) == {"COST_VARIANCE", "MISSING_IN_CDR", "MISSING_IN_INVOICE",
                                                          "DUPLICATE_CHARGE"}
    assert only["invoice_cost"].dtype == "float64" and only["time_offset_s"].dtype == "float64"
    everything = results_table(result, include_matched=True)
    assert len(everything) == 14 + result.summary["counts"]["matched"]


def test_grouped_rows_put_a_header_with_the_count_before_each_categorys_rows(
        demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    _, result, _ = demo_run
    counts = category_counts(result)
    table = results_table(result)
    grouped = grouped_rows(table, counts)
    headers = grouped[grouped[GROUP_COLUMN] != ""]
    assert headers[GROUP_COLUMN].tolist() == list(counts)  # one header per category, in the grid's order
    assert len(grouped) == len(table) + len(counts)  # every row kept, plus the headers
    for position, category in zip(headers.index, headers[GROUP_COLUMN], strict=True):
        label = headers.loc[position, "category"]
        assert label.startswith(CATEGORY_LABELS[category]) and f"({counts[category]:,} row" in label
        following = grouped.iloc[position + 1: position + 1 + counts[category]]
        assert (following["category"] == category).all() and (following[GROUP_COLUMN] == "").all()
    assert GROUP_COLUMN not in table.columns  # the input is not changed
    # cut by the grid's limit: the header of a category without shown rows stays, with the full count
    cut = grouped_rows(table.iloc[:1], counts)
    assert cut[GROUP_COLUMN].tolist().count("") == 1 and len(cut) == 1 + len(counts)


def test_results_table_order_filter_and_limit_follow_the_grid(
        demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    run, _, demo = demo_run
    strict = classify(run, 0.0, demo.rating())  # thousands of discrepancies, a few matched rows
    counts = category_counts(strict, include_matched=True)
    summary = strict.summary["counts"]
    assert counts == {c: int(summary[c]) for c in ("MATCHED", "MISSING_IN_CDR", "MISSING_IN_INVOICE") if summary[c]}
    assert category_counts(strict) == {c: n for c, n in counts.items() if c != "MATCHED"}

    everything = results_table(strict, include_matched=True)
    assert len(everything) == sum(counts.values())
    ranks = everything["category"].map(list(CATEGORY_LABELS).index)
    assert ranks.is_monotonic_increasing  # matched first, then the discrepancy categories in their order
    first_missing_in_cdr = everything[everything["category"] == "MISSING_IN_CDR"]["invoice_record_id"].tolist()
    in_result = strict.discrepancies[strict.discrepancies["category"] == "MISSING_IN_CDR"]["invoice_record_id"]
    assert first_missing_in_cdr == in_result.tolist()  # the result's own order within a category

    only_cdr_side = results_table(strict, include_matched=True, categories=["MISSING_IN_INVOICE"], limit=25)
    assert len(only_cdr_side) == 25 and set(only_cdr_side["category"]) == {"MISSING_IN_INVOICE"}
    expected = everything[everything["category"] == "MISSING_IN_INVOICE"].head(25).reset_index(drop=True)
    pd.testing.assert_frame_equal(only_cdr_side, expected)

    head = results_table(strict, include_matched=True, limit=counts["MATCHED"] + 3)
    pd.testing.assert_frame_equal(head, everything.head(counts["MATCHED"] + 3))
    assert results_table(strict, categories=["DUPLICATE_CHARGE"]).empty


def test_sensitivity_curve_agrees_with_classify_at_each_tolerance(
        demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    run, _, demo = demo_run
    exact = tolerance_sensitivity(run, demo.rating(), (0, 3, 10))
    fast = tolerance_sensitivity(run, demo.rating(), (0, 3, 10), exact=False)
    assert exact["pairs"].tolist() == fast["pairs"].tolist()
    assert exact["discrepancies"].tolist()[-1] == 14
    assert exact["pairs"].is_monotonic_increasing and exact["discrepancies"].is_monotonic_decreasing
    # the fast curve leaves out cost variances (5 in the demo), nothing else
    assert (exact["discrepancies"] - fast["discrepancies"]).tolist()[1:] == [5, 5]
    assert fast["counted"].str.startswith("unmatched rows only").all()


def _row(result: ReconResult, category: str) -> dict[str, Any]:
    table = results_table(result, include_matched=True)
    return table[table["category"] == category].iloc[0].to_dict()


def test_explaining_a_cost_variance_shows_both_records_of_the_pair(
        demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    run, result, _ = demo_run
    row = _row(result, "COST_VARIANCE")
    explained = explain_row(run, result, row)
    assert explained.invoice_record["record_id"] == row["invoice_record_id"]
    assert explained.cdr_record["record_id"] == row["cdr_record_id"]
    assert explained.delta_s == pytest.approx(row["time_offset_s"])
    assert "Δt" in explained.headline and "cost tolerance" in explained.headline
    nearest = explained.candidates.iloc[0]
    assert nearest["record_id"] == row["cdr_record_id"] and nearest["paired_with"] == row["invoice_record_id"]
    assert nearest["within_tolerance"]


def test_explaining_a_duplicate_shows_the_call_the_original_took(
        demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    run, result, _ = demo_run
    row = _row(result, "DUPLICATE_CHARGE")
    explained = explain_row(run, result, row)
    assert explained.invoice_record["record_id"] == row["invoice_record_id"]
    assert explained.other_is_nearest and explained.cdr_record is not None
    assert explained.candidates.iloc[0]["paired_with"] == row["duplicate_of"]
    assert "repeats" in explained.reason


def test_explaining_a_row_unmatched_at_zero_tolerance_shows_the_nearest_call_outside_it(
        demo_run: tuple[PreparedRun, ReconResult, DemoFiles]) -> None:
    run, _, demo = demo_run
    strict = classify(run, 0.0, demo.rating())
    table = results_table(strict)
    row = table[(table["category"] == "MISSING_IN_CDR") & (table["nearest_record_id"] != "")].iloc[0].to_dict()
    explained = explain_row(run, strict, row)
    assert explained.cdr_record["record_id"] == row["nearest_record_id"]
    assert not explained.candidates["within_tolerance"].any()
    assert "outside the 0 s tolerance" in explained.reason
