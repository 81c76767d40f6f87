"""Which calls changed bucket between two results (``runs diff``, ``verify``).

Calls are identified by record identity: an invoice row by its ``invoice_record_id`` (the
carrier's own call id where the invoice has one, e.g. Twilio's Call SID; otherwise the id
the ingest derived from the row), a Genesys leg by its ``cdr_record_id``
(conversation/participant/session). Rejected rows have no identity and are compared by count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

IDENTITY_NOTE = ("calls are identified by invoice record id (the carrier's call id where the invoice has one) "
                 "and by Genesys leg id (conversation/participant/session) for CDR legs")
DIFF_COLUMNS = ("side", "record_id", "call_id", "bucket_a", "bucket_b")
COMPARED_SUMMARY = (("counts",), ("money",), ("rates",), ("ledger",))


def buckets(result: Any) -> pd.DataFrame:
    """One row per identified call of a result: side, record id, call id, bucket."""
    parts = []
    m = result.matched
    if len(m):
        parts.append(pd.DataFrame({"side": "invoice", "record_id": m["invoice_record_id"],
                                   "call_id": m["invoice_call_id"], "bucket": m["status"]}))
        parts.append(pd.DataFrame({"side": "cdr", "record_id": m["cdr_record_id"], "call_id": m["cdr_call_id"],
                                   "bucket": m["status"]}))
    d = result.discrepancies
    if len(d):
        inv = d[d["invoice_record_id"].notna()]
        parts.append(pd.DataFrame({"side": "invoice", "record_id": inv["invoice_record_id"],
                                   "call_id": inv["invoice_call_id"], "bucket": inv["category"]}))
        cdr = d[d["cdr_record_id"].notna()]
        parts.append(pd.DataFrame({"side": "cdr", "record_id": cdr["cdr_record_id"], "call_id": cdr["cdr_call_id"],
                                   "bucket": cdr["category"]}))
    e = result.excluded
    if len(e):
        parts.append(pd.DataFrame({"side": e["side"], "record_id": e["record_id"], "call_id": e["call_id"],
                                   "bucket": "EXCLUDED_" + e["rule"].astype(str).str.upper()}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("side", "record_id", "call_id", "bucket")})
    frame = pd.concat([p.astype(object) for p in parts], ignore_index=True)
    frame["record_id"] = frame["record_id"].astype(str)
    return frame.drop_duplicates(["side", "record_id"], keep="first").reset_index(drop=True)


@dataclass(frozen=True)
class ResultDiff:
    """Calls whose bucket differs between result A and result B (``None`` = absent from that result)."""

    changed: pd.DataFrame
    rejected_a: int
    rejected_b: int
    summary_changes: tuple[str, ...]

    @property
    def same(self) -> bool:
        return self.changed.empty and self.rejected_a == self.rejected_b and not self.summary_changes

    def transitions(self) -> pd.DataFrame:
        """How many calls moved from each bucket to each other bucket."""
        if self.changed.empty:
            return pd.DataFrame(columns=["side", "bucket_a", "bucket_b", "calls"])
        table = self.changed.fillna({"bucket_a": "(absent)", "bucket_b": "(absent)"})
        return (table.groupby(["side", "bucket_a", "bucket_b"]).size().rename("calls").reset_index()
                .sort_values(["side", "calls"], ascending=[True, False]).reset_index(drop=True))

    def to_dict(self) -> dict[str, Any]:
        return {"same": self.same, "identity": IDENTITY_NOTE, "changed_calls": len(self.changed),
                "rejected": [self.rejected_a, self.rejected_b], "summary_changes": list(self.summary_changes),
                "transitions": self.transitions().to_dict("records")}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def summary_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """``counts.MATCHED: 241 -> 240`` lines for the counts, money, rates and ledger that differ."""
    lines = []
    for (section,) in COMPARED_SUMMARY:
        fa, fb = _flatten(a.get(section, {}), section), _flatten(b.get(section, {}), section)
        for key in sorted(set(fa) | set(fb)):
            if str(fa.get(key)) != str(fb.get(key)):
                lines.append(f"{key}: {fa.get(key)} -> {fb.get(key)}")
    return lines


def diff_results(a: Any, b: Any) -> ResultDiff:
    """The calls whose bucket differs between two results, and the summary figures that differ."""
    ba, bb = buckets(a), buckets(b)
    merged = ba.merge(bb, on=["side", "record_id"], how="outer", suffixes=("_a", "_b"))
    merged["call_id"] = merged["call_id_a"].where(merged["call_id_a"].notna(), merged["call_id_b"])
    changed = merged[merged["bucket_a"].fillna("") != merged["bucket_b"].fillna("")]
    changed = changed.reindex(columns=list(DIFF_COLUMNS)).sort_values(["side", "record_id"]).reset_index(drop=True)
    changed = changed.astype(object).where(changed.notna(), None)
    return ResultDiff(changed, len(a.rejected), len(b.rejected), tuple(summary_changes(a.summary, b.summary)))
