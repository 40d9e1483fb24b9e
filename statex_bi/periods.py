"""Report periods: inclusive date ranges, and the relative forms params files may use."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from statex_bi.exceptions import ParamsError


@dataclass(frozen=True)
class Period:
    """An inclusive date range [start, end]."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ParamsError(f"period end {self.end} is before its start {self.start}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def whole_months(self) -> int:
        """How many calendar months the period is, when it is whole calendar months; else 0."""
        if self.start.day != 1 or (self.end + timedelta(days=1)).day != 1:
            return 0
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    def previous(self) -> Period:
        """The period to compare with: the previous calendar month(s) when this is whole calendar months
        (March after February, however many days each has), else the same number of days just before
        (a Monday-Sunday week after the previous week)."""
        months = self.whole_months
        if months:
            index = self.start.year * 12 + self.start.month - 1 - months
            return Period(date(index // 12, index % 12 + 1, 1), self.start - timedelta(days=1))
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


TODAY_VARIABLE = "STATEX_BI_TODAY"


def reference_day() -> date:
    """The day relative periods count back from: $STATEX_BI_TODAY (YYYY-MM-DD) when set, to see the periods
    (and a default demo) as on that day, in every process the variable reaches; otherwise today."""
    pinned = os.environ.get(TODAY_VARIABLE, "").strip()
    if not pinned:
        return date.today()
    try:
        return date.fromisoformat(pinned)
    except ValueError:
        raise ParamsError(f"${TODAY_VARIABLE} {pinned!r} is not a date (YYYY-MM-DD)") from None


_LAST_N_DAYS = re.compile(r"^last (\d+) days?$")


def exact_grain(period: Period) -> str | None:
    """`day`, `week` or `month` when the period is one UTC day, ISO week or calendar month; else None: the
    grains whose percentiles the Sentry connector loads as Sentry computed them over the whole period."""
    following = period.end + timedelta(days=1)
    if period.days == 1:
        return "day"
    if period.days == 7 and period.start.weekday() == 0:
        return "week"
    if period.start.day == 1 and following.day == 1 and following - period.start <= timedelta(days=31):
        return "month"
    return None


def resolve(spec: str, today: date | None = None) -> Period:
    """Turn a relative form into a period ending before `today`.

    Forms: "last full week" (Monday-Sunday), "last full month", "month to date",
    "last N days" (ending yesterday), "yesterday".
    """
    today = today or reference_day()
    text = spec.strip().lower()
    yesterday = today - timedelta(days=1)
    if text == "last full week":
        end = today - timedelta(days=today.weekday() + 1)
        return Period(end - timedelta(days=6), end)
    if text == "last full month":
        end = today.replace(day=1) - timedelta(days=1)
        return Period(end.replace(day=1), end)
    if text == "month to date":
        start = yesterday.replace(day=1)
        return Period(start, yesterday)
    if text == "yesterday":
        return Period(yesterday, yesterday)
    match = _LAST_N_DAYS.match(text)
    if match:
        return Period(yesterday - timedelta(days=int(match.group(1)) - 1), yesterday)
    raise ParamsError(
        f"unknown period {spec!r}; use 'last full week', 'last full month', 'month to date', "
        "'last N days', 'yesterday' or explicit start/end dates"
    )


def parse_date(value: str | date, what: str) -> date:
    """A YYYY-MM-DD string (or date) as a date, with an error naming `what`."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ParamsError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None
