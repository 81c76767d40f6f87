"""Fixtures for the alert tests: local webhook and SMTP servers on loopback (see alert_servers.py)."""

from __future__ import annotations

from alert_servers import self_signed, smtp_plain, smtp_starttls, webhook

__all__ = ["self_signed", "smtp_plain", "smtp_starttls", "webhook"]
