"""What the History page shows, without streamlit: saved runs from the store, tables, comparisons.

A run saved from the app is stamped (run id + creation time), recorded complete in the store
with its exact rows, and can be reopened, compared and have its files regenerated later.
Readers open the store read-only and close it at once (see :mod:`recon_core.runs.access`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recon_core.errors import StoreError
from recon_core.reconcile import DISCREPANCY_CATEGORIES, ReconResult, run_id_for
from recon_core.reports.reconciliation import write_reconciliation_reports
from recon_core.runs.access import store_session
from recon_core.runs.records import (
    KIND_APP,
    STATUS_COMPLETE,
    RunRecord,
    list_runs,
    load_result,
    record_result,
)
from recon_core.store import default_store_path

logger = logging.getLogger(__name__)

# (label, path into the summary) of the numbers two runs are compared on.
COMPARED = (
    ("time tolerance (s)", ("settings", "time_tolerance_s")),
    ("matched", ("counts", "matched")),
    ("matched with rounding variance", ("counts", "MATCHED_ROUNDING_VARIANCE")),
    ("cost variance", ("counts", "COST_VARIANCE")),
    ("missing in CDR", ("counts", "MISSING_IN_CDR")),
    ("missing in invoice", ("counts", "MISSING_IN_INVOICE")),
    ("duplicate charges", ("counts", "DUPLICATE_CHARGE")),
    ("period boundary (re-checked next period)", ("counts", "PERIOD_BOUNDARY")),
    ("excluded", ("counts", "excluded")),
    ("rejected", ("counts", "rejected")),
    ("match rate (%)", ("rates", "match_rate_pct")),
    ("discrepancy rate (%)", ("rates", "discrepancy_rate_pct")),
    ("invoice total", ("money", "invoice_total")),
    ("expected total", ("money", "expected_total")),
    ("over-billed", ("money", "over_billed")),
    ("under-billed", ("money", "under_billed")),
    ("disputed amount", ("money", "disputed_amount")),
)
RUNS_TABLE_COLUMNS = ["run_id", "created_utc", "kind", "status", "period", "carrier", "invoice", "cdr",
                      "invoice_sha256", "tolerance_s", "matched", "discrepancies", "discrepancy_rate_pct", "disputed"]


@dataclass(frozen=True)
class SavedRun:
    """A run in the store: its id, the store file, and its summary (``None`` unless complete)."""

    run_id: str
    path: Path
    summary: dict[str, Any]
    record: RunRecord | None = None


def stamped(result: ReconResult, created: datetime | None = None) -> ReconResult:
    """A copy of ``result`` whose summary carries its creation time and run id (the input is unchanged)."""
    moment = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    summary = {**result.summary, "created_utc": moment.isoformat().replace("+00:00", "Z")}
    summary["run_id"] = run_id_for(summary, moment)
    return dataclasses.replace(result, summary=summary)


def save_run(result: ReconResult, store_path: Path | str | None = None, created: datetime | None = None, *,
             profile: Any = None) -> SavedRun:
    """Stamp ``result`` and record it complete in the store at ``store_path`` (default store).

    Raises:
        StoreError / StoreBusyError: the store cannot be opened or stays locked.
    """
    run = stamped(result, created)
    path = Path(store_path) if store_path is not None else default_store_path()
    with store_session(path) as store:
        record = record_result(store, run, kind=KIND_APP, profile=profile)
    return SavedRun(record.run_id, path, run.summary, record)


def _migrate_once(path: Path) -> None:
    with store_session(path):
        pass


def saved_runs(store_path: Path | str | None = None, *, complete_only: bool = False) -> list[SavedRun]:
    """Every run in the store, newest first ([] when the store does not exist yet).

    An older store is upgraded once (briefly read-write), then read read-only.
    """
    path = Path(store_path) if store_path is not None else default_store_path()
    if not path.exists():
        return []
    try:
        with store_session(path, read_only=True) as store:
            records = list_runs(store, status=STATUS_COMPLETE if complete_only else None)
    except StoreError as exc:
        if "open it once without read-only" not in str(exc):
            raise
        _migrate_once(path)
        return saved_runs(path, complete_only=complete_only)
    return [SavedRun(r.run_id, path, r.summary or {}, r) for r in records]


def reopen_result(store_path: Path | str | None, run_id: str) -> ReconResult:
    """The stored result of a complete run (for the page to show and to regenerate files from)."""
    path = Path(store_path) if store_path is not None else default_store_path()
    with store_session(path, read_only=True) as store:
        result: ReconResult = load_result(store, run_id)
    return result


def regenerate_files(store_path: Path | str | None, run_id: str, out_dir: Path) -> dict[str, Path]:
    """Write a stored run's six report files into ``out_dir`` (byte-identical to the originals)."""
    return write_reconciliation_reports(reopen_result(store_path, run_id), Path(out_dir))


def _input_names(summary: Mapping[str, Any], side: str) -> str:
    return ", ".join(Path(str(i.get("file", ""))).name for i in summary.get("inputs", []) if i.get("side") == side)


def runs_table(runs: Sequence[SavedRun]) -> pd.DataFrame:
    """One line per run: when, kind, status, period, inputs and hashes, tolerance, counts and disputed money."""
    rows = []
    for run in runs:
        s = run.summary or {}
        counts, money, rates = s.get("counts", {}), s.get("money", {}), s.get("rates", {})
        record = run.record
        invoice_hashes = [i.sha256[:12] for i in record.inputs if i.side == "invoice"] if record else [
            str(i.get("sha256", ""))[:12] for i in s.get("inputs", []) if i.get("side") == "invoice"]
        rows.append({
            "run_id": run.run_id,
            "created_utc": s.get("created_utc") or (record.started_at.isoformat() if record else ""),
            "kind": record.kind if record else "",
            "status": record.status if record else STATUS_COMPLETE,
            "period": (record.period if record else None) or "",
            "carrier": (record.carrier if record else None) or "",
            "invoice": _input_names(s, "invoice") or (", ".join(i.file_name for i in record.inputs
                                                               if i.side == "invoice") if record else ""),
            "cdr": _input_names(s, "cdr") or (", ".join(i.file_name for i in record.inputs
                                                       if i.side == "cdr") if record else ""),
            "invoice_sha256": ", ".join(invoice_hashes),
            "tolerance_s": s.get("settings", {}).get("time_tolerance_s"),
            "matched": counts.get("matched", 0),
            "discrepancies": sum(int(counts.get(c, 0)) for c in DISCREPANCY_CATEGORIES),
            "discrepancy_rate_pct": rates.get("discrepancy_rate_pct"),
            "disputed": f"{money.get('disputed_amount', '')} {money.get('currency', '')}".strip(),
        })
    return pd.DataFrame(rows, columns=RUNS_TABLE_COLUMNS)


def _lookup(summary: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = summary
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def compare_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> pd.DataFrame:
    """Two summaries side by side, with the change from A to B where both are numbers."""
    rows = []
    for label, path in COMPARED:
        va, vb = _lookup(a, path), _lookup(b, path)
        try:
            change = float(vb) - float(va)
            change_text = f"{change:+,.6f}".rstrip("0").rstrip(".") if change else "0"
        except (TypeError, ValueError):
            change_text = ""
        rows.append({"measure": label, "run A": "" if va is None else str(va), "run B": "" if vb is None else str(vb),
                     "change": change_text})
    return pd.DataFrame(rows, columns=["measure", "run A", "run B", "change"])
