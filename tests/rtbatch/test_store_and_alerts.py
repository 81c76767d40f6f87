"""Re-running is idempotent: no duplicate result rows, the checkpoint only moves forward, no alert twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from loopback_webhook import WebhookRecorder
from rt_helpers import at, tidy

from recon_core.alerts import alert_channels_from_env
from recon_core.rtbatch import persist
from recon_core.rtbatch.alerting import send_rt_batch_alerts
from recon_core.rtbatch.engine import RtBatchSettings
from recon_core.rtbatch.metrics import MetricPolicy, StatusMap, Tolerance
from recon_core.rtbatch.run import reconcile_store
from recon_core.store import Store, open_store

RT = [("10:00", "nOffered", 10), ("10:00", "nAbandoned", 1), ("10:30", "nOffered", 7), ("11:00", "nOffered", 4)]
BATCH = [("10:00", "nOffered", 20), ("10:00", "nAbandoned", 1), ("10:30", "nOffered", 7), ("11:00", "nOffered", 4)]


@pytest.fixture
def store() -> Iterator[Store]:
    with open_store(":memory:") as opened:
        snapshots = tidy(RT)
        snapshots.insert(0, "captured_at", snapshots["interval_end"] - timedelta(minutes=1))
        persist.save_snapshots(opened.con, snapshots, source="test")
        persist.save_batch_aggregates(opened.con, tidy(BATCH), source="test")
        yield opened


def _count(store: Store, table: str) -> int:
    row = store.con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def test_re_running_leaves_the_same_rows_and_moves_the_checkpoint_forward(store: Store) -> None:
    early = RtBatchSettings(as_of=at("12:15"))  # 11:00-11:30 is still inside the buffer
    first, run1 = reconcile_store(store.con, early)
    assert _count(store, "rt_batch_results") == len(first.variances) == 4
    assert persist.load_checkpoint(store.con, "PT30M") == at("11:00")
    assert store.con.execute("SELECT status FROM rt_batch_results WHERE interval_start = '2026-10-05 11:00:00'"
                             ).fetchone() == ("PENDING",)
    later = RtBatchSettings(as_of=at("13:00"))
    second, run2 = reconcile_store(store.con, later)
    third, _ = reconcile_store(store.con, later)
    assert _count(store, "rt_batch_results") == 4  # upserted, not appended
    assert store.con.execute("SELECT status FROM rt_batch_results WHERE interval_start = '2026-10-05 11:00:00'"
                             ).fetchone() == ("OK",)
    assert persist.load_checkpoint(store.con, "PT30M") == at("11:30")
    assert run1 != run2
    # An earlier as-of never moves the checkpoint back.
    reconcile_store(store.con, early)
    assert persist.load_checkpoint(store.con, "PT30M") == at("11:30")
    assert second.variances.equals(third.variances)


def test_the_same_alert_is_never_sent_twice(store: Store, webhook: WebhookRecorder) -> None:
    channels = alert_channels_from_env({"RECON_ALERT_WEBHOOK_URL": webhook.url})
    settings = RtBatchSettings(as_of=at("13:00"))
    result, _ = reconcile_store(store.con, settings)
    assert len(result.alerts) == 1
    items = send_rt_batch_alerts(store.con, result, channels)
    assert [i["state"] for i in items] == ["sent"] and len(webhook.received) == 1
    received = webhook.received[0]
    assert received["alert_type"] == "DATA_RECONCILIATION_FAILURE"
    assert received["metrics"][0]["metric_name"] == "nOffered" and received["metrics"][0]["batch_value"] == 20
    # A later run (later timestamp) finds the same mismatch: not sent again.
    again, _ = reconcile_store(store.con, RtBatchSettings(as_of=at("14:00")))
    items = send_rt_batch_alerts(store.con, again, channels)
    assert [i["state"] for i in items] == ["already_sent"] and len(webhook.received) == 1
    assert _count(store, "alerts_sent") == 1


def test_a_failed_delivery_is_recorded_and_retried_next_run(store: Store, webhook: WebhookRecorder) -> None:
    webhook.status = 400  # a permanent refusal: no retries within the run
    channels = alert_channels_from_env({"RECON_ALERT_WEBHOOK_URL": webhook.url})
    result, _ = reconcile_store(store.con, RtBatchSettings(as_of=at("13:00")))
    items = send_rt_batch_alerts(store.con, result, channels, sleep=lambda s: None)
    assert [i["state"] for i in items] == ["failed"]
    assert _count(store, "rt_batch_results") == 4  # the result is kept whatever the delivery did
    webhook.status = 200
    items = send_rt_batch_alerts(store.con, result, channels, sleep=lambda s: None)
    assert [i["state"] for i in items] == ["sent"]


def test_without_a_channel_alerts_are_only_listed(store: Store) -> None:
    result, _ = reconcile_store(store.con, RtBatchSettings(as_of=at("13:00")))
    items = send_rt_batch_alerts(store.con, result, alert_channels_from_env({}))
    assert [i["state"] for i in items] == ["would_send"] and items[0]["payload"] == result.alerts[0]


def test_policy_and_status_map_are_kept_in_the_store(store: Store) -> None:
    policy = MetricPolicy().with_tolerance("AHT", Tolerance(0.5, 7.5))
    status_map = StatusMap().with_entry("Project Work", "BUSY")
    persist.save_policy_to_store(store.con, policy)
    persist.save_status_map_to_store(store.con, status_map)
    assert persist.load_policy_from_store(store.con) == policy
    assert persist.load_status_map_from_store(store.con) == status_map
    persist.save_policy_to_store(store.con, MetricPolicy())
    assert persist.load_policy_from_store(store.con) == MetricPolicy()


def test_migration_4_creates_the_real_time_vs_batch_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "store.duckdb"
    with open_store(path) as opened:
        assert opened.schema_version >= 4
        tables = {r[0] for r in opened.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        versions = [r[0] for r in opened.con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
    assert {"rt_snapshots", "rt_batch_aggregates", "rt_batch_intervals", "rt_batch_results", "rt_batch_checkpoint",
            "rt_batch_policy", "rt_batch_status_map"} <= tables
    assert 4 in versions
