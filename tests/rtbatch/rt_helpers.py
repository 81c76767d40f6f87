"""Tiny tidy tables for the engine tests: ``(HH:MM, metric, value)`` rows of one queue."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from recon_core.rtbatch.engine import RtBatchResult, RtBatchSettings
from recon_core.rtbatch.run import reconcile_frames
from recon_core.rtbatch.sources import tidy_frame

DAY = datetime(2026, 10, 5, tzinfo=UTC)
QUEUE = "queue-1"


def at(hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes))


def tidy(rows: Iterable[tuple[Any, ...]], minutes: int = 30, queue: str = QUEUE, media: str = "voice") -> pd.DataFrame:
    """``(HH:MM, metric, value)`` or ``(HH:MM, metric, value, queue, media)`` -> a tidy frame."""
    out = []
    for row in rows:
        start = at(row[0])
        q, m = (row[3], row[4]) if len(row) > 3 else (queue, media)
        out.append({"interval_start": start, "interval_end": start + timedelta(minutes=minutes), "queue_id": q,
                    "media_type": m, "metric": row[1], "value": row[2]})
    return tidy_frame(out)


def compare(rt_rows: Iterable[tuple[Any, ...]], batch_rows: Iterable[tuple[Any, ...]], *, as_of: str = "23:00",
            pending: Iterable[str] = (), complete_until: str | None = None, **settings: Any) -> RtBatchResult:
    """Run the engine on two tiny tables ``as_of`` HH:MM of the test day."""
    return reconcile_frames(tidy(rt_rows), tidy(batch_rows), RtBatchSettings(as_of=at(as_of), **settings),
                            pending_intervals=[at(p) for p in pending],
                            batch_complete_until=at(complete_until) if complete_until else None)


def row(result: RtBatchResult, hhmm: str, metric: str) -> dict[str, Any]:
    """The result row of ``metric`` in the interval starting at ``hhmm``."""
    v = result.variances
    hit = v[(v["interval_start"] == pd.Timestamp(at(hhmm))) & (v["metric"] == metric)]
    assert len(hit) == 1, f"{len(hit)} rows for {hhmm} {metric}: {v[['interval_start', 'metric']].to_dict('records')}"
    return dict(hit.iloc[0])
