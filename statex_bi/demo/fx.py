"""The simulated ECB euro foreign exchange reference rates.

The ECB publishes one rate per currency (units of currency per 1 EUR) on every TARGET business day:
no weekends, no New Year's Day, Good Friday, Easter Monday, 1 May, 25 and 26 December. Each rate
here follows a mean-reverting random walk in logs around a realistic level, rounded like the ECB's
(five significant digits: 1.1634 USD, 175.05 JPY, 0.87023 GBP).

`ecb_csv(fx)` renders the ECB's `eurofxref-hist.csv`: header `Date,USD,JPY,...,` with a trailing
comma (every line ends with an empty column), newest day first, dates YYYY-MM-DD, "N/A" where a
currency has no rate (CYP since Cyprus joined the euro in 2008; BGN since Bulgaria did on
1 January 2026).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from statex_bi.demo.entities import WorldConfig


@dataclass(frozen=True)
class Currency:
    code: str
    level: float  # long-run units per EUR
    daily_volatility: float  # standard deviation of the daily log change
    until: date | None = None  # last day with a reference rate (the currency was replaced by the euro)


# In the ECB file's column order (a subset of its columns, legacy ones included).
CURRENCIES = (
    Currency("USD", 1.16, 0.0040),
    Currency("JPY", 172.0, 0.0060),
    Currency("BGN", 1.9558, 0.0, until=date(2025, 12, 31)),
    Currency("CYP", 0.585274, 0.0, until=date(2007, 12, 31)),
    Currency("CZK", 24.4, 0.0025),
    Currency("DKK", 7.46, 0.0002),
    Currency("GBP", 0.866, 0.0030),
    Currency("HUF", 388.0, 0.0045),
    Currency("PLN", 4.26, 0.0030),
    Currency("SEK", 11.0, 0.0040),
    Currency("CHF", 0.935, 0.0030),
    Currency("NOK", 11.7, 0.0045),
    Currency("AUD", 1.77, 0.0050),
    Currency("CAD", 1.61, 0.0040),
)
MEAN_REVERSION = 0.01  # share of the log distance to the level closed per day


@dataclass(frozen=True)
class FxData:
    """Reference rates of the simulated period.

    Attributes:
        currencies: column codes of the rendered file, in the ECB's order.
        dates: ECB business days of the period, oldest first.
        rates: (day, currency) -> units of currency per 1 EUR, only where the ECB published one.
    """

    currencies: tuple[str, ...]
    dates: list[date]
    rates: dict[tuple[date, str], float]

    def rows(self) -> list[dict]:
        """One dict per published rate, the columns of raw_fx.eur_reference_rates."""
        return [{"date": day, "currency": code, "rate": rate} for (day, code), rate in self.rates.items()]


def simulate_fx(config: WorldConfig) -> FxData:
    """Simulate the ECB reference rates of every business day of the period.

    Args:
        config: period and seed; the draws come from `config.rng("fx")` only.

    Returns:
        The `FxData` of the period.
    """
    rng = config.rng("fx")
    dates = [day for day in config.days() if is_target_business_day(day)]
    rates: dict[tuple[date, str], float] = {}
    for currency in CURRENCIES:
        # Start away from the level so that the walk has somewhere to go.
        log_rate = math.log(currency.level) + rng.normal(0.0, 8 * currency.daily_volatility)
        for day in dates:
            log_rate += MEAN_REVERSION * (math.log(currency.level) - log_rate)
            log_rate += rng.normal(0.0, currency.daily_volatility)
            if currency.until is None or day <= currency.until:
                rates[(day, currency.code)] = ecb_round(math.exp(log_rate))
    return FxData(tuple(c.code for c in CURRENCIES), dates, rates)


def ecb_round(rate: float) -> float:
    """A rate rounded to five significant digits, as the ECB publishes it."""
    return round(rate, _decimals(rate))


def _decimals(rate: float) -> int:
    return max(0, 4 - math.floor(math.log10(rate)))


def ecb_csv(fx: FxData) -> str:
    """The rates as the ECB's `eurofxref-hist.csv`: newest day first, trailing comma on every line.

    Args:
        fx: the simulated rates.

    Returns:
        The file's text (lines end with a newline).
    """
    lines = ["Date," + ",".join(fx.currencies) + ","]
    for day in reversed(fx.dates):
        cells = [_cell(fx.rates.get((day, code))) for code in fx.currencies]
        lines.append(f"{day.isoformat()}," + ",".join(cells) + ",")
    return "\n".join(lines) + "\n"


def _cell(rate: float | None) -> str:
    return "N/A" if rate is None else f"{rate:.{_decimals(rate)}f}"


def is_target_business_day(day: date) -> bool:
    """Whether the ECB publishes reference rates on `day` (TARGET2 calendar)."""
    if day.weekday() >= 5:
        return False
    easter = _easter_sunday(day.year)
    closed = {
        date(day.year, 1, 1),
        easter - timedelta(days=2),
        easter + timedelta(days=1),
        date(day.year, 5, 1),
        date(day.year, 12, 25),
        date(day.year, 12, 26),
    }
    return day not in closed


def _easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)
