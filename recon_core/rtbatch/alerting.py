"""Send the alerts of a real-time vs batch result, each at most once per store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import duckdb

from recon_core.alerts import AlertChannels, alert_already_sent, alert_key, deliver_alert_once
from recon_core.rtbatch.engine import RtBatchResult

logger = logging.getLogger(__name__)

ALERT_SOURCE = "rt-batch"


def send_rt_batch_alerts(con: duckdb.DuckDBPyConnection, result: RtBatchResult, channels: AlertChannels, *,
                         send: bool = True, sleep: Callable[[float], None] = time.sleep) -> list[dict[str, Any]]:
    """Deliver every alert of ``result`` that the store (``alerts_sent``) has not delivered before.

    ``send=False`` or no channel configured: nothing is sent; each alert is listed as
    ``would_send`` (or ``already_sent``). Delivery failures never raise (they are recorded and
    retried on the next run). Returns the ``alerts.json`` items: ``state`` (``sent``,
    ``already_sent``, ``failed``, ``would_send``), ``alert_key``, ``deliveries`` and ``payload``.
    """
    items: list[dict[str, Any]] = []
    for payload in result.alerts:
        key = alert_key(payload)
        if not send or not channels.any_configured:
            state = "already_sent" if alert_already_sent(con, key) else "would_send"
            items.append({"state": state, "alert_key": key, "deliveries": [], "payload": payload})
            continue
        dispatch = deliver_alert_once(con, payload, channels, source=ALERT_SOURCE,
                                      source_ref=str(payload.get("interval", "")), sleep=sleep)
        state = "already_sent" if dispatch.already_sent else "sent" if dispatch.delivered else "failed"
        if state == "failed":
            logger.warning("alert for %s could not be delivered; it is retried on the next run",
                           payload.get("interval"))
        items.append({"state": state, "alert_key": key, "deliveries": [r.to_dict() for r in dispatch.results],
                      "payload": payload})
    return items
