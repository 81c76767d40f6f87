"""Demo data without a network: the sandbox's synthetic org as both sources.

The real-time side is what the sandbox's real-time source answers at each interval's close
(with the injected disagreements: boundary shifts, a few calls a day missing, the unmapped
custom presence ``Project Work``); the batch side is the same org without them, except that a
late window is still unavailable (pending). :attr:`DemoRtBatch.ground_truth` lists what was injected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from recon_core.rtbatch.metrics import CONVERSATION_API_METRICS, USER_API_METRICS
from recon_core.rtbatch.sources import iso_z, tidy_frame, tidy_from_response

logger = logging.getLogger(__name__)

DEMO_DAY = date(2026, 10, 6)


@dataclass(frozen=True)
class DemoRtBatch:
    """Both sides as tidy frames, plus what the batch source could not deliver yet."""

    realtime: pd.DataFrame
    batch: pd.DataFrame
    as_of: datetime
    pending_intervals: tuple[datetime, ...]
    batch_complete_until: datetime
    queues: dict[str, str]
    ground_truth: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": iso_z(self.as_of), "realtime_rows": len(self.realtime), "batch_rows": len(self.batch),
                "pending_intervals": [iso_z(p) for p in self.pending_intervals],
                "batch_complete_until": iso_z(self.batch_complete_until), "queues": self.queues,
                "ground_truth": list(self.ground_truth)}


def load_demo_rt_batch(day: date = DEMO_DAY, *, granularity: str = "PT30M", conversations_per_day: int = 300,
                       seed: int = 7, as_of: datetime | None = None, boundary_shift: bool = True,
                       unmapped_custom_status: bool = True, realtime_missing_per_day: int = 8,
                       late_hours: tuple[int, int] | None = (19, 20)) -> DemoRtBatch:
    """Real-time and batch tidy frames for UTC ``day`` of the sandbox org (no server, no network).

    ``as_of`` defaults to 00:30 UTC the next day, so the last intervals are still inside the
    buffer; ``late_hours`` (UTC, end exclusive) is a window whose batch data is still being
    prepared (HTTP 503): its intervals are pending.
    """
    from recon_core.sandbox.analytics import RealtimeView
    from recon_core.sandbox.clock import to_ms
    from recon_core.sandbox.config import Disagreements, LateBatch
    from recon_core.sandbox.org import OrgSpec, build_org

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    moment = (as_of or end + timedelta(minutes=30)).astimezone(UTC)
    late: tuple[LateBatch, ...] = ()
    if late_hours is not None:
        late = (LateBatch(start + timedelta(hours=late_hours[0]), start + timedelta(hours=late_hours[1]),
                          moment + timedelta(days=1), mode="503"),)
    disagreements = Disagreements(late_batches=late, boundary_shift=boundary_shift,
                                  unmapped_custom_status=unmapped_custom_status,
                                  realtime_missing_per_day=realtime_missing_per_day)
    org = build_org(OrgSpec(seed=seed, start=day - timedelta(days=1), end=day + timedelta(days=1),
                            conversations_per_day=conversations_per_day))
    realtime_view = RealtimeView(org, disagreements)
    batch_view = RealtimeView(org, Disagreements())
    now = to_ms(moment)
    interval = f"{iso_z(start)}/{iso_z(end)}"
    conv_body = {"interval": interval, "granularity": granularity, "groupBy": ["queueId", "mediaType"],
                 "metrics": list(CONVERSATION_API_METRICS)}
    user_body = {"interval": interval, "granularity": granularity, "metrics": list(USER_API_METRICS)}
    # Real time: everything emitted before each interval closed = the last snapshot before the close.
    rt_rows = (tidy_from_response(realtime_view.conversation_aggregates(conv_body, now))
               + tidy_from_response(realtime_view.user_aggregates(user_body, now)))
    batch_rows = (tidy_from_response(batch_view.conversation_aggregates(conv_body, now))
                  + tidy_from_response(batch_view.user_aggregates(user_body, now)))
    realtime = tidy_frame(rt_rows)
    realtime = realtime[realtime["interval_end"] <= pd.Timestamp(moment)]
    batch = tidy_frame(batch_rows)
    pending: list[datetime] = []
    for window in late:
        hit = ((batch["interval_start"] < pd.Timestamp(window.end))
               & (batch["interval_end"] > pd.Timestamp(window.start)))
        pending += sorted({ts.to_pydatetime() for ts in batch.loc[hit, "interval_start"]})
        batch = batch[~hit]
    queues = {q.id: q.name for q in org.directory.queues}
    truth = tuple(realtime_view_truth(realtime_view, to_ms(start), to_ms(end), now, late))
    return DemoRtBatch(realtime.reset_index(drop=True), batch.reset_index(drop=True), moment, tuple(pending),
                       moment, queues, truth)


def realtime_view_truth(view: Any, start: int, end: int, now: int, late: Any) -> list[dict[str, Any]]:
    from recon_core.sandbox.analytics import ground_truth

    return ground_truth(view, start, end, now, late)
