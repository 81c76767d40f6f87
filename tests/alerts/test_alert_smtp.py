"""E-mail delivery against a local SMTP server (aiosmtpd) on loopback, with and without STARTTLS."""

from __future__ import annotations

import json
import logging
import ssl
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from alert_servers import SMTP_PASSWORD, SMTP_USER, Certificate, SmtpServer, WebhookServer, free_port

from recon_core.alerts import (
    ALERT_TYPE_BILLING,
    AlertChannels,
    alert_channels_from_env,
    build_alert,
    deliver_alert,
)

PAYLOAD = build_alert(ALERT_TYPE_BILLING, "warning", [], environment="production", discrepancy_rate_pct=3.5,
                      threshold_pct=2.0, disputed_amount=1234.56, currency="USD", run_id="run-42")


def parsed(envelope_content: bytes | str | None) -> EmailMessage:
    assert isinstance(envelope_content, bytes)
    message = message_from_bytes(envelope_content, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_plain_smtp_relay_gets_the_alert(smtp_plain: SmtpServer) -> None:
    channels = AlertChannels(smtp_host=smtp_plain.host, smtp_port=smtp_plain.port, smtp_starttls=False,
                             smtp_from="recon@example.test", smtp_to=("finance@example.test", "ops@example.test"))
    (result,) = deliver_alert(PAYLOAD, channels, sleep=lambda _: None)
    assert (result.channel, result.ok, result.attempts) == ("email", True, 1)
    (envelope,) = smtp_plain.messages
    assert envelope.mail_from == "recon@example.test"
    assert envelope.rcpt_tos == ["finance@example.test", "ops@example.test"]
    message = parsed(envelope.original_content)
    assert message["Subject"].startswith("[warning] BILLING_RECONCILIATION_DISCREPANCY (production): "
                                         "discrepancy rate 3.5 % > threshold 2 %")
    assert message["To"] == "finance@example.test, ops@example.test"
    assert json.loads(message.get_content()) == PAYLOAD


def test_starttls_with_login_against_a_self_signed_certificate(smtp_starttls: SmtpServer,
                                                               self_signed: Certificate) -> None:
    environ = {"RECON_SMTP_HOST": smtp_starttls.host, "RECON_SMTP_PORT": str(smtp_starttls.port),
               "RECON_SMTP_USERNAME": SMTP_USER, "RECON_SMTP_PASSWORD": SMTP_PASSWORD,
               "RECON_ALERT_EMAIL_FROM": "recon@example.test", "RECON_ALERT_EMAIL_TO": "finance@example.test",
               "RECON_SMTP_CA_FILE": str(self_signed.cert)}
    channels = alert_channels_from_env(environ)
    assert channels.smtp_starttls  # the default
    (result,) = deliver_alert(PAYLOAD, channels, sleep=lambda _: None)
    assert result.ok, result.error
    assert smtp_starttls.logins == [SMTP_USER]
    assert smtp_starttls.tls_sessions == [True]
    assert json.loads(parsed(smtp_starttls.messages[0].original_content).get_content()) == PAYLOAD


def test_an_explicit_ssl_context_is_used(smtp_starttls: SmtpServer, self_signed: Certificate) -> None:
    context = ssl.create_default_context(cafile=str(self_signed.cert))
    channels = AlertChannels(smtp_host=smtp_starttls.host, smtp_port=smtp_starttls.port, smtp_username=SMTP_USER,
                             smtp_password=SMTP_PASSWORD, smtp_from="recon@example.test",
                             smtp_to=("finance@example.test",), smtp_ssl_context=context)
    (result,) = deliver_alert(PAYLOAD, channels, sleep=lambda _: None)
    assert result.ok, result.error
    assert len(smtp_starttls.messages) == 1 and smtp_starttls.tls_sessions == [True]


def test_an_untrusted_certificate_is_refused_without_retry(smtp_starttls: SmtpServer,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    channels = AlertChannels(smtp_host=smtp_starttls.host, smtp_port=smtp_starttls.port, smtp_username=SMTP_USER,
                             smtp_password=SMTP_PASSWORD, smtp_from="recon@example.test",
                             smtp_to=("finance@example.test",))  # default verification: system CAs only
    with caplog.at_level(logging.WARNING, logger="recon_core.alerts"):
        (result,) = deliver_alert(PAYLOAD, channels, sleep=lambda _: None)
    assert (result.ok, result.attempts) == (False, 1)
    assert "certificate is not trusted" in (result.error or "") and "RECON_SMTP_CA_FILE" in (result.error or "")
    assert smtp_starttls.messages == [] and smtp_starttls.logins == []
    assert all(SMTP_PASSWORD not in record.getMessage() for record in caplog.records)


def test_a_wrong_password_fails_once_and_is_never_shown(smtp_starttls: SmtpServer, self_signed: Certificate,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    channels = AlertChannels(smtp_host=smtp_starttls.host, smtp_port=smtp_starttls.port, smtp_username=SMTP_USER,
                             smtp_password="wrong-" + SMTP_PASSWORD, smtp_from="recon@example.test",
                             smtp_to=("finance@example.test",), smtp_ca_file=str(self_signed.cert))
    with caplog.at_level(logging.WARNING, logger="recon_core.alerts"):
        (result,) = deliver_alert(PAYLOAD, channels, sleep=lambda _: None)
    assert (result.ok, result.attempts) == (False, 1)
    assert "refused the login of alerts@example.test" in (result.error or "")
    assert smtp_starttls.messages == []
    assert all("wrong-" not in record.getMessage() for record in caplog.records)


def test_plain_text_is_never_used_when_starttls_is_required_by_the_client(smtp_plain: SmtpServer) -> None:
    channels = AlertChannels(smtp_host=smtp_plain.host, smtp_port=smtp_plain.port, smtp_from="recon@example.test",
                             smtp_to=("finance@example.test",))  # starttls on by default; server offers none
    (result,) = deliver_alert(PAYLOAD, channels, sleep=lambda _: None)
    assert (result.ok, result.attempts) == (False, 1) and "does not offer STARTTLS" in (result.error or "")
    assert smtp_plain.messages == []


def test_smtp_server_down_is_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    channels = AlertChannels(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="recon@example.test",
                             smtp_to=("finance@example.test",), backoff_s=0.25, timeout_s=2)
    sleeps: list[float] = []
    with caplog.at_level(logging.WARNING, logger="recon_core.alerts"):
        (result,) = deliver_alert(PAYLOAD, channels, sleep=sleeps.append)
    assert (result.channel, result.ok, result.attempts) == ("email", False, 3)
    assert "ConnectionRefusedError" in (result.error or "")
    assert sleeps == [0.25, 0.5]
    assert any("NOT delivered via email" in record.getMessage() for record in caplog.records)


def test_one_channel_failing_does_not_stop_the_other(webhook: WebhookServer, smtp_plain: SmtpServer) -> None:
    webhook.statuses[:] = [500, 500, 500]
    channels = AlertChannels(webhook_url=webhook.url, smtp_host=smtp_plain.host, smtp_port=smtp_plain.port,
                             smtp_starttls=False, smtp_from="recon@example.test", smtp_to=("finance@example.test",))
    webhook_result, email_result = deliver_alert(PAYLOAD, channels, sleep=lambda _: None)
    assert (webhook_result.channel, webhook_result.ok) == ("webhook", False)
    assert (email_result.channel, email_result.ok) == ("email", True)
    assert len(smtp_plain.messages) == 1
