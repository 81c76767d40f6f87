"""The sandbox's batch aggregates (``batch_aggregates_after_s``): no real-time disagreements, late data refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from recon_core.sandbox import Disagreements, LateBatch, ManualClock, OrgSpec, SandboxConfig, run_sandbox
from recon_core.sandbox.org import SandboxError

ORG = OrgSpec(seed=11, start=date(2026, 10, 5), end=date(2026, 10, 7), conversations_per_day=120)
AGGREGATES = "/api/v2/analytics/conversations/aggregates/query"
DAY1 = "2026-10-05T00:00:00.000Z/2026-10-06T00:00:00.000Z"


def _token(server) -> str:  # type: ignore[no-untyped-def]
    answer = requests.post(server.base_url + "/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(server.config.client_id, server.config.client_secret), timeout=10)
    return str(answer.json()["access_token"])


def _offered(server, body: dict) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    answer = requests.post(server.base_url + AGGREGATES, json=body, timeout=10,
                           headers={"Authorization": f"Bearer {_token(server)}"})
    if answer.status_code != 200:
        return answer.status_code, 0
    return 200, sum(m["stats"]["count"] for r in answer.json().get("results", []) for d in r["data"]
                    for m in d["metrics"] if m["metric"] == "nOffered")


def test_finished_intervals_come_from_the_batch_source() -> None:
    dis = Disagreements(realtime_missing_per_day=3)
    body = {"interval": DAY1, "metrics": ["nOffered"]}
    clock = ManualClock(datetime(2026, 10, 9, tzinfo=UTC))
    with run_sandbox(SandboxConfig(org=ORG, clock=clock, disagreements=dis)) as realtime_only:
        _, realtime = _offered(realtime_only, body)
    with run_sandbox(SandboxConfig(org=ORG, clock=clock, disagreements=dis, batch_aggregates_after_s=3600)) as both:
        _, batch = _offered(both, body)
        clock.set(datetime(2026, 10, 6, 0, 30, tzinfo=UTC))  # the day ended only 30 minutes ago: real time
        _, still_realtime = _offered(both, body)
    assert batch > realtime and still_realtime <= realtime


def test_late_batch_data_answers_503_until_it_is_ready() -> None:
    start = datetime(2026, 10, 5, 12, tzinfo=UTC)
    late = LateBatch(start, start + timedelta(hours=1), until=start + timedelta(hours=6), mode="503")
    clock = ManualClock(start + timedelta(hours=3))
    config = SandboxConfig(org=ORG, clock=clock, batch_aggregates_after_s=0,
                           disagreements=Disagreements(late_batches=(late,)))
    body = {"interval": "2026-10-05T12:00:00.000Z/2026-10-05T12:30:00.000Z", "metrics": ["nOffered"]}
    with run_sandbox(config) as server:
        assert _offered(server, body)[0] == 503
        clock.set(start + timedelta(hours=6))
        assert _offered(server, body)[0] == 200


def test_a_negative_delay_is_refused() -> None:
    with pytest.raises(SandboxError, match="batch_aggregates_after_s"):
        run_sandbox(SandboxConfig(org=ORG, batch_aggregates_after_s=-1)).__enter__()
