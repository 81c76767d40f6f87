"""Billing periods cut at the carrier's cycle edge (Genesys Cloud Voice: 07:00 UTC)."""

from __future__ import annotations

from datetime import datetime

import pytest

from recon_core.errors import SettingsError
from recon_core.pipeline.period import detect_period, period_from_label, utc_days


@pytest.mark.parametrize(("label", "offset", "start", "end"), [
    ("2026-10", 0, datetime(2026, 10, 1), datetime(2026, 11, 1)),
    ("2026-10", 420, datetime(2026, 10, 1, 7), datetime(2026, 11, 1, 7)),
    ("2026-12", 420, datetime(2026, 12, 1, 7), datetime(2027, 1, 1, 7)),
    ("2026-10-31", 0, datetime(2026, 10, 31), datetime(2026, 11, 1)),
    ("2026-10-31", 420, datetime(2026, 10, 31, 7), datetime(2026, 11, 1, 7)),
])
def test_period_edges(label: str, offset: int, start: datetime, end: datetime) -> None:
    period = period_from_label(label, offset)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize(("starts", "kind", "offset", "expected"), [
    # 1 November 03:00 UTC is still the October cycle of Genesys Cloud Voice (ends 07:00)
    ([datetime(2026, 10, 15), datetime(2026, 11, 1, 3)], "month", 420, "2026-10"),
    ([datetime(2026, 11, 1, 3), datetime(2026, 11, 1, 6, 59)], "month", 0, "2026-11"),
    ([datetime(2026, 11, 1, 3), datetime(2026, 11, 1, 6, 59)], "month", 420, "2026-10"),
    ([datetime(2026, 10, 31, 8), datetime(2026, 11, 1, 6)], "day", 420, "2026-10-31"),
    ([datetime(2026, 10, 30, 23), datetime(2026, 10, 31, 1)], "day", 0, "2026-10-30"),  # tie: earliest
])
def test_the_period_holding_most_calls_is_chosen(starts: list[datetime], kind: str, offset: int,
                                                 expected: str) -> None:
    assert detect_period(starts, kind, offset).label == expected


def test_no_start_time_means_the_operator_must_say() -> None:
    with pytest.raises(SettingsError, match="give --period or --date"):
        detect_period([], "month")


def test_utc_days_of_a_cycle_period() -> None:
    period = period_from_label("2026-10", 420)
    assert [d.isoformat() for d in utc_days(period.start, period.end)] == ["2026-10-01", "2026-11-01"]
