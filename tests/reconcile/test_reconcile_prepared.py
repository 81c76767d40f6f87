"""The prepared run and the result frames, through the API the app uses (prepare_files + classify).

The rows are kept in Arrow and gathered by matcher position; these tests check that every
position still shows its own record, that re-classifying at another tolerance agrees with the
matcher, and that no result column holds a Python object per row where an exact Arrow type fits.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from test_reconcile_classify import _write_inputs

from recon_core.profiles import load_profile
from recon_core.rating import Increment, RatingSettings
from recon_core.reconcile import (
    DISCREPANCY_CATEGORIES,
    MATCHED_CATEGORY_COLUMNS,
    ReconcileSettings,
    classify,
    prepare_files,
)

SETTINGS = ReconcileSettings(rating=RatingSettings(
    increment=Increment(1, 1), inbound_rate_per_minute=Decimal("0.10"), outbound_rate_per_minute=Decimal("0.10")))


@pytest.fixture()
def run(tmp_path: Path):
    profile, invoice, cdr = _write_inputs(tmp_path)
    return prepare_files([invoice], [cdr], load_profile(profile), SETTINGS)


def test_every_matcher_position_shows_its_own_record(run) -> None:
    for rows, order, matcher in ((run.invoice_rows, run.invoice_order, run.candidates.invoice),
                                 (run.cdr_rows, run.cdr_order, run.candidates.cdr)):
        shown = rows["record_id"].iloc[order].tolist()
        assert shown == matcher.record_id.tolist()
        assert len(rows) == len(matcher)


@pytest.mark.parametrize("tolerance_s", [0.0, 2.0, 10.0])
def test_matched_and_discrepancy_rows_follow_the_assignment(run, tolerance_s: float) -> None:
    result = classify(run, tolerance_s)
    pairs = set(zip(result.assignment.matches["invoice_record_id"], result.assignment.matches["cdr_record_id"],
                    strict=True))
    variance = result.discrepancies[result.discrepancies["category"] == "COST_VARIANCE"]
    reported = set(zip(result.matched["invoice_record_id"], result.matched["cdr_record_id"], strict=True)) | set(
        zip(variance["invoice_record_id"], variance["cdr_record_id"], strict=True))
    assert reported == pairs
    unmatched_cdr = set(result.discrepancies.loc[result.discrepancies["category"] == "MISSING_IN_INVOICE",
                                                 "cdr_record_id"])
    assert unmatched_cdr == set(result.assignment.unmatched_cdr["record_id"])
    ranks = result.discrepancies["category"].map(list(DISCREPANCY_CATEGORIES).index).tolist()
    assert ranks == sorted(ranks)


def test_result_frames_keep_exact_types(run) -> None:
    result = classify(run)
    matched = result.matched
    for column in ("invoice_cost", "expected_cost", "cost_delta", "invoice_duration_s", "cdr_duration_s"):
        assert isinstance(matched[column].dtype, pd.ArrowDtype), column
    assert matched["invoice_start_utc"].dtype == "datetime64[us]"
    assert matched["time_offset_s"].dtype == "float64"
    assert matched["invoice_source_line"].dtype.kind == "i"
    # Text is pandas' Arrow-backed str (no Python object per value) in both frames; the matched
    # frame's low-cardinality text is a category column (a small integer per row).
    for frame in (matched, result.discrepancies):
        assert frame["invoice_record_id"].dtype == "str"
    for column in ("direction", "reason"):
        assert result.discrepancies[column].dtype == "str", column
    for column in MATCHED_CATEGORY_COLUMNS:
        assert isinstance(matched[column].dtype, pd.CategoricalDtype), column
    assert set(matched["status"].cat.categories) <= {"MATCHED", "MATCHED_ROUNDING_VARIANCE"}
    assert matched["direction"].astype(str).isin(["inbound", "outbound"]).all()
    assert result.discrepancies["invoice_source_line"].dtype == "Int64"  # gaps, but never 12.0


@pytest.mark.parametrize("drop", ["C-4", "I-GHOST", "both"])
def test_a_side_without_unmatched_rows_still_classifies(tmp_path: Path, drop: str) -> None:
    """Discrepancy columns that only one side fills stay well-typed when that side has none."""
    import test_reconcile_classify as case

    keep_inv = [r for r in case.INVOICE if drop not in ("I-GHOST", "both") or r[0] != "I-GHOST"]
    keep_cdr = [r for r in case.CDR if drop not in ("C-4", "both") or r[0] != "C-4"]
    original = (case.INVOICE, case.CDR)
    case.INVOICE, case.CDR = keep_inv, keep_cdr
    try:
        profile, invoice, cdr = _write_inputs(tmp_path)
    finally:
        case.INVOICE, case.CDR = original
    result = classify(prepare_files([invoice], [cdr], load_profile(profile), SETTINGS))
    counts = result.summary["counts"]
    assert counts["MISSING_IN_INVOICE"] == (0 if drop in ("C-4", "both") else 1)
    assert counts["MISSING_IN_CDR"] == (0 if drop in ("I-GHOST", "both") else 1)
    assert all(entry["balanced"] for entry in result.summary["ledger"])
