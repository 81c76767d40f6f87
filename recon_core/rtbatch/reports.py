"""The files of a real-time vs batch run: ``MetricVariances.csv``, ``alerts.json``, ``summary.json``,
``rt_vs_batch.xlsx`` (CSV and Excel through the shared report writers)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from recon_core.files import write_atomically
from recon_core.reports.csv_writer import write_csv
from recon_core.reports.excel import write_dispute_pack
from recon_core.rtbatch.engine import STATUS_MISMATCH, STATUS_PENDING, STATUS_UNMAPPED, VARIANCE_COLUMNS, RtBatchResult

VARIANCES_FILE = "MetricVariances.csv"
ALERTS_FILE = "alerts.json"
SUMMARY_FILE = "summary.json"
WORKBOOK_FILE = "rt_vs_batch.xlsx"
RT_BATCH_FILES = (VARIANCES_FILE, ALERTS_FILE, SUMMARY_FILE, WORKBOOK_FILE)


def alerts_document(result: RtBatchResult, dispatches: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``alerts.json``: every alert with whether it was sent, already sent before, or would be sent."""
    would_send = [{"state": "would_send", "payload": p} for p in result.alerts]
    items = would_send if dispatches is None else list(dispatches)
    return {"alert_rule": {"min_mismatches_per_interval": result.settings.alert_min_mismatches,
                           "critical_from": result.settings.alert_critical_mismatches},
            "alerts": items}


def write_rt_batch_reports(result: RtBatchResult, out_dir: str | Path, *,
                           dispatches: Sequence[Mapping[str, Any]] | None = None,
                           progress: Callable[[float, str], None] | None = None) -> dict[str, Path]:
    """Write the four files into ``out_dir`` (created); returns their paths by file name.

    ``dispatches``: what :func:`recon_core.rtbatch.alerting.send_rt_batch_alerts` did (None =
    nothing was sent: every alert is listed as ``would_send``).
    """
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    paths = {name: target / name for name in RT_BATCH_FILES}
    write_csv(paths[VARIANCES_FILE], result.variances, columns=VARIANCE_COLUMNS)
    if progress:
        progress(0.3, f"wrote {VARIANCES_FILE}")
    write_atomically(paths[ALERTS_FILE], json.dumps(alerts_document(result, dispatches), indent=2, default=str) + "\n")
    write_atomically(paths[SUMMARY_FILE], json.dumps(result.summary, indent=2, default=str) + "\n")
    v = result.variances
    sheets: dict[str, pd.DataFrame] = {
        "Mismatches": v[v["status"] == STATUS_MISMATCH],
        "Pending": v[v["status"] == STATUS_PENDING],
        "Unmapped": v[v["status"] == STATUS_UNMAPPED],
        "Unmapped statuses": result.unmapped_statuses,
        "All metrics": v,
    }
    summary = {k: val for k, val in result.summary.items() if k not in ("settings", "metrics")}
    write_dispute_pack(paths[WORKBOOK_FILE], summary, sheets, title="Real-time vs batch reconciliation",
                       document_time=result.settings.effective_as_of().replace(tzinfo=None),
                       column_kinds={"rt_value": "number", "batch_value": "number", "abs_variance": "number",
                                     "variance_percent": "number", "threshold": "number",
                                     "threshold_percent": "number", "total_value": "number"})
    if progress:
        progress(1.0, f"wrote {WORKBOOK_FILE}")
    return paths


def rt_batch_report_bytes(result: RtBatchResult, *,
                          dispatches: Sequence[Mapping[str, Any]] | None = None) -> dict[str, bytes]:
    """The four files' contents by file name (for download buttons), written through the same writers."""
    with tempfile.TemporaryDirectory(prefix="rt-batch-") as tmp:
        paths = write_rt_batch_reports(result, tmp, dispatches=dispatches)
        return {name: path.read_bytes() for name, path in paths.items()}
