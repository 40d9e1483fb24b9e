from __future__ import annotations

from datetime import date, timedelta

import pytest

from statex_bi.exceptions import ParamsError
from statex_bi.periods import Period, parse_date, resolve

FRIDAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("last full week", date(2026, 11, 16), date(2026, 11, 22)),
        ("Last Full Month", date(2026, 10, 1), date(2026, 10, 31)),
        ("month to date", date(2026, 11, 1), date(2026, 11, 26)),
        ("last 7 days", date(2026, 11, 20), date(2026, 11, 26)),
        ("yesterday", date(2026, 11, 26), date(2026, 11, 26)),
    ],
    ids=lambda v: str(v),
)
def test_relative_periods(spec, start, end):
    assert resolve(spec, today=FRIDAY) == Period(start, end)


def test_last_full_week_on_a_monday_is_the_week_just_ended():
    assert resolve("last full week", today=date(2026, 11, 23)) == Period(date(2026, 11, 16), date(2026, 11, 22))


def test_last_full_month_in_january_is_december():
    assert resolve("last full month", today=date(2027, 1, 5)) == Period(date(2026, 12, 1), date(2026, 12, 31))


def test_a_month_is_compared_with_the_previous_calendar_month():
    """Before: October was compared with 31 days from 31 August, and March with 31 days from late January."""
    assert Period(date(2026, 10, 1), date(2026, 10, 31)).previous() == Period(date(2026, 9, 1), date(2026, 9, 30))
    assert Period(date(2026, 3, 1), date(2026, 3, 31)).previous() == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert Period(date(2027, 1, 1), date(2027, 1, 31)).previous() == Period(date(2026, 12, 1), date(2026, 12, 31))
    assert Period(date(2026, 1, 1), date(2026, 3, 31)).previous() == Period(date(2025, 10, 1), date(2025, 12, 31))


def test_a_week_or_other_range_is_compared_with_as_many_days_just_before():
    week = resolve("last full week", today=date(2026, 10, 7))
    assert week.previous() == Period(week.start - timedelta(days=7), week.start - timedelta(days=1))
    assert Period(date(2026, 10, 3), date(2026, 10, 12)).previous() == Period(date(2026, 9, 23), date(2026, 10, 2))


def test_bad_input_names_what_is_wrong():
    with pytest.raises(ParamsError, match="last fortnight"):
        resolve("last fortnight")
    with pytest.raises(ParamsError, match="period_end: '2026-13-01'"):
        parse_date("2026-13-01", "period_end")
    with pytest.raises(ParamsError, match="before its start"):
        Period(date(2026, 2, 1), date(2026, 1, 1))


def test_statex_bi_today_pins_the_day_relative_periods_and_the_default_demo_count_back_from(monkeypatch):
    from statex_bi.demo.entities import WorldConfig

    monkeypatch.setenv("STATEX_BI_TODAY", "2026-12-01")
    assert resolve("last full week") == Period(date(2026, 11, 23), date(2026, 11, 29))
    assert resolve("month to date") == Period(date(2026, 11, 1), date(2026, 11, 30))
    assert WorldConfig.default().end == date(2026, 11, 30)

    monkeypatch.setenv("STATEX_BI_TODAY", "1 December")
    with pytest.raises(ParamsError, match=r"\$STATEX_BI_TODAY '1 December' is not a date"):
        resolve("yesterday")
