"""Real-time vs historical batch reconciliation (issue 6): do the dashboards agree with the batch reports?

Per (interval, queue, media type, metric) the real-time value (the last collector snapshot taken
before the interval closed) is compared with the batch value under a tolerance policy; the status
is ``OK | MISMATCH | PENDING | UNMAPPED`` with a likely cause where one is known.

API for the page (stable; everything below is importable from ``recon_core.rtbatch``)
-----------------------------------------------------------------------------------------
Data in (both sides are *tidy* DataFrames: ``interval_start``, ``interval_end`` (UTC),
``queue_id``, ``media_type``, ``metric``, ``value``; real-time may add ``captured_at``):

* ``load_demo_rt_batch(day=DEMO_DAY, *, granularity="PT30M", conversations_per_day=300, ...)
  -> DemoRtBatch`` - the sandbox org as both sources, no network. Fields: ``realtime``, ``batch``,
  ``as_of``, ``pending_intervals``, ``batch_complete_until``, ``queues`` (id -> name),
  ``ground_truth``.
* ``read_tidy_csv(path_or_upload)``, ``read_batch_file(path_or_upload)`` (the API's aggregate
  JSON as returned, or tidy CSV; an upload's ``name`` decides) -> tidy DataFrame; raise
  ``InputFileError``.
* Genesys: ``api.collect_snapshot`` / ``api.run_collector`` (real time into the store) and
  ``api.fetch_batch(client, con, queue_ids, start, end, granularity=, buffer_minutes=, as_of=)
  -> BatchFetch`` (``pending``, ``complete_until``) then ``reconcile_store``.

Settings and editable tables:

* ``RtBatchSettings(granularity="PT30M", buffer_minutes=60, as_of=None, policy=MetricPolicy(),
  status_map=StatusMap(), start=None, end=None, alert_min_mismatches=1,
  alert_critical_mismatches=5, environment="production")``; ``.to_dict()``.
* ``MetricPolicy().table()`` -> editor rows (metric, label, kind, unit, absolute, percent);
  ``policy_from_rows(rows)`` -> ``MetricPolicy`` (raises ``SettingsError`` listing every bad row).
  Rule: ``|rt - batch| <= max(absolute, percent % of |batch|)``; only ``absolute`` when one side is 0.
* ``StatusMap().table()`` -> rows (realtime_status, batch_classification);
  ``status_map_from_rows(rows)`` -> ``StatusMap``.
* Files: ``load_policy`` / ``save_policy``, ``load_status_map`` / ``save_status_map`` (JSON).
  Store: ``persist.save_policy_to_store`` / ``load_policy_from_store``,
  ``persist.save_status_map_to_store`` / ``load_status_map_from_store``.

Run:

* ``reconcile_frames(realtime_df, batch_df, settings, *, pending_intervals=(),
  batch_complete_until=None, progress=None) -> RtBatchResult`` (the page's entry point);
* ``reconcile_rt_batch(con, realtime_table, batch_table, settings, *, pending_intervals=(),
  batch_complete_until=None, progress=None) -> RtBatchResult`` (tables in a DuckDB connection);
* ``reconcile_store(con, settings, ...) -> (RtBatchResult, run_id)`` (store tables, upserts
  results and the checkpoint).

Result: ``RtBatchResult`` with ``variances`` (DataFrame, :data:`VARIANCE_COLUMNS`: interval_start,
interval_end, queue_id, media_type, metric, kind, unit, rt_value, batch_value, abs_variance,
variance_percent, threshold, threshold_kind (absolute|percent|points), threshold_percent, status,
likely_cause), ``unmapped_statuses`` (review list, :data:`UNMAPPED_COLUMNS`), ``summary`` (dict:
counts per status, intervals, checkpoint, notes, ...), ``alerts`` (tuple of payload dicts),
``checkpoint``, ``settings``; ``.to_dict()``.

Charts and tables for the page: :mod:`recon_core.rtbatch.view` (``metric_series`` with the
tolerance band, ``status_grid``, ``mismatch_table``, ``review_table``, ...).

Out: ``write_rt_batch_reports(result, out_dir, *, dispatches=None) -> dict[str, Path]``
(``MetricVariances.csv``, ``alerts.json``, ``summary.json``, ``rt_vs_batch.xlsx``) and
``rt_batch_report_bytes(result) -> dict[str, bytes]`` for download buttons;
``send_rt_batch_alerts(con, result, channels, *, send=True) -> list[dict]`` delivers each alert
once per store (channels from ``recon_core.alerts.alert_channels_from_env``).
"""

from __future__ import annotations

from recon_core.rtbatch.alerting import send_rt_batch_alerts
from recon_core.rtbatch.demo import DEMO_DAY, DemoRtBatch, load_demo_rt_batch
from recon_core.rtbatch.engine import (
    STATUSES,
    UNMAPPED_COLUMNS,
    VARIANCE_COLUMNS,
    RtBatchResult,
    RtBatchSettings,
    reconcile_rt_batch,
    validate_settings,
)
from recon_core.rtbatch.metrics import (
    METRIC_REGISTRY,
    MetricPolicy,
    MetricSpec,
    StatusMap,
    Tolerance,
    load_policy,
    load_status_map,
    policy_from_rows,
    save_policy,
    save_status_map,
    status_map_from_rows,
)
from recon_core.rtbatch.reports import RT_BATCH_FILES, rt_batch_report_bytes, write_rt_batch_reports
from recon_core.rtbatch.run import reconcile_frames, reconcile_store
from recon_core.rtbatch.sources import GRANULARITIES, read_batch_file, read_tidy_csv

__all__ = [
    "DEMO_DAY",
    "GRANULARITIES",
    "METRIC_REGISTRY",
    "RT_BATCH_FILES",
    "STATUSES",
    "UNMAPPED_COLUMNS",
    "VARIANCE_COLUMNS",
    "DemoRtBatch",
    "MetricPolicy",
    "MetricSpec",
    "RtBatchResult",
    "RtBatchSettings",
    "StatusMap",
    "Tolerance",
    "load_demo_rt_batch",
    "load_policy",
    "load_status_map",
    "policy_from_rows",
    "read_batch_file",
    "read_tidy_csv",
    "reconcile_frames",
    "reconcile_rt_batch",
    "reconcile_store",
    "rt_batch_report_bytes",
    "save_policy",
    "save_status_map",
    "send_rt_batch_alerts",
    "status_map_from_rows",
    "validate_settings",
    "write_rt_batch_reports",
]
