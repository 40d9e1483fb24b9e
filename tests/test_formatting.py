"""Numbers by unit, as a CFO reads them: no e-notation, a real minus sign, yes/no, ms or s."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from statex_bi import formatting

MINUS = "\u2212"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (89930.0, "EUR", "€89,930.00"),
        (np.float64(8.993e4), "EUR", "€89,930.00"),
        (-0.0002, "USD", f"{MINUS}$0.0002"),
        (0.0438, "USD", "$0.0438"),
        (0.0000012, "USD", "$0.0000012"),
        (-1234.5, "GBP", f"{MINUS}£1,234.50"),
        (12.0, "SEK", "SEK\u00a012.00"),
        (-0.000015, "USD", f"{MINUS}$0.000015"),
        (1200, "count", "1,200"),
        (123.456, "count", "123.5"),
        (12345678, "tokens", "12,345,678"),
        (0.0106, "fraction", "1.1%"),
        (0.0056, "fraction", "0.56%"),
        (0.25, "fraction", "25.0%"),
        (-1.8, "percent", f"{MINUS}1.8%"),
        (0.4, "pt", "+0.40 pt"),
        (-0.4, "pt", f"{MINUS}0.40 pt"),
        (850.0, "ms", "850 ms"),
        (2400.0, "ms", "2.4 s"),
        (0.35, "s", "350 ms"),
        (185.0, "s", "3 min 05 s"),
        (7300.0, "s", "2 h 02 min"),
        (47.25, "hours", "47.2 h"),
        (True, "bool", "yes"),
        (np.bool_(False), None, "no"),
        (0.0004, "p", "< 0.001"),
        (1.8765, "ratio", "1.88\u00d7"),
        (date(2026, 11, 2), "date", "2026-11-02"),
        (date(2026, 11, 1), "month", "Nov 2026"),
        (pd.Timestamp("2026-02-01"), "month", "Feb 2026"),
        (pd.Timestamp("2026-11-02 07:05:31"), None, "2026-11-02 07:05"),
        (datetime(2026, 11, 2, 7, 5), "datetime", "2026-11-02 07:05"),
        (1.5e-7, None, "0.000000150"),
        (3.2e12, None, "3,200,000,000,000"),
        (None, "EUR", ""),
        (float("nan"), "count", ""),
        (pd.NA, "fraction", ""),
    ],
)
def test_values_by_unit(value, unit, text):
    assert formatting.value(value, unit) == text


def test_tiny_negative_amounts_that_round_to_zero_have_no_minus_sign():
    assert formatting.money(-0.001, "EUR", decimals=2) == "€0.00"
    assert formatting.number(-0.0004, 2) == "0.00"


def test_currencies_are_named_in_headers():
    assert formatting.unit_label("EUR") == "EUR"
    assert formatting.unit_label("count") == ""
    assert formatting.is_currency("USD") and not formatting.is_currency("usd") and not formatting.is_currency("ms")
