"""Chart- and table-ready frames of a real-time vs batch result (pure pandas, for the app's page).

In: :class:`recon_core.rtbatch.engine.RtBatchResult` (or its ``variances`` frame) and the queue
names (queue id -> name). Out: small frames a page plots or shows as they are:

* :func:`kpi_counts` - intervals compared and values per status (the page's tiles);
* :func:`series_choices` / :func:`metric_series` - one metric of one queue and media type over
  time, with the tolerance band around the batch value;
* :func:`status_grid` - interval x queue, the worst status of the cell and what is in it;
* :func:`mismatch_table` - the mismatched values with their likely cause, labelled for people.

Nothing here changes the result; every function returns new frames.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from recon_core.rtbatch import persist
from recon_core.rtbatch.engine import (
    STATUS_MISMATCH,
    STATUS_OK,
    STATUS_PENDING,
    STATUS_UNMAPPED,
    STATUSES,
    RtBatchResult,
)
from recon_core.rtbatch.metrics import metric_spec
from recon_core.rtbatch.sources import SNAPSHOT_COLUMNS, TIDY_COLUMNS, iso_z, normalize_tidy
from recon_core.sql import execute, quote_ident

logger = logging.getLogger(__name__)

# A cell of the heatmap shows the most urgent status among its values.
STATUS_PRIORITY = (STATUS_MISMATCH, STATUS_UNMAPPED, STATUS_PENDING, STATUS_OK)
ORG_WIDE = "All agents (org-wide)"
SERIES_COLUMNS = ("interval_start", "interval_end", "rt_value", "batch_value", "band_low", "band_high",
                  "threshold", "status", "likely_cause")
GRID_COLUMNS = ("interval_start", "interval_end", "queue_id", "queue", "status", "code", *STATUSES, "detail")
MISMATCH_COLUMNS = ("Interval (UTC)", "Queue", "Media", "Metric", "Unit", "Real-time", "Batch", "Variance",
                    "Variance %", "Allowed ±", "Likely cause")


@dataclass(frozen=True)
class KpiCounts:
    """The page's tiles: intervals in range, compared (final) and pending; values per status."""

    intervals: int
    intervals_compared: int
    intervals_pending: int
    values: int
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"intervals": self.intervals, "intervals_compared": self.intervals_compared,
                "intervals_pending": self.intervals_pending, "values": self.values, "counts": dict(self.counts)}


def kpi_counts(variances: pd.DataFrame) -> KpiCounts:
    """Counted from the rows themselves: an interval is compared when none of its values is PENDING."""
    statuses = variances["status"]
    counts = {s: int((statuses == s).sum()) for s in STATUSES}
    starts = variances["interval_start"]
    pending = int(starts[statuses == STATUS_PENDING].nunique())
    total = int(starts.nunique())
    return KpiCounts(total, total - pending, pending, len(variances), counts)


def queue_label(queue_id: str, queues: Mapping[str, str], media_type: str = "") -> str:
    """``Support · voice``; the queue id when its name is unknown; org-wide values have no queue."""
    name = queues.get(queue_id, queue_id) if queue_id else ORG_WIDE
    return f"{name} · {media_type}" if media_type else name


def status_name(status: str, status_names: Mapping[str, str] | None = None) -> str:
    """A status as people know it: ``Project Work (c0910ec7-…)`` when a name is known for its id."""
    name = (status_names or {}).get(status)
    return f"{name} ({status})" if name and name != status else status


def metric_label(metric: str, status_names: Mapping[str, str] | None = None) -> str:
    """``Average handle time (AHT)``; status metrics: ``Time in presence: BREAK``."""
    spec = metric_spec(metric)
    if spec is None:
        return metric
    if ":" in metric:
        return f"{spec.label}: {status_name(metric.split(':', 1)[1], status_names)}"
    return f"{spec.label} ({metric})" if spec.label != metric else metric


def metric_unit(metric: str) -> str:
    spec = metric_spec(metric)
    return spec.unit if spec else ""


def series_choices(variances: pd.DataFrame, queues: Mapping[str, str]) -> pd.DataFrame:
    """Every (metric, queue, media type) that has values: ``metric, queue_id, media_type, queue,
    mismatches, values``, the ones with the most mismatches first (then by metric and queue)."""
    if variances.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in
                             ("metric", "queue_id", "media_type", "queue", "mismatches", "values")})
    grouped = variances.assign(is_mismatch=variances["status"] == STATUS_MISMATCH).groupby(
        ["metric", "queue_id", "media_type"], as_index=False, sort=False).agg(
        mismatches=("is_mismatch", "sum"), values=("status", "size"))
    grouped["queue"] = [queue_label(q, queues, m) for q, m in zip(grouped["queue_id"], grouped["media_type"],
                                                                     strict=True)]
    grouped["mismatches"] = grouped["mismatches"].astype(int)
    grouped = grouped.sort_values(["mismatches", "metric", "queue"], ascending=[False, True, True], kind="mergesort")
    return grouped[["metric", "queue_id", "media_type", "queue", "mismatches", "values"]].reset_index(drop=True)


def metric_series(variances: pd.DataFrame, metric: str, queue_id: str, media_type: str) -> pd.DataFrame:
    """One metric of one queue and media type over time (:data:`SERIES_COLUMNS`).

    ``band_low``/``band_high``: the batch value ± the allowed difference (empty where the row
    has no threshold, e.g. an unmapped status); a missing side is NaN, not 0, so a line breaks
    where a source has no value.
    """
    rows = variances[(variances["metric"] == metric) & (variances["queue_id"] == queue_id)
                     & (variances["media_type"] == media_type)]
    out = rows[["interval_start", "interval_end", "rt_value", "batch_value", "threshold", "status",
                "likely_cause"]].copy()
    centre = out["batch_value"].fillna(0.0)
    out["band_low"] = centre - out["threshold"]
    out["band_high"] = centre + out["threshold"]
    return out[list(SERIES_COLUMNS)].sort_values("interval_start").reset_index(drop=True)


def _worst(statuses: pd.Series) -> str:
    present = set(statuses)
    return next(s for s in STATUS_PRIORITY if s in present)


def status_grid(variances: pd.DataFrame, queues: Mapping[str, str],
                status_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Interval x queue (all media types and metrics of the queue together), :data:`GRID_COLUMNS`.

    ``status``: the most urgent status in the cell (:data:`STATUS_PRIORITY`); ``code``: its
    position in :data:`STATUSES` (for a categorical colour scale); one count column per status;
    ``detail``: the mismatched and unmapped metrics of the cell, for a hover text.
    """
    if variances.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in GRID_COLUMNS})
    frame = variances[["interval_start", "interval_end", "queue_id", "media_type", "metric", "status"]]
    counts = (frame.groupby(["interval_start", "interval_end", "queue_id", "status"]).size()
              .unstack("status", fill_value=0).reindex(columns=list(STATUSES), fill_value=0).reset_index())
    counts.columns.name = None
    worst = frame.groupby(["interval_start", "queue_id"])["status"].agg(_worst).rename("status").reset_index()
    grid = counts.merge(worst, on=["interval_start", "queue_id"])
    flagged = frame[frame["status"].isin((STATUS_MISMATCH, STATUS_UNMAPPED))]
    details: dict[tuple[Any, str], str] = {}
    for (start, queue), group in flagged.groupby(["interval_start", "queue_id"]):
        items = [f"{s.lower()}: {metric_label(m, status_names)}" + (f" ({media})" if media else "")
                 for s, m, media in zip(group["status"], group["metric"], group["media_type"], strict=True)]
        shown = items[:6] + ([f"… and {len(items) - 6} more"] if len(items) > 6 else [])
        details[(start, str(queue))] = "<br>".join(shown)
    grid["detail"] = [details.get((s, str(q)), "") for s, q in zip(grid["interval_start"], grid["queue_id"],
                                                                   strict=True)]
    grid["queue"] = [queue_label(q, queues) for q in grid["queue_id"]]
    grid["code"] = grid["status"].map({s: i for i, s in enumerate(STATUSES)}).astype(int)
    for status in STATUSES:
        grid[status] = grid[status].astype(int)
    return grid[list(GRID_COLUMNS)].sort_values(["queue", "interval_start"]).reset_index(drop=True)


def mismatch_table(variances: pd.DataFrame, queues: Mapping[str, str],
                   status_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The MISMATCH rows labelled for people (:data:`MISMATCH_COLUMNS`), in interval order."""
    rows = variances[variances["status"] == STATUS_MISMATCH]
    start = pd.to_datetime(rows["interval_start"], utc=True)
    end = pd.to_datetime(rows["interval_end"], utc=True)
    out = pd.DataFrame({
        "Interval (UTC)": [f"{s:%Y-%m-%d %H:%M}–{e:%H:%M}" for s, e in zip(start, end, strict=True)],
        "Queue": [queue_label(q, queues) for q in rows["queue_id"]],
        "Media": rows["media_type"].replace("", "—").to_numpy(),
        "Metric": [metric_label(m, status_names) for m in rows["metric"]],
        "Unit": rows["unit"].to_numpy(),
        "Real-time": rows["rt_value"].to_numpy(),
        "Batch": rows["batch_value"].to_numpy(),
        "Variance": (rows["rt_value"].fillna(0.0) - rows["batch_value"].fillna(0.0)).to_numpy(),
        "Variance %": rows["variance_percent"].to_numpy(),
        "Allowed ±": rows["threshold"].to_numpy(),
        "Likely cause": rows["likely_cause"].fillna("—").replace("", "—").to_numpy(),
    })
    return out[list(MISMATCH_COLUMNS)].reset_index(drop=True)


def review_table(result: RtBatchResult, status_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The review list of unmapped real-time statuses, labelled for people."""
    review = result.unmapped_statuses
    if review.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in
                             ("Real-time status", "Metric", "Intervals", "First interval (UTC)",
                              "Last interval (UTC)", "Time (s)")})
    return pd.DataFrame({
        "Real-time status": [status_name(str(s), status_names) for s in review["realtime_status"]],
        "Metric": [metric_label(str(m)) for m in review["metric"]],
        "Intervals": review["intervals"].astype(int).to_numpy(),
        "First interval (UTC)": [f"{pd.Timestamp(t):%Y-%m-%d %H:%M}" for t in review["first_interval"]],
        "Last interval (UTC)": [f"{pd.Timestamp(t):%Y-%m-%d %H:%M}" for t in review["last_interval"]],
        "Time (s)": review["total_value"].astype(float).to_numpy(),
    })


def unmapped_status_ids(result: RtBatchResult) -> list[str]:
    """The distinct unmapped real-time statuses (as the status map matches them)."""
    review = result.unmapped_statuses
    return sorted({str(s) for s in review["realtime_status"]}) if not review.empty else []


def store_side_sql(table: str, columns: tuple[str, ...]) -> str:
    """Every row of a store table with the tidy ``columns``, in interval order."""
    listed = ", ".join(quote_ident(c) for c in columns)
    return f"SELECT {listed} FROM {quote_ident(table)} ORDER BY interval_start, queue_id, media_type, metric"


def read_store_sides(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real-time snapshots, batch aggregates) of the store as normalized tidy frames (UTC)."""
    realtime = execute(con, store_side_sql(persist.SNAPSHOTS_TABLE, SNAPSHOT_COLUMNS)).fetchdf()
    batch = execute(con, store_side_sql(persist.BATCH_TABLE, TIDY_COLUMNS)).fetchdf()
    return normalize_tidy(realtime), normalize_tidy(batch)


def tidy_csv(frame: pd.DataFrame) -> str:
    """A tidy frame as the CSV :func:`recon_core.rtbatch.sources.read_tidy_csv` reads (times ISO 8601, ms, Z)."""
    out = frame.copy()
    for column in ("captured_at", "interval_start", "interval_end"):
        if column in out.columns:
            out[column] = out[column].map(iso_z)
    return out.to_csv(index=False)
