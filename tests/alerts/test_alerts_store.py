"""Alerts recorded in the store: a re-run never sends the same alert twice, a failed one is tried again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alert_servers import WebhookServer

from recon_core.alerts import (
    ALERT_TYPE_RT_BATCH,
    AlertChannels,
    DeliveryResult,
    alert_already_sent,
    alert_key,
    build_alert,
    deliver_alert_once,
    record_alert,
)
from recon_core.sql import execute
from recon_core.store import open_store

AT = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
METRICS = [{"metric_name": "nOffered", "rt_value": 120, "batch_value": 110, "variance_percent": 9.09,
            "threshold_percent": 0.1, "interval_start": "2026-11-02T10:00:00.000Z", "queue_id": "q-sales"}]


def alert(at: datetime = AT) -> dict[str, object]:
    return build_alert(ALERT_TYPE_RT_BATCH, "critical", METRICS, environment="production", timestamp=at)


def test_record_and_look_up(tmp_path: Path) -> None:
    payload = alert()
    with open_store(tmp_path / "recon.duckdb") as store:
        assert not alert_already_sent(store.con, alert_key(payload))
        record_alert(store.con, payload, (DeliveryResult("webhook", True, 2),), source="rt-batch",
                     source_ref="2026-11-02T10:00:00.000Z/2026-11-02T10:30:00.000Z")
        assert alert_already_sent(store.con, alert_key(payload))
        row = execute(store.con, "SELECT alert_type, severity, source, source_ref, payload_json, delivered, "
                                 "deliveries_json FROM alerts_sent").fetchall()
    assert len(row) == 1
    alert_type, severity, source, source_ref, payload_json, delivered, deliveries_json = row[0]
    assert (alert_type, severity, source, delivered) == ("DATA_RECONCILIATION_FAILURE", "critical", "rt-batch", True)
    assert source_ref == "2026-11-02T10:00:00.000Z/2026-11-02T10:30:00.000Z"
    assert json.loads(payload_json) == payload
    assert json.loads(deliveries_json) == [{"channel": "webhook", "ok": True, "attempts": 2, "error": None}]


def test_a_rerun_with_a_new_timestamp_does_not_send_again(tmp_path: Path, webhook: WebhookServer) -> None:
    channels = AlertChannels(webhook_url=webhook.url)
    path = tmp_path / "recon.duckdb"
    with open_store(path) as store:
        first = deliver_alert_once(store.con, alert(), channels, source="rt-batch", source_ref="r1",
                                   sleep=lambda _: None)
    assert not first.already_sent and first.delivered and len(webhook.received) == 1
    with open_store(path) as store:  # the next run, an hour later, finds the same mismatch
        second = deliver_alert_once(store.con, alert(AT + timedelta(hours=1)), channels, source="rt-batch",
                                    source_ref="r2", sleep=lambda _: None)
        assert execute(store.con, "SELECT count(*) FROM alerts_sent").fetchone() == (1,)
    assert second.already_sent and second.results == () and second.key == first.key
    assert len(webhook.received) == 1
    assert second.to_dict()["already_sent"] is True


def test_an_undelivered_alert_is_tried_again_next_run(tmp_path: Path, webhook: WebhookServer) -> None:
    webhook.statuses[:] = [500, 500, 500]
    channels = AlertChannels(webhook_url=webhook.url)
    with open_store(tmp_path / "recon.duckdb") as store:
        failed = deliver_alert_once(store.con, alert(), channels, source="rt-batch", source_ref="r1",
                                    sleep=lambda _: None)
        assert not failed.delivered and not alert_already_sent(store.con, failed.key)
        retried = deliver_alert_once(store.con, alert(), channels, source="rt-batch", source_ref="r2",
                                     sleep=lambda _: None)
        assert retried.delivered and alert_already_sent(store.con, retried.key)
        rows = execute(store.con, "SELECT source_ref, delivered, deliveries_json FROM alerts_sent").fetchall()
    assert len(rows) == 1 and rows[0][:2] == ("r2", True)
    assert json.loads(rows[0][2])[0]["attempts"] == 1
    assert len(webhook.received) == 4


def test_with_no_channel_the_alert_is_recorded_but_not_marked_sent(tmp_path: Path) -> None:
    with open_store(tmp_path / "recon.duckdb") as store:
        dispatch = deliver_alert_once(store.con, alert(), AlertChannels(), source="billing", source_ref="run-1")
        assert dispatch.results == () and not dispatch.delivered
        assert not alert_already_sent(store.con, dispatch.key)
        assert execute(store.con, "SELECT source, delivered FROM alerts_sent").fetchall() == [("billing", False)]


def test_recording_inside_a_rolled_back_transaction_leaves_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path / "recon.duckdb") as store:
        try:
            with store.transaction() as con:
                record_alert(con, alert(), (DeliveryResult("email", True, 1),), source="billing", source_ref="x")
                raise RuntimeError("the run failed after the alert was recorded")
        except RuntimeError:
            pass
        assert not alert_already_sent(store.con, alert_key(alert()))
