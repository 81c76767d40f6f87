"""Running a comparison on DataFrames or on the store's tables."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

import duckdb
import pandas as pd

from recon_core.rtbatch import persist
from recon_core.rtbatch.engine import RtBatchResult, RtBatchSettings, reconcile_rt_batch
from recon_core.sql import connect

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def reconcile_frames(realtime: pd.DataFrame, batch: pd.DataFrame, settings: RtBatchSettings, *,
                     pending_intervals: Iterable[datetime] = (), batch_complete_until: datetime | None = None,
                     progress: Progress | None = None) -> RtBatchResult:
    """:func:`reconcile_rt_batch` on two tidy DataFrames (registered in a throw-away DuckDB)."""
    con = connect()
    try:
        con.register("rt_input", realtime)
        con.register("batch_input", batch)
        return reconcile_rt_batch(con, "rt_input", "batch_input", settings, pending_intervals=pending_intervals,
                                  batch_complete_until=batch_complete_until, progress=progress)
    finally:
        con.close()


def reconcile_store(con: duckdb.DuckDBPyConnection, settings: RtBatchSettings, *,
                    pending_intervals: Iterable[datetime] = (), batch_complete_until: datetime | None = None,
                    run_id: str | None = None, progress: Progress | None = None) -> tuple[RtBatchResult, str]:
    """Compare the store's snapshots with its batch aggregates and upsert the results + checkpoint.

    Pending intervals include those the store recorded as ``pending`` (an earlier fetch gave up).
    Returns (result, run id).
    """
    states = persist.batch_interval_states(con, settings.granularity)
    stored_pending = [s for s, state in states.items() if state == persist.STATE_PENDING]
    result = reconcile_rt_batch(con, persist.SNAPSHOTS_TABLE, persist.BATCH_TABLE, settings,
                                pending_intervals=[*pending_intervals, *stored_pending],
                                batch_complete_until=batch_complete_until, progress=progress)
    run = run_id or uuid.uuid4().hex[:12]
    persist.save_results(con, result, run)
    return result, run
