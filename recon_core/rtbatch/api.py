"""Both sides from Genesys Cloud: the real-time collector and the batch fetch.

**Collector** (:func:`collect_snapshot`, :func:`run_collector`): every ``--every`` seconds it asks
``POST /api/v2/analytics/conversations/aggregates/query`` for the *current* interval (grouped by
queueId and mediaType), ``POST /api/v2/analytics/queues/observations/query`` for the queues' state
now, and ``POST /api/v2/analytics/users/aggregates/query`` for the current interval's time in
routing status / presence, and stores the answers as timestamped snapshots (``rt_snapshots``).
The engine uses, per interval, the last snapshot captured before the interval closed.

**Batch** (:func:`fetch_batch`): the aggregates of completed intervals (``granularity``
PT15M/PT30M/PT1H, grouped by queueId and mediaType, plus user aggregates), in chunks of a few
intervals. A chunk answered 409/503 or timing out is retried with backoff up to 5 times (the
transport's ``pending_attempts`` / ``max_retries``); after that its intervals are recorded
``pending`` and fetched again on the next run. Intervals already ``complete`` in the store are
never asked for again. Completion is confirmed with the details jobs' ``dataAvailabilityDate``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from recon_core.errors import (
    GenesysApiError,
    GenesysDataPendingError,
    GenesysPermissionError,
    GenesysRetriesExhaustedError,
    SettingsError,
)
from recon_core.genesys.client import GenesysClient
from recon_core.genesys.settings import ClientSettings
from recon_core.rtbatch import persist
from recon_core.rtbatch.metrics import CONVERSATION_API_METRICS, OBSERVATION_API_METRICS, USER_API_METRICS
from recon_core.rtbatch.sources import floor_interval, granularity_minutes, iso_z, tidy_frame, tidy_from_response

logger = logging.getLogger(__name__)

AGGREGATES_PATH = "/api/v2/analytics/conversations/aggregates/query"
OBSERVATIONS_PATH = "/api/v2/analytics/queues/observations/query"
USER_AGGREGATES_PATH = "/api/v2/analytics/users/aggregates/query"
AGGREGATE_PERMISSION = "analytics:conversationAggregate:view"
OBSERVATION_PERMISSION = "analytics:queueObservation:view"
USER_AGGREGATE_PERMISSION = "analytics:userAggregate:view"
BATCH_ATTEMPTS = 5
# Batch fetches retry 409/503 and timeouts 5 times, then leave the intervals pending.
BATCH_CLIENT_SETTINGS = ClientSettings(pending_attempts=BATCH_ATTEMPTS, max_retries=BATCH_ATTEMPTS)

Clock = Callable[[], datetime]
Progress = Callable[[float, str], None]


def queue_filter(queue_ids: Sequence[str]) -> dict[str, Any]:
    """``{"type": "or", "predicates": [{"dimension": "queueId", "value": ...}, ...]}``."""
    return {"type": "or", "predicates": [{"dimension": "queueId", "value": q} for q in queue_ids]}


def interval_text(start: datetime, end: datetime) -> str:
    return f"{iso_z(start)}/{iso_z(end)}"


def conversation_aggregates_body(start: datetime, end: datetime, granularity: str,
                                 queue_ids: Sequence[str]) -> dict[str, Any]:
    """A ``ConversationAggregationQuery`` for the compared metrics, by queueId and mediaType."""
    body: dict[str, Any] = {"interval": interval_text(start, end), "granularity": granularity,
                            "groupBy": ["queueId", "mediaType"], "metrics": list(CONVERSATION_API_METRICS)}
    if queue_ids:
        body["filter"] = queue_filter(queue_ids)
    return body


def user_aggregates_body(start: datetime, end: datetime, granularity: str) -> dict[str, Any]:
    """A ``UserAggregationQuery`` for time in routing status and presence, org-wide."""
    return {"interval": interval_text(start, end), "granularity": granularity, "metrics": list(USER_API_METRICS)}


def queue_observations_body(queue_ids: Sequence[str]) -> dict[str, Any]:
    """A ``QueueObservationQuery`` for the queues' current state."""
    return {"filter": queue_filter(queue_ids), "metrics": list(OBSERVATION_API_METRICS)}


# ---------------------------------------------------------------------- collector


@dataclass(frozen=True)
class SnapshotOutcome:
    """One collector poll: when, which interval, how many rows were stored."""

    captured_at: datetime
    interval_start: datetime
    interval_end: datetime
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"captured_at": iso_z(self.captured_at), "interval_start": iso_z(self.interval_start),
                "interval_end": iso_z(self.interval_end), "rows": self.rows}


def collect_snapshot(client: GenesysClient, con: duckdb.DuckDBPyConnection, queue_ids: Sequence[str], *,
                     granularity: str = "PT30M", now: datetime | None = None,
                     include_users: bool = True) -> SnapshotOutcome:
    """Poll the real-time endpoints once and store the snapshot (rows keyed by ``captured_at``).

    Raises:
        SettingsError: no queues or a bad granularity.
        GenesysApiError (and subclasses): the API refused a request.
    """
    if not queue_ids:
        raise SettingsError("name at least one queue to collect (--queues ID,ID)")
    minutes = granularity_minutes(granularity)
    captured = (now or datetime.now(UTC)).astimezone(UTC)
    start = floor_interval(captured, minutes)
    end = start + timedelta(minutes=minutes)
    transport = client.transport
    rows: list[dict[str, Any]] = []
    answer = transport.request_json("POST", AGGREGATES_PATH,
                                    body=conversation_aggregates_body(start, end, granularity, queue_ids),
                                    what=f"the real-time conversation aggregates for {iso_z(start)}",
                                    permission=AGGREGATE_PERMISSION)
    rows += tidy_from_response(answer, captured_at=captured)
    answer = transport.request_json("POST", OBSERVATIONS_PATH, body=queue_observations_body(queue_ids),
                                    what="the queue observations", permission=OBSERVATION_PERMISSION)
    rows += tidy_from_response(answer, captured_at=captured, interval=(start, end))
    if include_users:
        answer = transport.request_json("POST", USER_AGGREGATES_PATH,
                                        body=user_aggregates_body(start, end, granularity),
                                        what=f"the real-time user aggregates for {iso_z(start)}",
                                        permission=USER_AGGREGATE_PERMISSION)
        rows += tidy_from_response(answer, captured_at=captured)
    # Aggregates answer whole buckets; keep only the current interval's.
    frame = tidy_frame(rows, snapshots=True)
    frame = frame[frame["interval_start"] == pd.Timestamp(start)]
    written = persist.save_snapshots(con, frame, source=client.endpoints.api_base_url)
    logger.info("snapshot at %s: %d rows for %s", iso_z(captured), written, iso_z(start))
    return SnapshotOutcome(captured, start, end, written)


def run_collector(client: GenesysClient, con: duckdb.DuckDBPyConnection, queue_ids: Sequence[str], *,
                  every_seconds: float = 60.0, granularity: str = "PT30M", iterations: int | None = None,
                  clock: Clock | None = None, sleep: Callable[[float], None] = time.sleep,
                  on_snapshot: Callable[[SnapshotOutcome], None] | None = None) -> list[SnapshotOutcome]:
    """Poll every ``every_seconds`` (``iterations`` times; None = until interrupted).

    ``clock``/``sleep`` are injectable so tests control time. A poll that fails with a
    retryable API problem is logged and the next poll goes ahead.
    """
    if every_seconds <= 0:
        raise SettingsError(f"--every must be longer than 0 seconds, got {every_seconds}")
    now = clock or (lambda: datetime.now(UTC))
    done: list[SnapshotOutcome] = []
    count = 0
    while iterations is None or count < iterations:
        started = now()
        try:
            outcome = collect_snapshot(client, con, queue_ids, granularity=granularity, now=started)
        except (GenesysRetriesExhaustedError, GenesysDataPendingError) as exc:
            logger.warning("snapshot at %s skipped: %s", iso_z(started), exc)
        else:
            done.append(outcome)
            if on_snapshot:
                on_snapshot(outcome)
        count += 1
        if iterations is not None and count >= iterations:
            break
        elapsed = (now() - started).total_seconds()
        sleep(max(0.0, every_seconds - elapsed))
    return done


# ---------------------------------------------------------------------- batch


@dataclass(frozen=True)
class BatchFetch:
    """What :func:`fetch_batch` did, by interval start.

    ``fetched`` now; ``already_complete`` in the store before; ``pending``: the API kept
    answering 409/503 or timing out (pass these to the engine as ``pending_intervals``);
    ``waiting``: after the batch source's ``complete_until``, not asked for yet.
    """

    fetched: tuple[datetime, ...]
    already_complete: tuple[datetime, ...]
    pending: tuple[datetime, ...]
    complete_until: datetime | None
    requests: int
    notes: tuple[str, ...] = ()
    waiting: tuple[datetime, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"fetched_intervals": len(self.fetched), "already_complete": len(self.already_complete),
                "pending_intervals": [iso_z(p) for p in self.pending],
                "waiting_intervals": [iso_z(p) for p in self.waiting],
                "complete_until": iso_z(self.complete_until) if self.complete_until else None,
                "requests": self.requests, "notes": list(self.notes)}


def _chunks(starts: list[datetime], step: timedelta, size: int) -> list[list[datetime]]:
    """Consecutive interval starts in runs of at most ``size``."""
    out: list[list[datetime]] = []
    for start in starts:
        if out and len(out[-1]) < size and out[-1][-1] + step == start:
            out[-1].append(start)
        else:
            out.append([start])
    return out


def fetch_batch(client: GenesysClient, con: duckdb.DuckDBPyConnection, queue_ids: Sequence[str],
                start: datetime, end: datetime, *, granularity: str = "PT30M", buffer_minutes: int = 60,
                as_of: datetime | None = None, chunk_intervals: int = 8, include_users: bool = True,
                progress: Progress | None = None) -> BatchFetch:
    """Fetch the batch aggregates of the completed intervals in ``[start, end)`` into the store.

    Only intervals whose end + buffer has passed and that are not ``complete`` in the store yet
    are requested. Returns which intervals were fetched and which stay pending.

    Raises:
        GenesysAuthError, GenesysPermissionError, GenesysApiError: the API refused outright.
    """
    minutes = granularity_minutes(granularity)
    step = timedelta(minutes=minutes)
    moment = (as_of or datetime.now(UTC)).astimezone(UTC)
    first = floor_interval(start, minutes)
    states = persist.batch_interval_states(con, granularity)
    notes: list[str] = []
    complete_until: datetime | None
    try:
        complete_until = client.data_availability()
    except (GenesysPermissionError, GenesysApiError) as exc:
        complete_until = None
        notes.append(f"the batch completion date could not be read ({exc}); relying on the buffer only")
    starts = []
    cursor = first
    while cursor + step <= end:
        if cursor + step + timedelta(minutes=buffer_minutes) <= moment:
            starts.append(cursor)
        cursor += step
    done = tuple(s for s in starts if states.get(s) == persist.STATE_COMPLETE)
    todo = [s for s in starts if states.get(s) != persist.STATE_COMPLETE
            and (complete_until is None or s + step <= complete_until)]
    waiting = [s for s in starts if s not in done and s not in todo]
    fetched: list[datetime] = []
    pending: list[datetime] = []
    requests = 0
    chunks = _chunks(todo, step, max(1, chunk_intervals))
    for index, chunk in enumerate(chunks):
        lo, hi = chunk[0], chunk[-1] + step
        if progress:
            progress(index / max(1, len(chunks)), f"batch aggregates {iso_z(lo)}")
        try:
            rows = []
            requests += 1
            answer = client.transport.request_json(
                "POST", AGGREGATES_PATH, body=conversation_aggregates_body(lo, hi, granularity, queue_ids),
                what=f"the batch conversation aggregates for {interval_text(lo, hi)}",
                permission=AGGREGATE_PERMISSION, data_endpoint=True)
            rows += tidy_from_response(answer)
            if include_users:
                requests += 1
                answer = client.transport.request_json(
                    "POST", USER_AGGREGATES_PATH, body=user_aggregates_body(lo, hi, granularity),
                    what=f"the batch user aggregates for {interval_text(lo, hi)}",
                    permission=USER_AGGREGATE_PERMISSION, data_endpoint=True)
                rows += tidy_from_response(answer)
        except (GenesysDataPendingError, GenesysRetriesExhaustedError) as exc:
            logger.warning("batch %s stays pending: %s", interval_text(lo, hi), exc)
            persist.mark_batch_intervals(con, granularity, [(s, s + step) for s in chunk], persist.STATE_PENDING,
                                         str(exc)[:500])
            pending += chunk
            continue
        persist.save_batch_aggregates(con, tidy_frame(rows), source=client.endpoints.api_base_url)
        persist.mark_batch_intervals(con, granularity, [(s, s + step) for s in chunk], persist.STATE_COMPLETE)
        fetched += chunk
    if waiting:
        notes.append(f"{len(waiting)} intervals are after the batch completion date and wait for the next run")
    if progress:
        progress(1.0, f"batch: {len(fetched)} intervals fetched, {len(pending)} pending")
    return BatchFetch(tuple(fetched), done, tuple(sorted(pending)), complete_until, requests, tuple(notes),
                      tuple(waiting))
