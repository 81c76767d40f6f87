"""Fixtures for the real-time vs batch tests: a local webhook on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loopback_webhook import WebhookRecorder


@pytest.fixture
def webhook() -> Iterator[WebhookRecorder]:
    with WebhookRecorder() as recorder:
        yield recorder
