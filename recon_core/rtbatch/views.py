"""Shapes of a result for charts (pure DataFrame functions; the page only draws them)."""

from __future__ import annotations

import pandas as pd

from recon_core.rtbatch.engine import STATUS_MISMATCH, STATUS_OK, STATUS_PENDING, STATUS_UNMAPPED, RtBatchResult

# Worst first: what a heatmap cell shows when its interval x queue has several statuses.
STATUS_SEVERITY = {STATUS_MISMATCH: 3, STATUS_UNMAPPED: 2, STATUS_PENDING: 1, STATUS_OK: 0}
SERIES_COLUMNS = ("interval_start", "interval_end", "rt_value", "batch_value", "lower", "upper", "status",
                  "likely_cause")


def variance_series(result: RtBatchResult, metric: str, queue_id: str = "", media_type: str = "") -> pd.DataFrame:
    """One metric of one queue/media type over time: both values and the tolerance band around the batch.

    ``lower``/``upper`` = batch value -/+ threshold (the band a real-time value may fall in);
    empty when the interval has no threshold (unmapped rows). Sorted by interval.
    """
    v = result.variances
    part = v[(v["metric"] == metric) & (v["queue_id"] == queue_id) & (v["media_type"] == media_type)]
    out = part[["interval_start", "interval_end", "rt_value", "batch_value", "status", "likely_cause"]].copy()
    batch = part["batch_value"].fillna(0.0)
    out["lower"] = (batch - part["threshold"]).clip(lower=0.0)
    out["upper"] = batch + part["threshold"]
    return out[list(SERIES_COLUMNS)].sort_values("interval_start").reset_index(drop=True)


def status_grid(result: RtBatchResult, metric: str | None = None) -> pd.DataFrame:
    """Interval x queue -> the worst status (MISMATCH > UNMAPPED > PENDING > OK) and the row counts.

    Rows without a queue (org-wide agent statuses) appear under ``queue_id`` ``""``. Columns:
    ``interval_start``, ``queue_id``, ``status``, ``mismatches``, ``rows``.
    """
    v = result.variances if metric is None else result.variances[result.variances["metric"] == metric]
    if v.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in
                             ("interval_start", "queue_id", "status", "mismatches", "rows")})
    ranked = v.assign(rank=v["status"].map(STATUS_SEVERITY), is_mismatch=v["status"] == STATUS_MISMATCH)
    grid = ranked.groupby(["interval_start", "queue_id"], as_index=False).agg(
        rank=("rank", "max"), mismatches=("is_mismatch", "sum"), rows=("status", "size"))
    by_rank = {rank: status for status, rank in STATUS_SEVERITY.items()}
    grid["status"] = grid["rank"].map(by_rank)
    grid["mismatches"] = grid["mismatches"].astype(int)
    return grid[["interval_start", "queue_id", "status", "mismatches", "rows"]]


def series_keys(result: RtBatchResult) -> pd.DataFrame:
    """The (metric, queue_id, media_type) combinations present, for the chart's pickers."""
    keys = result.variances[["metric", "queue_id", "media_type"]].drop_duplicates()
    return keys.sort_values(["metric", "queue_id", "media_type"]).reset_index(drop=True)
