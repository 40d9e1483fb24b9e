"""Backfill periods: a calendar month steps back by a calendar month, anything else by its length."""

from __future__ import annotations

from datetime import date

from statex_bi.periods import Period
from statex_bi.runner.backfill import previous


def test_a_month_steps_back_to_the_previous_calendar_month() -> None:
    assert previous(Period(date(2026, 3, 1), date(2026, 3, 31))) == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert previous(Period(date(2026, 1, 1), date(2026, 1, 31))) == Period(date(2025, 12, 1), date(2025, 12, 31))


def test_a_week_or_a_partial_month_steps_back_by_its_length() -> None:
    assert previous(Period(date(2026, 11, 23), date(2026, 11, 29))) == Period(date(2026, 11, 16), date(2026, 11, 22))
    assert previous(Period(date(2026, 3, 1), date(2026, 3, 15))) == Period(date(2026, 2, 14), date(2026, 2, 28))
