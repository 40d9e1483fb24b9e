"""The simulated ECB reference rates and their rendering as the ECB's eurofxref-hist.csv."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest

from statex_bi.demo.fx import ecb_csv, is_target_business_day, simulate_fx
from statex_bi.demo.world import WorldConfig

# Around Easter 2026 (3 and 6 April) and Bulgaria's switch to the euro on 1 January 2026.
CONFIG = WorldConfig(date(2025, 12, 15), date(2026, 4, 17), seed=4)


@pytest.fixture(scope="module")
def fx():
    return simulate_fx(CONFIG)


def test_business_days_only(fx):
    assert fx.dates == sorted(fx.dates)
    assert all(day.weekday() < 5 for day in fx.dates)
    closed = {date(2025, 12, 25), date(2025, 12, 26), date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6)}
    assert not closed & set(fx.dates)
    assert date(2026, 4, 7) in fx.dates and date(2026, 4, 2) in fx.dates
    weekdays = [d for d in CONFIG.days() if d.weekday() < 5]
    assert len(fx.dates) == len(weekdays) - len(closed)


def test_target_calendar_knows_easter():
    assert not is_target_business_day(date(2025, 4, 18))  # Good Friday 2025
    assert not is_target_business_day(date(2025, 4, 21))  # Easter Monday 2025
    assert is_target_business_day(date(2025, 4, 22))


def test_rates_are_realistic_and_rounded_like_the_ecb(fx):
    usd = [fx.rates[(d, "USD")] for d in fx.dates]
    gbp = [fx.rates[(d, "GBP")] for d in fx.dates]
    jpy = [fx.rates[(d, "JPY")] for d in fx.dates]
    assert min(usd) > 1.0 and max(usd) < 1.35
    assert min(gbp) > 0.78 and max(gbp) < 0.95
    assert min(jpy) > 140 and max(jpy) < 200
    assert all(round(rate, 4) == rate for rate in usd)
    assert all(round(rate, 2) == rate for rate in jpy)
    # A random walk, not noise: day-to-day moves are small.
    assert max(abs(b / a - 1) for a, b in zip(usd, usd[1:], strict=False)) < 0.03
    assert len(set(usd)) > len(usd) / 2


def test_bulgarian_lev_stops_when_bulgaria_adopts_the_euro(fx):
    assert fx.rates[(date(2025, 12, 31), "BGN")] == 1.9558
    assert (date(2026, 1, 2), "BGN") not in fx.rates
    assert not any(code == "CYP" for _, code in fx.rates)


def test_csv_has_the_ecb_layout(fx):
    text = ecb_csv(fx)
    lines = text.splitlines()
    assert lines[0].startswith("Date,USD,JPY,") and lines[0].endswith(",")
    assert all(line.endswith(",") and line.count(",") == lines[0].count(",") for line in lines)
    days = [line.split(",", 1)[0] for line in lines[1:]]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) for day in days)
    assert days == sorted(days, reverse=True)
    cells = [cell for line in lines[1:] for cell in line.split(",")[1:-1]]
    assert all(cell == "N/A" or re.fullmatch(r"\d+\.\d+", cell) for cell in cells)


def test_csv_holds_exactly_the_simulated_rates(fx):
    reader = csv.DictReader(io.StringIO(ecb_csv(fx)))
    parsed = {}
    for row in reader:
        for code, cell in row.items():
            if code not in ("Date", "") and cell != "N/A":
                parsed[(date.fromisoformat(row["Date"]), code)] = float(cell)
    assert parsed == fx.rates
    assert len(fx.rows()) == len(fx.rates)
