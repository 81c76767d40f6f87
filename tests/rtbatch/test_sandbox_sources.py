"""The collector and the batch fetch against the sandbox, with time moved by the test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from recon_core.errors import GenesysDataPendingError, GenesysRetriesExhaustedError, SettingsError
from recon_core.genesys.client import GenesysClient
from recon_core.genesys.regions import GenesysEndpoints
from recon_core.genesys.settings import ClientCredentials
from recon_core.genesys.spec_validation import definition_problems
from recon_core.rtbatch import persist
from recon_core.rtbatch.api import (
    BATCH_CLIENT_SETTINGS,
    collect_snapshot,
    conversation_aggregates_body,
    fetch_batch,
    queue_observations_body,
    run_collector,
    user_aggregates_body,
)
from recon_core.rtbatch.engine import RtBatchSettings, side_values_sql
from recon_core.rtbatch.run import reconcile_store
from recon_core.sandbox import (
    Disagreements,
    ErrorBurst,
    Faults,
    ManualClock,
    OrgSpec,
    SandboxConfig,
    SandboxServer,
    run_sandbox,
)
from recon_core.sandbox.clock import to_ms
from recon_core.store import Store, open_store

ORG = OrgSpec(seed=11, start=date(2026, 10, 5), end=date(2026, 10, 7), conversations_per_day=120)
AGGREGATES = "/api/v2/analytics/conversations/aggregates/query"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Harness:
    """A sandbox on a manual clock, a client whose waits move that clock, and an in-memory store."""

    def __init__(self, server: SandboxServer, clock: ManualClock, store: Store) -> None:
        self.server = server
        self.clock = clock
        self.store = store
        self.waits: list[float] = []
        settings = replace(BATCH_CLIENT_SETTINGS, jitter_seconds=0.0, request_timeout_seconds=10.0)
        self.client = GenesysClient(GenesysEndpoints(server.base_url, server.base_url),
                                    ClientCredentials(server.config.client_id, server.config.client_secret),
                                    settings, sleep=self.sleep, clock=lambda: clock().timestamp())

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def harness_factory() -> Iterator[Any]:
    opened: list[Any] = []

    def build(start: datetime, **config: Any) -> Harness:
        clock = ManualClock(start)
        context = run_sandbox(SandboxConfig(org=ORG, clock=clock, **config))
        server = context.__enter__()
        store = open_store(":memory:")
        harness = Harness(server, clock, store)
        opened.append((context, store, harness))
        return harness

    yield build
    for context, store, harness in opened:
        harness.client.close()
        store.close()
        context.__exit__(None, None, None)


def _rt_values(store: Store) -> pd.DataFrame:
    return store.con.execute(side_values_sql(persist.SNAPSHOTS_TABLE, 30, snapshots=True)).fetchdf()


def test_request_bodies_match_the_spec() -> None:
    start, end = utc(2026, 10, 5, 10), utc(2026, 10, 5, 12)
    for body, definition in ((conversation_aggregates_body(start, end, "PT30M", ["q1", "q2"]),
                              "ConversationAggregationQuery"),
                             (user_aggregates_body(start, end, "PT15M"), "UserAggregationQuery"),
                             (queue_observations_body(["q1"]), "QueueObservationQuery")):
        assert not definition_problems(body, definition, strict=True), body


def test_the_last_snapshot_before_the_close_is_the_intervals_real_time_value(harness_factory: Any) -> None:
    h = harness_factory(utc(2026, 10, 5, 14, 0))
    queues = [q.id for q in h.server.org.directory.queues]
    snapshots = run_collector(h.client, h.store.con, queues, every_seconds=600, iterations=4, clock=h.clock,
                              sleep=h.sleep)
    assert [s.captured_at.strftime("%H:%M") for s in snapshots] == ["14:00", "14:10", "14:20", "14:30"]
    assert [s.interval_start.strftime("%H:%M") for s in snapshots] == ["14:00", "14:00", "14:00", "14:30"]
    values = _rt_values(h.store)
    first = values[values["interval_start"] == pd.Timestamp("2026-10-05 14:00")]
    # What the real-time source said at 14:20, the last poll before 14:30, not at 14:00 or later.
    answer = h.server.state.view.conversation_aggregates(
        conversation_aggregates_body(utc(2026, 10, 5, 14), utc(2026, 10, 5, 14, 30), "PT30M", queues),
        to_ms(utc(2026, 10, 5, 14, 20)))
    expected = {(r["group"]["queueId"], r["group"]["mediaType"]): {m["metric"]: m["stats"] for m in
                                                                     r["data"][0]["metrics"]}
                for r in answer["results"]}
    got = {(r.queue_id, r.media_type, r.metric): r.value for r in first.itertuples()}
    assert expected
    compared = 0
    for (queue, media), stats in expected.items():
        if "nOffered" in stats:
            assert got[(queue, media, "nOffered")] == stats["nOffered"]["count"]
            compared += 1
        if "tHandle" in stats:
            assert got[(queue, media, "tHandle")] == pytest.approx(stats["tHandle"]["sum"] / 1000)
            assert got[(queue, media, "nHandled")] == stats["tHandle"]["count"]
            compared += 1
    assert compared >= 2
    later = h.server.state.view.conversation_aggregates(
        conversation_aggregates_body(utc(2026, 10, 5, 14), utc(2026, 10, 5, 14, 30), "PT30M", queues),
        to_ms(utc(2026, 10, 5, 14, 30)))
    assert later != answer  # the interval kept growing after the last poll: the 14:20 value is the one kept
    # Observations and agent statuses were stored too, as snapshots of the same interval.
    metrics = set(first["metric"])
    assert "oWaiting" in metrics and any(m.startswith("tAgentRoutingStatus:") for m in metrics)
    assert any(m.startswith("oUserRoutingStatuses:") for m in metrics)
    # Re-storing the same snapshot changes nothing.
    before = h.store.con.execute("SELECT count(*) FROM rt_snapshots").fetchone()
    again = h.store.con.execute("SELECT * EXCLUDE (source) FROM rt_snapshots").fetchdf()
    persist.save_snapshots(h.store.con, again, source="again")
    assert h.store.con.execute("SELECT count(*) FROM rt_snapshots").fetchone() == before


def test_collector_needs_queues(harness_factory: Any) -> None:
    h = harness_factory(utc(2026, 10, 5, 14, 0))
    with pytest.raises(SettingsError, match="at least one queue"):
        collect_snapshot(h.client, h.store.con, [])


def _collect(h: Harness, start: datetime, polls: int, every: float = 300) -> None:
    queues = [q.id for q in h.server.org.directory.queues]
    h.clock.set(start)
    run_collector(h.client, h.store.con, queues, every_seconds=every, iterations=polls, clock=h.clock,
                  sleep=h.sleep)


def test_collected_real_time_agrees_with_the_batch_except_the_injected_boundary_shift(harness_factory: Any) -> None:
    h = harness_factory(utc(2026, 10, 5, 12), batch_aggregates_after_s=0,
                        disagreements=Disagreements(boundary_shift=True))
    truth = [t for t in h.server.ground_truth(utc(2026, 10, 5), utc(2026, 10, 6)) if t["kind"] == "boundary_shift"]
    shift = truth[0]
    hour = datetime.fromisoformat(shift["realtimeEnd"].replace("Z", "+00:00"))  # the real-time side's HH:00
    start = hour - timedelta(hours=1)
    # Poll every 5 minutes, each poll a millisecond before a 5-minute mark, over two hours.
    _collect(h, start + timedelta(minutes=5) - timedelta(milliseconds=1), polls=24)
    h.clock.set(hour + timedelta(hours=3))
    queues = [q.id for q in h.server.org.directory.queues]
    fetch = fetch_batch(h.client, h.store.con, queues, start, start + timedelta(hours=2), as_of=h.clock())
    assert len(fetch.fetched) == 4 and not fetch.pending
    result, _ = reconcile_store(h.store.con, RtBatchSettings(as_of=h.clock()))
    v = result.variances
    assert set(v["status"]) <= {"OK", "MISMATCH"}
    mismatched = v[v["status"] == "MISMATCH"]
    assert not mismatched.empty
    # Every mismatch is on a shifted call's queue, in the two intervals around its end, and explained.
    shifted_queues = {t["queueId"] for t in truth if t["realtimeEnd"] == shift["realtimeEnd"]}
    assert set(mismatched["queue_id"]) == shifted_queues
    assert {t.strftime("%H:%M") for t in mismatched["interval_start"]} == {
        (hour - timedelta(minutes=30)).strftime("%H:%M"), hour.strftime("%H:%M")}
    assert mismatched["likely_cause"].str.startswith("boundary shift").all()
    handle = mismatched[mismatched["metric"] == "tHandle"]
    assert len(handle) == 2 * len(shifted_queues)


def test_batch_503_is_retried_with_backoff_then_pending_and_fetched_next_run(harness_factory: Any) -> None:
    # The burst starts after the collector's 4 aggregate requests (2 polls x conversations + users).
    burst = ErrorBurst(status=503, count=5, retry_after_s=None, path_contains="aggregates/query", after_requests=4)
    h = harness_factory(utc(2026, 10, 5, 18), batch_aggregates_after_s=0, faults=Faults(bursts=(burst,)))
    _collect(h, utc(2026, 10, 5, 13, 29, 59), polls=2, every=1800)  # 13:29:59 and 13:59:59
    assert h.server.request_count("aggregates/query", status=200) == 4
    queues = [q.id for q in h.server.org.directory.queues]
    h.clock.set(utc(2026, 10, 5, 18))
    h.waits.clear()
    first = fetch_batch(h.client, h.store.con, queues, utc(2026, 10, 5, 13), utc(2026, 10, 5, 14), as_of=h.clock())
    assert first.fetched == () and len(first.pending) == 2
    assert h.server.request_count(AGGREGATES, status=503) == 5
    assert h.waits == [1.0, 2.0, 4.0, 8.0]  # backoff between the 5 attempts
    result, _ = reconcile_store(h.store.con, RtBatchSettings(as_of=h.clock()))
    assert set(result.variances["status"]) == {"PENDING"}
    assert result.variances["likely_cause"].str.contains("retried on the next run").all()
    assert result.checkpoint is None

    second = fetch_batch(h.client, h.store.con, queues, utc(2026, 10, 5, 13), utc(2026, 10, 5, 14), as_of=h.clock())
    assert len(second.fetched) == 2 and second.pending == ()
    result, _ = reconcile_store(h.store.con, RtBatchSettings(as_of=h.clock()))
    assert "PENDING" not in set(result.variances["status"])
    assert result.checkpoint == utc(2026, 10, 5, 14)

    asked = h.server.request_count(AGGREGATES)
    third = fetch_batch(h.client, h.store.con, queues, utc(2026, 10, 5, 13), utc(2026, 10, 5, 14), as_of=h.clock())
    assert third.fetched == () and len(third.already_complete) == 2
    assert h.server.request_count(AGGREGATES) == asked  # finished intervals are not asked for again


def test_a_shorter_503_burst_is_ridden_out(harness_factory: Any) -> None:
    burst = ErrorBurst(status=503, count=3, retry_after_s=None, path_contains="aggregates/query")
    h = harness_factory(utc(2026, 10, 5, 18), batch_aggregates_after_s=0, faults=Faults(bursts=(burst,)))
    queues = [q.id for q in h.server.org.directory.queues]
    fetch = fetch_batch(h.client, h.store.con, queues, utc(2026, 10, 5, 13), utc(2026, 10, 5, 14), as_of=h.clock())
    assert len(fetch.fetched) == 2 and fetch.pending == ()
    assert h.server.request_count(AGGREGATES, status=503) == 3


def test_only_intervals_past_the_buffer_and_confirmed_are_fetched(harness_factory: Any) -> None:
    h = harness_factory(utc(2026, 10, 5, 15, 10), batch_aggregates_after_s=0, job_data_lag_s=7200)
    queues = [q.id for q in h.server.org.directory.queues]
    fetch = fetch_batch(h.client, h.store.con, queues, utc(2026, 10, 5, 12), utc(2026, 10, 5, 16),
                        as_of=h.clock(), buffer_minutes=60)
    # buffer: intervals ending by 14:10 (12:00 .. 13:30); availability (now - 2 h = 13:10): up to 12:30.
    assert fetch.complete_until == utc(2026, 10, 5, 13, 10)
    assert [t.strftime("%H:%M") for t in fetch.fetched] == ["12:00", "12:30"]
    assert [t.strftime("%H:%M") for t in fetch.waiting] == ["13:00", "13:30"] and fetch.pending == ()
    assert h.server.request_count("aggregates/query") == 2  # one chunk: conversations + users


class _RefusingTransport:
    """Stands in for the transport after its retries: every data request ends in ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def request_json(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        raise self.error


class _StubClient:
    def __init__(self, error: Exception) -> None:
        self.transport = _RefusingTransport(error)
        self.endpoints = GenesysEndpoints("http://127.0.0.1:9", "http://127.0.0.1:9")

    def data_availability(self) -> datetime:
        return utc(2026, 10, 6)


@pytest.mark.parametrize("error", [
    GenesysDataPendingError("still preparing (HTTP 409 5 times)", status=409),
    GenesysRetriesExhaustedError("timed out 5 times"),
])
def test_409_and_timeouts_leave_the_intervals_pending(error: Exception) -> None:
    client = _StubClient(error)
    with open_store(":memory:") as store:
        fetch = fetch_batch(client, store.con, ["q1"], utc(2026, 10, 5, 10), utc(2026, 10, 5, 11),  # type: ignore[arg-type]
                            as_of=utc(2026, 10, 5, 18))
        states = persist.batch_interval_states(store.con, "PT30M")
    assert fetch.fetched == () and fetch.pending == (utc(2026, 10, 5, 10), utc(2026, 10, 5, 10, 30))
    assert set(states.values()) == {"pending"} and client.transport.calls == 1
