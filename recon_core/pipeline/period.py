"""Billing periods: a month or a day, cut at the carrier's billing-cycle edge (a UTC time of day).

Genesys Cloud Voice bills from 07:00 UTC to 07:00 UTC, so its October 2026 is
``[2026-10-01 07:00, 2026-11-01 07:00)`` UTC; a carrier billing by UTC calendar uses 00:00.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from recon_core.errors import SettingsError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """One billing period: its label (``2026-10`` or ``2026-10-31``) and ``[start, end)`` in naive UTC."""

    label: str
    kind: str
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "start_utc": self.start.isoformat() + "Z",
                "end_utc": self.end.isoformat() + "Z"}


def _next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def period_from_label(label: str, offset_minutes: int = 0) -> Period:
    """``2026-10`` (a month) or ``2026-10-31`` (a day), starting ``offset_minutes`` after midnight UTC.

    Raises:
        SettingsError: the label is neither.
    """
    offset = timedelta(minutes=offset_minutes)
    month = _MONTH.match(label.strip())
    if month:
        year, mon = int(month.group(1)), int(month.group(2))
        if not 1 <= mon <= 12:
            raise SettingsError(f"period {label!r}: month must be 01..12")
        first = date(year, mon, 1)
        return Period(label.strip(), "month", datetime.combine(first, datetime.min.time()) + offset,
                      datetime.combine(_next_month(first), datetime.min.time()) + offset)
    try:
        day = date.fromisoformat(label.strip())
    except ValueError as exc:
        raise SettingsError(f"period {label!r} must be a month like 2026-10 or a day like 2026-10-31") from exc
    start = datetime.combine(day, datetime.min.time()) + offset
    return Period(day.isoformat(), "day", start, start + timedelta(days=1))


def detect_period(starts: Sequence[datetime], kind: str, offset_minutes: int = 0) -> Period:
    """The period (``month`` or ``day``) holding most of the invoice's call starts (earliest on a tie).

    Raises:
        SettingsError: no start time to go by.
    """
    offset = timedelta(minutes=offset_minutes)
    labels: Counter[str] = Counter()
    for start in starts:
        shifted = start - offset
        labels[shifted.strftime("%Y-%m") if kind == "month" else shifted.date().isoformat()] += 1
    if not labels:
        raise SettingsError("the invoice has no call with a start time, so its billing period cannot be told; "
                            "give --period or --date")
    best = max(labels.values())
    label = min(k for k, v in labels.items() if v == best)
    return period_from_label(label, offset_minutes)


def utc_days(start: datetime, end: datetime) -> tuple[date, date]:
    """First and last UTC day touched by ``[start, end)``."""
    last = end - timedelta(microseconds=1)
    return start.date(), last.date()
