"""Numbers as a report reader expects them, by unit: never scientific notation, a real minus sign.

Units (the same names as the KPI registry and `monitoring_metrics.unit`):

- a currency code (`EUR`, `USD`, any three capital letters): `€1,234.50`, `−$0.0002`. Amounts below
  one keep four decimals (AI costs are fractions of a cent); smaller ones two significant digits.
- `count`, `tokens`: whole numbers with thousands separators; a fractional count (a mean) keeps one decimal.
- `fraction` (0-1, shown as a percentage), `percent` (already ×100), `pt` (percentage points, signed).
- `ms`, `s`: a duration in whichever of ms, s or min reads best; `hours`: `12.5 h`.
- `ratio`: a multiple, `1.90×` (a speedup: one duration over another).
- `date`, `month` (`Nov 2026`), `datetime` (UTC, to the minute), `bool` (yes/no), `p` (a p-value), `number`, `text`.

Missing values (None, NaN, NaT, pd.NA) are an empty string; the caller decides what a blank means.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

import pandas as pd

MINUS = "\u2212"
CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF\u00a0"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
UNITS = ("count", "tokens", "fraction", "percent", "pt", "ms", "s", "hours", "date", "month", "datetime", "bool", "p",
         "number", "text", "ratio")


def is_currency(unit: str | None) -> bool:
    """Whether `unit` is a currency code such as EUR or USD."""
    return bool(unit) and bool(_CURRENCY.match(str(unit)))


def is_missing(value: Any) -> bool:
    """None, NaN, NaT and pd.NA; lists and other containers are values, not missing."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _signed(text: str, negative: bool, *, plus: bool = False) -> str:
    if negative:
        return MINUS + text
    return ("+" + text) if plus else text


def _fixed(value: float, decimals: int) -> str:
    return f"{abs(value):,.{decimals}f}"


def number(value: float, decimals: int | None = None, *, plus: bool = False) -> str:
    """A plain number with thousands separators and a real minus sign, never in e-notation.

    Args:
        value: the number.
        decimals: digits after the point; None chooses: 0 for whole numbers, else enough for 3
            significant digits (at most 10).
        plus: prefix positive numbers with '+' (changes).
    """
    value = float(value)
    if decimals is None:
        if value == int(value):
            decimals = 0
        else:
            magnitude = math.floor(math.log10(abs(value))) if value else 0
            decimals = min(10, max(0, 2 - magnitude))
    text = _fixed(value, decimals)
    negative = value < 0 and text.strip("0.,") != ""
    return _signed(text, negative, plus=plus and value > 0)


def money(value: float, currency: str, decimals: int | None = None) -> str:
    """An amount with its currency symbol (or code): `€1,234.50`, `−$0.0002`, `CHF 12.00`.

    Args:
        value: the amount in the currency's major unit, at full precision.
        currency: ISO code.
        decimals: digits after the point; None: 2 from one unit up, 4 below, and 2 significant
            digits for amounts that 4 decimals would show as zero.
    """
    value = float(value)
    size = abs(value)
    if decimals is None:
        if size >= 1 or size == 0:
            decimals = 2
        elif size >= 0.0001:
            decimals = 4
        else:
            decimals = min(10, 1 - math.floor(math.log10(size)))
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency}\u00a0")
    text = _fixed(value, decimals)
    return _signed(symbol + text, value < 0 and text.strip("0.,") != "")


def percent(value: float, decimals: int | None = None, *, plus: bool = False) -> str:
    """A value already in percent: `12.3%`; decimals default to 1 (2 below 1%)."""
    value = float(value)
    if decimals is None:
        decimals = 2 if 0 < abs(value) < 1 else 1
    text = _fixed(value, decimals)
    return _signed(text, value < 0 and text.strip("0.,") != "", plus=plus and value > 0) + "%"


def duration(seconds: float) -> str:
    """A duration in the unit that reads best: `850 ms`, `2.4 s`, `42 s`, `3 min 05 s`, `2 h 10 min`."""
    seconds = float(seconds)
    size = abs(seconds)
    sign = MINUS if seconds < 0 else ""
    if size < 1:
        return f"{sign}{size * 1000:,.0f} ms"
    if size < 10:
        return f"{sign}{size:,.1f} s"
    if size < 60:
        return f"{sign}{size:,.0f} s"
    if size < 3600:
        minutes, rest = divmod(round(size), 60)
        return f"{sign}{minutes} min {rest:02d} s"
    hours, rest = divmod(round(size / 60), 60)
    return f"{sign}{hours:,} h {rest:02d} min"


def value(value: Any, unit: str | None, decimals: int | None = None) -> str:
    """`value` formatted for its unit (see the module docstring); '' when it is missing."""
    if is_missing(value):
        return ""
    if unit == "bool" or pd.api.types.is_bool(value):
        return "yes" if bool(value) else "no"
    if unit == "text" or isinstance(value, str):
        return str(value)
    if unit == "month":
        return f"{pd.Timestamp(value):%b %Y}"
    if unit == "date" or (isinstance(value, date) and not isinstance(value, datetime) and unit is None):
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    if unit == "datetime" or isinstance(value, (datetime, pd.Timestamp)):
        return f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    if is_currency(unit):
        return money(value, str(unit), decimals)
    if unit in ("count", "tokens"):
        return number(value, decimals if decimals is not None else (0 if float(value) == int(value) else 1))
    if unit == "fraction":
        return percent(100 * float(value), decimals)
    if unit == "percent":
        return percent(value, decimals)
    if unit == "pt":
        return number(value, 2 if decimals is None else decimals, plus=True) + " pt"
    if unit == "ms":
        return duration(float(value) / 1000)
    if unit == "s":
        return duration(value)
    if unit == "hours":
        return number(value, 1 if decimals is None else decimals) + " h"
    if unit == "ratio":
        return number(value, 2 if decimals is None else decimals) + "\u00d7"
    if unit == "p":
        return "< 0.001" if float(value) < 0.001 else number(value, 3)
    return number(value, decimals)


def value_or_na(amount: float | None, unit: str | None) -> str:
    """`value` for a message a person reads (alerts, the executive summary): "n/a" when missing."""
    return "n/a" if is_missing(amount) else value(amount, unit)


def unit_label(unit: str | None) -> str:
    """How a unit is named next to a label: the currency code, else '' (the values carry their unit)."""
    return str(unit) if is_currency(unit) else ""
