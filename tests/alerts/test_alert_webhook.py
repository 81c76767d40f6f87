"""Webhook delivery against a local HTTP server on loopback: payload, retries, failures that never raise."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alert_servers import WebhookServer, free_port

from recon_core.alerts import ALERT_TYPE_RT_BATCH, AlertChannels, alert_summary, build_alert, deliver_alert

PAYLOAD = build_alert(ALERT_TYPE_RT_BATCH, "critical", [
    {"metric_name": "tHandle", "rt_value": 312.5, "batch_value": 290.0, "variance_percent": 7.76,
     "threshold_percent": 5.0, "interval_start": "2026-11-02T10:00:00.000Z", "queue_id": "q-support",
     "media_type": "voice"},
], environment="production", timestamp=datetime(2026, 11, 2, 11, 0, tzinfo=UTC), interval_count=1)


def test_webhook_receives_the_payload_exactly_plus_a_summary(webhook: WebhookServer) -> None:
    sleeps: list[float] = []
    results = deliver_alert(PAYLOAD, AlertChannels(webhook_url=webhook.url), sleep=sleeps.append)
    assert [r.to_dict() for r in results] == [{"channel": "webhook", "ok": True, "attempts": 1, "error": None}]
    assert len(webhook.received) == 1
    body = webhook.received[0]
    assert {k: v for k, v in body.items() if k != "text"} == PAYLOAD
    assert body["text"] == alert_summary(PAYLOAD)
    assert body["text"].startswith("[critical] DATA_RECONCILIATION_FAILURE (production): 1 metric(s)")
    assert webhook.paths == ["/services/T000/B000/XXXXSECRETXXXX"]
    assert sleeps == []


def test_two_server_errors_then_success_is_ok_after_three_attempts(webhook: WebhookServer) -> None:
    webhook.statuses[:] = [500, 500, 200]
    sleeps: list[float] = []
    (result,) = deliver_alert(PAYLOAD, AlertChannels(webhook_url=webhook.url, backoff_s=0.5), sleep=sleeps.append)
    assert (result.ok, result.attempts, result.error) == (True, 3, None)
    assert len(webhook.received) == 3 and all(body["alert_type"] == ALERT_TYPE_RT_BATCH for body in webhook.received)
    assert sleeps == [0.5, 1.0]  # exponential backoff between the attempts


def test_server_errors_on_every_attempt_give_up_with_the_status(webhook: WebhookServer,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    webhook.statuses[:] = [503, 503, 503, 503]
    with caplog.at_level(logging.WARNING, logger="recon_core.alerts"):
        (result,) = deliver_alert(PAYLOAD, AlertChannels(webhook_url=webhook.url), sleep=lambda _: None)
    assert (result.ok, result.attempts) == (False, 3)
    assert result.error is not None and "HTTP 503" in result.error
    assert len(webhook.received) == 3


def test_a_client_error_is_not_retried(webhook: WebhookServer) -> None:
    webhook.statuses[:] = [404]
    (result,) = deliver_alert(PAYLOAD, AlertChannels(webhook_url=webhook.url), sleep=lambda _: None)
    assert (result.ok, result.attempts) == (False, 1) and "HTTP 404" in (result.error or "")
    assert len(webhook.received) == 1


def test_server_down_returns_failure_logs_a_warning_and_never_shows_the_secret_path(
        caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXSECRETXXXX"  # nothing listens there
    sleeps: list[float] = []
    with caplog.at_level(logging.WARNING, logger="recon_core.alerts"):
        results = deliver_alert(PAYLOAD, AlertChannels(webhook_url=url, timeout_s=2), sleep=sleeps.append)
    (result,) = results
    assert (result.channel, result.ok, result.attempts) == ("webhook", False, 3)
    assert result.error is not None and "cannot reach http://127.0.0.1:" in result.error
    assert sleeps == [1.0, 2.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("NOT delivered via webhook after 3 attempt(s)" in w for w in warnings)
    assert all("XXXXSECRETXXXX" not in w for w in warnings) and "XXXXSECRETXXXX" not in result.error


def test_nothing_configured_sends_nothing() -> None:
    assert deliver_alert(PAYLOAD, AlertChannels()) == ()


def test_a_hand_made_payload_with_decimals_and_datetimes_is_still_delivered(webhook: WebhookServer) -> None:
    payload = {**PAYLOAD, "disputed_amount": Decimal("12.50"), "as_of": datetime(2026, 11, 2, 12, 0, tzinfo=UTC)}
    (result,) = deliver_alert(payload, AlertChannels(webhook_url=webhook.url), sleep=lambda _: None)
    assert result.ok
    assert webhook.received[0]["disputed_amount"] == 12.5
    assert webhook.received[0]["as_of"] == "2026-11-02T12:00:00.000Z"
