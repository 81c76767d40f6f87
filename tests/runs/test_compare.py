"""Which calls changed bucket between two runs: the carrier's re-issued invoice."""

from __future__ import annotations

from recon_core.runs.compare import buckets, diff_results


def test_a_reissued_invoice_shows_exactly_the_corrected_and_the_credited_calls(case, result, reissue) -> None:  # type: ignore[no-untyped-def]
    again = case.reconcile(reissue.invoice)
    diff = diff_results(result, again)
    assert not diff.same
    changed = {(r.side, r.record_id): (r.bucket_a, r.bucket_b) for r in diff.changed.itertuples(index=False)}
    assert changed == {
        ("invoice", reissue.corrected): ("COST_VARIANCE", "MATCHED"),
        ("cdr", reissue.corrected_leg): ("COST_VARIANCE", "MATCHED"),  # its Genesys leg moves with it
        ("invoice", reissue.removed): ("MISSING_IN_CDR", None),
    }
    assert "counts.COST_VARIANCE: 5 -> 4" in diff.summary_changes
    transitions = diff.transitions().set_index(["side", "bucket_a", "bucket_b"])["calls"].to_dict()
    assert transitions == {("cdr", "COST_VARIANCE", "MATCHED"): 1, ("invoice", "COST_VARIANCE", "MATCHED"): 1,
                           ("invoice", "MISSING_IN_CDR", "(absent)"): 1}


def test_the_same_result_has_no_difference(result) -> None:  # type: ignore[no-untyped-def]
    diff = diff_results(result, result)
    assert diff.same and diff.changed.empty and diff.summary_changes == ()


def test_every_identified_row_has_one_bucket(result) -> None:  # type: ignore[no-untyped-def]
    table = buckets(result)
    assert not table.duplicated(["side", "record_id"]).any()
    ledger = {e["side"]: e for e in result.summary["ledger"]}
    for side in ("invoice", "cdr"):
        assert (table["side"] == side).sum() == ledger[side]["rows_read"] - ledger[side]["rejected"]
