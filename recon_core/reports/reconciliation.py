"""Write a billing reconciliation's files: the CSVs, ``summary.json`` and the Excel dispute pack.

Everything is rendered from a :class:`~recon_core.reconcile.ReconResult`, so the screen, the
CLI and a regeneration from the store produce the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from recon_core.files import write_atomically
from recon_core.reports.csv_writer import write_csv
from recon_core.reports.excel import write_dispute_pack

MATCHED_FILE = "MatchedCalls.csv"
DISCREPANCIES_FILE = "Discrepancies.csv"
EXCLUDED_FILE = "ExcludedRows.csv"
REJECTED_FILE = "RejectedRows.csv"
SUMMARY_FILE = "summary.json"
WORKBOOK_FILE = "reconciliation.xlsx"
REPORT_FILES = (MATCHED_FILE, DISCREPANCIES_FILE, EXCLUDED_FILE, REJECTED_FILE, SUMMARY_FILE, WORKBOOK_FILE)


def summary_json(summary: dict[str, Any]) -> str:
    """The summary as stable, readable JSON text."""
    return json.dumps(summary, indent=2, sort_keys=False, default=str) + "\n"


def write_reconciliation_reports(result: Any, out_dir: Path, *,
                                 progress: Callable[[float, str], None] | None = None) -> dict[str, Path]:
    """Write the six report files into ``out_dir``; returns their paths by file name."""
    from recon_core.reconcile import (
        CATEGORY_PERIOD_BOUNDARY,
        DISCREPANCY_COLUMNS,
        EXCLUDED_COLUMNS,
        MATCHED_COLUMNS,
        REJECTED_COLUMNS,
        REPORTED_CATEGORIES,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in REPORT_FILES}
    write_csv(paths[MATCHED_FILE], result.matched, columns=MATCHED_COLUMNS)
    write_csv(paths[DISCREPANCIES_FILE], result.discrepancies, columns=DISCREPANCY_COLUMNS)
    write_csv(paths[EXCLUDED_FILE], result.excluded, columns=EXCLUDED_COLUMNS)
    write_csv(paths[REJECTED_FILE], result.rejected, columns=REJECTED_COLUMNS)
    write_atomically(paths[SUMMARY_FILE], summary_json(result.summary))
    sheets = {}
    for category in REPORTED_CATEGORIES:
        part = result.discrepancies[result.discrepancies["category"] == category]
        if category == CATEGORY_PERIOD_BOUNDARY and part.empty:
            continue  # only pipeline runs at a period's edge have these; no empty sheet elsewhere
        sheets[category] = part.reset_index(drop=True)
    sheets["Matched"] = result.matched
    sheets["Excluded"] = result.excluded
    sheets["Rejected"] = result.rejected
    created = result.summary.get("created_utc")
    stamp = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
    write_dispute_pack(paths[WORKBOOK_FILE], _workbook_summary(result.summary), sheets,
                       document_time=stamp, progress=progress)
    return paths


def _workbook_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary sections an analyst reads first, in that order."""
    keys = ("run_id", "created_utc", "money", "counts", "rates", "ledger", "settings", "inputs", "notes")
    return {k: summary[k] for k in keys if k in summary}
