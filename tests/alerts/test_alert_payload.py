"""Alert payloads, their dedup key, and the alert settings read from the environment and secrets."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recon_core.alerts import (
    ALERT_TYPE_BILLING,
    ALERT_TYPE_RT_BATCH,
    AlertChannels,
    alert_channels_from_env,
    alert_key,
    alert_summary,
    build_alert,
)
from recon_core.errors import AlertConfigError

AT = datetime(2026, 11, 2, 11, 5, 7, 123456, tzinfo=UTC)
METRIC = {"metric_name": "nOffered", "rt_value": 120, "batch_value": 110, "variance_percent": 9.09,
          "threshold_percent": 0.1, "interval_start": "2026-11-02T10:00:00.000Z",
          "interval_end": "2026-11-02T10:30:00.000Z", "queue_id": "q-sales", "media_type": "voice"}


def test_rt_batch_payload_has_the_documented_shape() -> None:
    payload = build_alert(ALERT_TYPE_RT_BATCH, "critical", [METRIC], environment="production", timestamp=AT,
                          interval_range="2026-11-02T10:00:00.000Z/2026-11-02T10:30:00.000Z")
    assert payload == {
        "alert_type": "DATA_RECONCILIATION_FAILURE", "severity": "critical",
        "timestamp": "2026-11-02T11:05:07.123Z", "metrics": [METRIC], "environment": "production",
        "interval_range": "2026-11-02T10:00:00.000Z/2026-11-02T10:30:00.000Z",
    }
    assert json.loads(json.dumps(payload)) == payload


def test_billing_payload_values_become_plain_json() -> None:
    payload = build_alert(ALERT_TYPE_BILLING, "warning", [], environment="staging",
                          timestamp=datetime(2026, 11, 2, 12, 5, tzinfo=timezone(timedelta(hours=1))),
                          discrepancy_rate_pct=Decimal("3.5"), threshold_pct=2.0,
                          disputed_amount=Decimal("1234.56"), currency="USD", run_id="run-42",
                          rows=np.int64(400), nan_share=float("nan"))
    assert payload["timestamp"] == "2026-11-02T11:05:00.000Z"  # converted to UTC
    assert payload["discrepancy_rate_pct"] == 3.5 and payload["disputed_amount"] == 1234.56
    assert payload["rows"] == 400 and isinstance(payload["rows"], int)
    assert payload["nan_share"] is None
    json.dumps(payload, allow_nan=False)


def test_naive_timestamp_is_taken_as_utc_and_default_is_now() -> None:
    assert build_alert(ALERT_TYPE_RT_BATCH, "info", [], environment="e",
                       timestamp=datetime(2026, 1, 1))["timestamp"] == "2026-01-01T00:00:00.000Z"
    stamp = build_alert(ALERT_TYPE_RT_BATCH, "info", [], environment="e")["timestamp"]
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 60


@pytest.mark.parametrize("severity, environment", [("fatal", "prod"), ("critical", "")])
def test_bad_severity_or_environment_is_refused(severity: str, environment: str) -> None:
    with pytest.raises(ValueError):
        build_alert(ALERT_TYPE_RT_BATCH, severity, [], environment=environment)


def test_alert_key_ignores_timestamp_and_key_order_but_not_findings() -> None:
    first = build_alert(ALERT_TYPE_RT_BATCH, "critical", [METRIC], environment="production", timestamp=AT)
    later = build_alert(ALERT_TYPE_RT_BATCH, "critical", [dict(reversed(list(METRIC.items())))],
                        environment="production", timestamp=AT + timedelta(hours=5))
    changed = build_alert(ALERT_TYPE_RT_BATCH, "critical", [{**METRIC, "rt_value": 121}],
                          environment="production", timestamp=AT)
    assert alert_key(first) == alert_key(later)
    assert alert_key(first) != alert_key(changed)
    assert len(alert_key(first)) == 64 and int(alert_key(first), 16) >= 0
    # Stable across processes and versions: a plain SHA-256 of sorted compact JSON.
    assert alert_key({"timestamp": "t", "severity": "info", "alert_type": "X"}) == hashlib.sha256(
        b'{"alert_type":"X","severity":"info"}').hexdigest()


def test_summary_names_what_is_off_and_by_how_much() -> None:
    metrics = [{**METRIC, "metric_name": f"m{i}"} for i in range(5)]
    text = alert_summary(build_alert(ALERT_TYPE_RT_BATCH, "critical", metrics, environment="production"))
    assert text.startswith("[critical] DATA_RECONCILIATION_FAILURE (production): 5 metric(s) out of tolerance")
    assert "m0 q-sales 2026-11-02T10:00:00.000Z: rt 120 vs batch 110 (9.09 % > 0.1 %)" in text
    assert "and 2 more" in text and "m3" not in text
    billing = alert_summary(build_alert(ALERT_TYPE_BILLING, "warning", [], environment="prod",
                                        discrepancy_rate_pct=3.5, threshold_pct=2.0, disputed_amount=1234.56,
                                        currency="USD", run_id="run-42"))
    assert billing == ("[warning] BILLING_RECONCILIATION_DISCREPANCY (prod): discrepancy rate 3.5 % > threshold 2 %, "
                       "disputed 1,234.56 USD, run run-42")


FULL_ENV = {
    "RECON_ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/abcdef",
    "RECON_SMTP_HOST": "smtp.example.com", "RECON_SMTP_PORT": "2525", "RECON_SMTP_USERNAME": "bot",
    "RECON_SMTP_PASSWORD": "pw-123", "RECON_ALERT_EMAIL_FROM": "recon@example.com",
    "RECON_ALERT_EMAIL_TO": "a@example.com, b@example.com,", "RECON_SMTP_STARTTLS": "false",
}


def test_settings_from_environment() -> None:
    channels = alert_channels_from_env(FULL_ENV)
    assert channels == AlertChannels(
        webhook_url="https://hooks.slack.com/services/T1/B2/abcdef", smtp_host="smtp.example.com", smtp_port=2525,
        smtp_username="bot", smtp_password="pw-123", smtp_from="recon@example.com",
        smtp_to=("a@example.com", "b@example.com"), smtp_starttls=False)
    assert channels.webhook_configured and channels.email_configured


def test_nothing_configured_is_not_an_error() -> None:
    channels = alert_channels_from_env({})
    assert not channels.any_configured and channels.smtp_starttls and channels.smtp_port == 587


def test_secrets_table_fills_in_and_environment_wins() -> None:
    secrets: dict[str, Any] = {"recon_smtp_host": "smtp.secrets.example", "recon_smtp_port": 465,
                               "recon_alert_email_from": "x@example.com",
                               "recon_alert_email_to": ["c@example.com", "d@example.com"],
                               "recon_smtp_starttls": True, "recon_alert_webhook_url": "https://from.secrets/x"}
    channels = alert_channels_from_env({"RECON_SMTP_HOST": "smtp.env.example", "RECON_ALERT_WEBHOOK_URL": " "},
                                       secrets)
    assert channels.smtp_host == "smtp.env.example"  # environment wins
    assert channels.smtp_port == 465 and channels.smtp_to == ("c@example.com", "d@example.com")
    assert channels.webhook_url == "https://from.secrets/x"  # a blank variable does not hide the secret


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(AlertConfigError) as error:
        alert_channels_from_env({"RECON_ALERT_WEBHOOK_URL": "hooks.slack.com/x", "RECON_SMTP_HOST": "smtp",
                                 "RECON_SMTP_PORT": "smtp", "RECON_SMTP_PASSWORD": "pw",
                                 "RECON_SMTP_STARTTLS": "maybe", "RECON_ALERT_EMAIL_FROM": "nobody",
                                 "RECON_SMTP_CA_FILE": str(tmp_path / "missing.pem")})
    message = str(error.value)
    for expected in ("RECON_ALERT_WEBHOOK_URL must be an http(s) URL", "RECON_SMTP_PORT must be a port number",
                     "RECON_SMTP_STARTTLS must be true or false", "'nobody' is not an e-mail address",
                     "RECON_ALERT_EMAIL_TO is empty", "RECON_SMTP_USERNAME is empty", "missing.pem, which is not"):
        assert expected in message
    assert "pw" not in message.replace("RECON_SMTP_PASSWORD", "")


def test_secrets_are_hidden_in_repr_and_to_dict() -> None:
    channels = alert_channels_from_env(FULL_ENV)
    shown = repr(channels) + json.dumps(channels.to_dict())
    assert "pw-123" not in shown and "abcdef" not in shown and "T1/B2" not in shown
    assert channels.to_dict()["webhook_url"] == "https://hooks.slack.com/…"
    assert channels.to_dict()["smtp_password_set"] is True
    assert channels.to_dict()["smtp_to"] == ["a@example.com", "b@example.com"]
