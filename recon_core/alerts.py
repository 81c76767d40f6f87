"""Alert delivery shared by real-time vs batch and billing reconciliation.

An alert is a plain JSON-ready dict (:func:`build_alert`) sent to a Slack incoming webhook and/or
by e-mail over SMTP (:func:`deliver_alert`). Where it goes comes from environment variables or the
app's secrets (:func:`alert_channels_from_env`), never from code. Delivery never raises: each
channel is retried with backoff, failures are logged and returned as :class:`DeliveryResult`, so a
broken webhook can never abort or lose a reconciliation result.

"Never send the same alert twice" across runs: :func:`alert_key` is a stable hash of the payload
without its timestamp; :func:`record_alert` stores what was sent in the store's ``alerts_sent``
table (migration 2) and :func:`alert_already_sent` checks it. :func:`deliver_alert_once` combines
the three. The caller decides the transaction.

Secrets (the SMTP password and the webhook URL, whose path *is* the Slack credential) never appear
in ``repr``, ``to_dict``, log lines or error messages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import duckdb
import requests

from recon_core.errors import AlertConfigError
from recon_core.sql import execute

logger = logging.getLogger(__name__)

ALERT_TYPE_RT_BATCH = "DATA_RECONCILIATION_FAILURE"
ALERT_TYPE_BILLING = "BILLING_RECONCILIATION_DISCREPANCY"

SEVERITIES = ("info", "warning", "critical")

WEBHOOK_URL_ENV = "RECON_ALERT_WEBHOOK_URL"
SMTP_HOST_ENV = "RECON_SMTP_HOST"
SMTP_PORT_ENV = "RECON_SMTP_PORT"
SMTP_USERNAME_ENV = "RECON_SMTP_USERNAME"
SMTP_PASSWORD_ENV = "RECON_SMTP_PASSWORD"
EMAIL_FROM_ENV = "RECON_ALERT_EMAIL_FROM"
EMAIL_TO_ENV = "RECON_ALERT_EMAIL_TO"
SMTP_STARTTLS_ENV = "RECON_SMTP_STARTTLS"
SMTP_CA_FILE_ENV = "RECON_SMTP_CA_FILE"

ALERT_ENV_VARS = (WEBHOOK_URL_ENV, SMTP_HOST_ENV, SMTP_PORT_ENV, SMTP_USERNAME_ENV, SMTP_PASSWORD_ENV,
                  EMAIL_FROM_ENV, EMAIL_TO_ENV, SMTP_STARTTLS_ENV, SMTP_CA_FILE_ENV)

CHANNEL_WEBHOOK = "webhook"
CHANNEL_EMAIL = "email"

DEFAULT_SMTP_PORT = 587
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# How many metrics the one-line summary names before "... and N more".
_SUMMARY_METRICS = 3


@dataclass(frozen=True)
class AlertChannels:
    """Where alerts go: a Slack incoming webhook and/or SMTP e-mail, and how patiently.

    A channel is configured when its essentials are set (``webhook_url``; ``smtp_host`` and
    ``smtp_to``). ``smtp_starttls`` upgrades the connection before any login or message and
    never falls back to plain text. The server certificate is verified against the system's
    trust store, or ``smtp_ca_file`` (a PEM bundle, e.g. an internal CA), or ``smtp_ssl_context``
    when given (code only; not from settings). Attempt ``n`` waits ``backoff_s * 2 ** (n - 1)``
    seconds before the next one.
    """

    webhook_url: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = DEFAULT_SMTP_PORT
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    smtp_to: tuple[str, ...] = ()
    smtp_starttls: bool = True
    max_attempts: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    smtp_ca_file: str | None = None
    smtp_ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @property
    def webhook_configured(self) -> bool:
        return bool(self.webhook_url)

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_host and self.smtp_to)

    @property
    def any_configured(self) -> bool:
        return self.webhook_configured or self.email_configured

    def to_dict(self) -> dict[str, Any]:
        """Settings fit to show or save: the password is never included, the webhook only by host."""
        return {
            "webhook_url": redact_url(self.webhook_url) if self.webhook_url else None,
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "smtp_username": self.smtp_username,
            "smtp_password_set": bool(self.smtp_password),
            "smtp_from": self.smtp_from,
            "smtp_to": list(self.smtp_to),
            "smtp_starttls": self.smtp_starttls,
            "smtp_ca_file": self.smtp_ca_file,
            "max_attempts": self.max_attempts,
            "backoff_s": self.backoff_s,
            "timeout_s": self.timeout_s,
        }


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: a Slack webhook's path is its credential, so it is never shown."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return "…"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def _setting(env: Mapping[str, str], secrets: Mapping[str, Any], name: str) -> str:
    """The environment's value when set and non-empty, else the secrets table's (key in lower case)."""
    value = env.get(name, "")
    if isinstance(value, str) and value.strip():
        return value.strip()
    secret = secrets.get(name.lower())
    if secret is None:
        return ""
    if isinstance(secret, list | tuple):
        return ",".join(str(item).strip() for item in secret)
    if isinstance(secret, bool):
        return "true" if secret else "false"
    return str(secret).strip()


def alert_channels_from_env(environ: Mapping[str, str] | None = None,
                            secrets: Mapping[str, Any] | None = None) -> AlertChannels:
    """Read the alert channels from environment variables and/or the app's ``[alerts]`` secrets.

    Variables: ``RECON_ALERT_WEBHOOK_URL``, ``RECON_SMTP_HOST``, ``RECON_SMTP_PORT`` (default 587),
    ``RECON_SMTP_USERNAME``, ``RECON_SMTP_PASSWORD``, ``RECON_ALERT_EMAIL_FROM``,
    ``RECON_ALERT_EMAIL_TO`` (comma-separated), ``RECON_SMTP_STARTTLS`` (default true) and
    ``RECON_SMTP_CA_FILE``. ``secrets`` is the ``[alerts]`` table of ``.streamlit/secrets.toml``
    with the same names in lower case (``recon_alert_email_to`` may also be a list); a non-empty
    environment variable wins. Nothing set gives channels with nothing configured (alerts are then
    only recorded, not sent).

    Raises:
        AlertConfigError: listing every problem at once (bad port, webhook not http(s), SMTP host
            without recipients or sender, recipients without host, password without user name, ...).
    """
    env = os.environ if environ is None else environ
    table: Mapping[str, Any] = secrets or {}

    def get(name: str) -> str:
        return _setting(env, table, name)

    problems: list[str] = []
    webhook = get(WEBHOOK_URL_ENV)
    if webhook:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(f"{WEBHOOK_URL_ENV} must be an http(s) URL such as https://hooks.slack.com/services/…")
    host = get(SMTP_HOST_ENV)
    port_text = get(SMTP_PORT_ENV)
    port = DEFAULT_SMTP_PORT
    if port_text:
        try:
            port = int(port_text)
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            problems.append(f"{SMTP_PORT_ENV} must be a port number 1-65535 (got {port_text!r})")
    username = get(SMTP_USERNAME_ENV)
    password = get(SMTP_PASSWORD_ENV)
    sender = get(EMAIL_FROM_ENV)
    recipients = tuple(part.strip() for part in get(EMAIL_TO_ENV).split(",") if part.strip())
    starttls_text = get(SMTP_STARTTLS_ENV).lower()
    starttls = True
    if starttls_text in _FALSE:
        starttls = False
    elif starttls_text and starttls_text not in _TRUE:
        problems.append(f"{SMTP_STARTTLS_ENV} must be true or false (got {starttls_text!r})")
    ca_file = get(SMTP_CA_FILE_ENV)
    if ca_file and not os.path.isfile(ca_file):
        problems.append(f"{SMTP_CA_FILE_ENV} names {ca_file}, which is not a file (a PEM bundle is expected)")

    for address in (*recipients, *([sender] if sender else [])):
        if "@" not in address:
            problems.append(f"{address!r} is not an e-mail address ({EMAIL_TO_ENV} / {EMAIL_FROM_ENV})")
    if host and not recipients:
        problems.append(f"{SMTP_HOST_ENV} is set but {EMAIL_TO_ENV} is empty: name at least one recipient")
    if host and not sender:
        problems.append(f"{SMTP_HOST_ENV} is set but {EMAIL_FROM_ENV} is empty: name the sender address")
    if recipients and not host:
        problems.append(f"{EMAIL_TO_ENV} is set but {SMTP_HOST_ENV} is empty: name the SMTP server")
    if password and not username:
        problems.append(f"{SMTP_PASSWORD_ENV} is set but {SMTP_USERNAME_ENV} is empty")
    if problems:
        raise AlertConfigError("alert settings are invalid: " + "; ".join(problems))
    return AlertChannels(
        webhook_url=webhook or None, smtp_host=host or None, smtp_port=port, smtp_username=username or None,
        smtp_password=password or None, smtp_from=sender or None, smtp_to=recipients, smtp_starttls=starttls,
        smtp_ca_file=ca_file or None,
    )


def _json_ready(value: Any) -> Any:
    """Plain JSON types: Decimal/NumPy numbers to float or int, datetimes to ISO 8601 UTC, NaN to null."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return None if not value.is_finite() else float(value)
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    item = getattr(value, "item", None)  # NumPy scalars
    if callable(item):
        return _json_ready(item())
    return str(value)


def format_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z`` (``2026-11-01T10:00:00.000Z``); naive means UTC."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%S.") + f"{aware.microsecond // 1000:03d}Z"


def build_alert(alert_type: str, severity: str, metrics: Sequence[Mapping[str, Any]], *, environment: str,
                timestamp: datetime | None = None, **details: Any) -> dict[str, Any]:
    """The alert payload: ``{"alert_type", "severity", "timestamp", "metrics", "environment", **details}``.

    ``metrics`` items for real-time vs batch carry ``metric_name``, ``rt_value``, ``batch_value``,
    ``variance_percent``, ``threshold_percent`` and interval/queue fields; billing alerts pass e.g.
    ``discrepancy_rate_pct``, ``threshold_pct``, ``disputed_amount``, ``run_id`` as ``details``.
    Values are made JSON-ready (Decimal and NumPy numbers to numbers, datetimes to UTC ``Z``).
    ``timestamp`` defaults to now.

    Raises:
        ValueError: empty ``alert_type`` or ``environment``, or a severity other than info,
            warning or critical (a programming error, not a user one).
    """
    if not alert_type:
        raise ValueError("alert_type must not be empty")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)} (got {severity!r})")
    if not environment:
        raise ValueError("environment must not be empty")
    moment = timestamp if timestamp is not None else datetime.now(UTC)
    payload: dict[str, Any] = {
        "alert_type": alert_type,
        "severity": severity,
        "timestamp": format_utc(moment),
        "metrics": [_json_ready(dict(metric)) for metric in metrics],
        "environment": environment,
    }
    payload.update(_json_ready(details))
    return payload


def alert_key(payload: Mapping[str, Any]) -> str:
    """A stable SHA-256 (hex) of the payload without its timestamp: the same finding gives the same key.

    Key order does not matter; values are hashed as their JSON text.
    """
    body = {k: v for k, v in payload.items() if k != "timestamp"}
    text = json.dumps(_json_ready(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(value: Any) -> str:
    """``1,234.5``, ``12``, ``0.0042``: readable, and small variances are not rounded to 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) < 1:
        return f"{value:.2g}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def alert_summary(payload: Mapping[str, Any]) -> str:
    """One line a person reads first (Slack ``text``, e-mail subject): what, where and how far off."""
    head = f"[{payload.get('severity', '?')}] {payload.get('alert_type', 'ALERT')} ({payload.get('environment', '?')})"
    parts: list[str] = []
    if "discrepancy_rate_pct" in payload:
        parts.append(f"discrepancy rate {_number(payload.get('discrepancy_rate_pct'))} % "
                     f"> threshold {_number(payload.get('threshold_pct'))} %")
    if "disputed_amount" in payload:
        currency = f" {payload['currency']}" if payload.get("currency") else ""
        parts.append(f"disputed {_number(payload.get('disputed_amount'))}{currency}")
    if payload.get("run_id"):
        parts.append(f"run {payload['run_id']}")
    metrics = payload.get("metrics") or []
    if metrics:
        parts.append(f"{len(metrics)} metric(s) out of tolerance")
        named = []
        for metric in metrics[:_SUMMARY_METRICS]:
            where = " ".join(str(metric[k]) for k in ("queue_id", "interval_start") if metric.get(k))
            name = metric.get("metric_name", "?")
            variance, threshold = _number(metric.get("variance_percent")), _number(metric.get("threshold_percent"))
            named.append(f"{name}{' ' + where if where else ''}: rt {_number(metric.get('rt_value'))} "
                         f"vs batch {_number(metric.get('batch_value'))} ({variance} % > {threshold} %)")
        more = len(metrics) - _SUMMARY_METRICS
        parts.append("; ".join(named) + (f"; and {more} more" if more > 0 else ""))
    return head + (": " + ", ".join(parts) if parts else "")


@dataclass(frozen=True)
class DeliveryResult:
    """How one channel's delivery went: ``ok`` after ``attempts`` tries, else the last ``error``."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "ok": self.ok, "attempts": self.attempts, "error": self.error}


class _DeliveryFailure(Exception):
    """One failed attempt; ``retry`` False for failures another attempt cannot fix (4xx, bad login, TLS)."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def _redact(text: str, channels: AlertChannels) -> str:
    """Remove every secret (password, webhook URL and its path) from a message before it is shown or logged."""
    secrets = [channels.smtp_password or "", channels.webhook_url or ""]
    if channels.webhook_url:
        parts = urlsplit(channels.webhook_url)
        secrets.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    for secret in sorted((s for s in secrets if len(s) > 1), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _send_webhook(payload: Mapping[str, Any], channels: AlertChannels) -> None:
    assert channels.webhook_url is not None
    body = {**_json_ready(payload), "text": alert_summary(payload)}
    try:
        response = requests.post(channels.webhook_url, json=body, timeout=channels.timeout_s)
    except requests.Timeout as exc:
        raise _DeliveryFailure(f"no answer within {channels.timeout_s:g} s ({type(exc).__name__})",
                               retry=True) from None
    except requests.RequestException as exc:
        # The exception text names the URL (the credential): only its type is kept.
        raise _DeliveryFailure(f"cannot reach {redact_url(channels.webhook_url)} ({type(exc).__name__})",
                               retry=True) from None
    if 200 <= response.status_code < 300:
        return
    detail = response.text[:200].strip()
    transient = response.status_code == 429 or response.status_code >= 500
    raise _DeliveryFailure(f"webhook answered HTTP {response.status_code}" + (f": {detail}" if detail else ""),
                           retry=transient)


def _email_message(payload: Mapping[str, Any], channels: AlertChannels) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = alert_summary(payload)
    message["From"] = channels.smtp_from or ""
    message["To"] = ", ".join(channels.smtp_to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=(channels.smtp_from or "recon@localhost").rpartition("@")[2] or None)
    message.set_content(json.dumps(_json_ready(payload), indent=2, ensure_ascii=False) + "\n")
    return message


def _ssl_context(channels: AlertChannels) -> ssl.SSLContext:
    if channels.smtp_ssl_context is not None:
        return channels.smtp_ssl_context
    return ssl.create_default_context(cafile=channels.smtp_ca_file)


def _send_email(payload: Mapping[str, Any], channels: AlertChannels) -> None:
    assert channels.smtp_host is not None
    message = _email_message(payload, channels)
    where = f"{channels.smtp_host}:{channels.smtp_port}"
    try:
        with smtplib.SMTP(channels.smtp_host, channels.smtp_port, timeout=channels.timeout_s) as smtp:
            smtp.ehlo()
            if channels.smtp_starttls:
                smtp.starttls(context=_ssl_context(channels))
                smtp.ehlo()
            if channels.smtp_username:
                smtp.login(channels.smtp_username, channels.smtp_password or "")
            refused = smtp.send_message(message)
        if refused:
            logger.warning("alert e-mail refused for %d recipient(s): %s", len(refused), ", ".join(sorted(refused)))
    except smtplib.SMTPNotSupportedError as exc:
        raise _DeliveryFailure(f"{where} does not offer STARTTLS ({exc}); set {SMTP_STARTTLS_ENV}=false only for "
                               "a server on a trusted network", retry=False) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise _DeliveryFailure(f"{where} refused the login of {channels.smtp_username} (SMTP {exc.smtp_code}); "
                               f"check {SMTP_USERNAME_ENV} and {SMTP_PASSWORD_ENV}", retry=False) from None
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise _DeliveryFailure(f"{where} refused the addresses ({exc}); check {EMAIL_FROM_ENV} and {EMAIL_TO_ENV}",
                               retry=False) from None
    except ssl.SSLCertVerificationError as exc:
        raise _DeliveryFailure(f"{where}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                               f"point {SMTP_CA_FILE_ENV} at the CA that signed it", retry=False) from None
    except smtplib.SMTPResponseException as exc:
        # 4xx is "try again later"; 5xx is permanent.
        raise _DeliveryFailure(f"{where} answered SMTP {exc.smtp_code} {exc.smtp_error!r}",
                               retry=400 <= exc.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise _DeliveryFailure(f"cannot send through {where} ({type(exc).__name__}: {exc})", retry=True) from None


_SENDERS: dict[str, Callable[[Mapping[str, Any], AlertChannels], None]] = {
    CHANNEL_WEBHOOK: _send_webhook,
    CHANNEL_EMAIL: _send_email,
}


def _deliver_one(channel: str, payload: Mapping[str, Any], channels: AlertChannels,
                 sleep: Callable[[float], None]) -> DeliveryResult:
    attempts_allowed = max(1, channels.max_attempts)
    error = ""
    attempt = 0
    for attempt in range(1, attempts_allowed + 1):
        try:
            _SENDERS[channel](payload, channels)
        except _DeliveryFailure as failure:
            error = _redact(str(failure), channels)
            logger.warning("alert %s via %s: attempt %d of %d failed: %s", payload.get("alert_type"), channel,
                           attempt, attempts_allowed, error)
            if not failure.retry:
                break
            if attempt < attempts_allowed:
                sleep(channels.backoff_s * 2 ** (attempt - 1))
            continue
        except Exception as exc:  # noqa: BLE001 - a delivery bug must not lose the reconciliation result
            error = _redact(f"unexpected {type(exc).__name__}: {exc}", channels)
            logger.warning("alert %s via %s: attempt %d failed unexpectedly: %s", payload.get("alert_type"),
                           channel, attempt, error)
            break
        logger.info("alert %s delivered via %s after %d attempt(s)", payload.get("alert_type"), channel, attempt)
        return DeliveryResult(channel, True, attempt)
    logger.warning("alert %s NOT delivered via %s after %d attempt(s): %s", payload.get("alert_type"), channel,
                   attempt, error)
    return DeliveryResult(channel, False, attempt, error)


def deliver_alert(payload: Mapping[str, Any], channels: AlertChannels, *,
                  sleep: Callable[[float], None] = time.sleep) -> tuple[DeliveryResult, ...]:
    """Send ``payload`` to every configured channel (webhook first, then e-mail); one result per channel.

    Never raises for delivery problems: a channel failing with a transient error (connection
    refused, timeout, HTTP 429/5xx, SMTP 4xx) is retried up to ``channels.max_attempts`` times
    with exponential backoff (``sleep`` is injectable for tests); a permanent one (HTTP 4xx,
    refused login or addresses, untrusted certificate, no STARTTLS) stops at once. Failures are
    logged as warnings without secrets and returned. No channel configured gives ``()``.

    The webhook receives the payload's fields plus ``text``, a one-line summary (Slack shows
    ``text`` and ignores the rest); the e-mail's subject is that summary and its body the payload
    as JSON.
    """
    results = []
    if channels.webhook_configured:
        results.append(_deliver_one(CHANNEL_WEBHOOK, payload, channels, sleep))
    if channels.email_configured:
        results.append(_deliver_one(CHANNEL_EMAIL, payload, channels, sleep))
    return tuple(results)


# --- store: what was sent (table alerts_sent, store migration 2) -------------------------------------------


def alert_already_sent(con: duckdb.DuckDBPyConnection, key: str) -> bool:
    """True when the alert with ``key`` reached at least one channel in an earlier run.

    An alert recorded with no successful delivery (every channel failed, or none configured)
    counts as not sent, so the next run tries again.
    """
    row = execute(con, "SELECT delivered FROM alerts_sent WHERE alert_key = ?", [key]).fetchone()
    return bool(row and row[0])


def record_alert(con: duckdb.DuckDBPyConnection, payload: Mapping[str, Any], results: Sequence[DeliveryResult],
                 *, source: str, source_ref: str) -> None:
    """Store the alert and how its delivery went (no transaction of its own; the caller decides).

    ``source`` names the reconciliation (``'rt-batch'``, ``'billing'``), ``source_ref`` what it ran
    on (a run id, an interval range). Recording the same alert again keeps its first
    ``created_at``, keeps ``delivered`` true once it was, and replaces the delivery details.
    """
    delivered = any(result.ok for result in results)
    execute(
        con,
        "INSERT INTO alerts_sent (alert_key, alert_type, severity, source, source_ref, payload_json, delivered, "
        "deliveries_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (alert_key) DO UPDATE SET delivered = alerts_sent.delivered OR excluded.delivered, "
        "deliveries_json = excluded.deliveries_json, payload_json = excluded.payload_json, "
        "source_ref = excluded.source_ref",
        [alert_key(payload), str(payload.get("alert_type", "")), str(payload.get("severity", "")), source,
         source_ref, json.dumps(_json_ready(payload), ensure_ascii=False), delivered,
         json.dumps([result.to_dict() for result in results]), datetime.now(UTC).replace(tzinfo=None)],
    )


@dataclass(frozen=True)
class AlertDispatch:
    """What :func:`deliver_alert_once` did with one alert: skipped as already sent, or delivered (or tried)."""

    key: str
    payload: dict[str, Any]
    already_sent: bool
    results: tuple[DeliveryResult, ...] = ()

    @property
    def delivered(self) -> bool:
        return any(result.ok for result in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"alert_key": self.key, "already_sent": self.already_sent, "delivered": self.delivered,
                "deliveries": [result.to_dict() for result in self.results], "payload": self.payload}


def deliver_alert_once(con: duckdb.DuckDBPyConnection, payload: Mapping[str, Any], channels: AlertChannels, *,
                       source: str, source_ref: str,
                       sleep: Callable[[float], None] = time.sleep) -> AlertDispatch:
    """Deliver ``payload`` unless the store says it was already delivered; record the outcome.

    Never raises for delivery problems (see :func:`deliver_alert`); store errors propagate.
    No transaction of its own.
    """
    key = alert_key(payload)
    if alert_already_sent(con, key):
        logger.info("alert %s %s already sent; not sending again", payload.get("alert_type"), key[:12])
        return AlertDispatch(key, dict(payload), True)
    results = deliver_alert(payload, channels, sleep=sleep)
    record_alert(con, payload, results, source=source, source_ref=source_ref)
    return AlertDispatch(key, dict(payload), False, results)
