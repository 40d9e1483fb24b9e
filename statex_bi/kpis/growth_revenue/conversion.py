"""Conversion: the sign-up -> prototype request -> first payment funnel, each rate against the previous
period, and the per-channel trend.

Definitions (docs/metrics.md repeats them):

- *Sign-up rate*, *prototype-request rate*: sessions in which the event happened (GA4 `sessions`
  filtered on `eventName`) / sessions: a proportion, unlike key events, which GA4 counts once per event.
- *First-payment rate*: the cohort of `growth.first_payment_cohort`.
- Every rate is a fraction 0-1 with a Wilson 95 % interval (ci_low, ci_high).
- *Change*: rate minus the previous period's rate, in percentage points, with a two-sided test (score
  test widened for over-dispersion, Fisher's exact test for small counts); significant when p < 0.05.
  The previous period is the previous calendar month for a month, else as many days just before
  (`Period.previous`); both periods' dates are in the comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd

from statex_bi.exceptions import ParamsError
from statex_bi.kpis.growth_revenue import revenue as rev
from statex_bi.kpis.growth_revenue.growth import (
    GA4_HINT,
    GA4_MODELS,
    GA4_TABLES,
    KEY_EVENTS,
    PAYMENT_WINDOW_DAYS,
    check_key_events,
    first_payment_cohort,
    wilson_rate,
)
from statex_bi.kpis.stats import rate_change, rate_dispersion
from statex_bi.periods import Period
from statex_bi.reads import recorded

SIGNIFICANCE = 0.05
# Funnel rate metrics: (metric name, label, numerator step, denominator step).
RATES = (
    ("conversion.signup_rate", "Sign-up conversion", "sign_up", "sessions"),
    ("conversion.prototype_request_rate", "Prototype-request conversion", "prototype_request", "sessions"),
    ("conversion.first_payment_rate", "First-payment conversion (cohort)", "first_payment", "prototype_cohort"),
)
STEP_LABELS = {
    "sessions": "Sessions",
    "sign_up": "Sign-ups",
    "prototype_request": "Prototype requests",
    "first_payment": "Prototypes paid within the window",
}


def _funnel_counts(con: duckdb.DuckDBPyConnection, period: Period, events: tuple[str, str],
                   payment_window_days: int = PAYMENT_WINDOW_DAYS) -> dict[str, int | None]:
    """Sessions, the two key events, and the prototype cohort with its paid prototypes (None when
    prototypes or payments are not loaded)."""
    row = con.execute(
        """
        select
            (select coalesce(sum(sessions), 0) from marts.ga4_daily_traffic
             where date_day between $start and $end),
            (select coalesce(sum(sessions_with_event), case when count(*) = 0 then 0 end)
             from marts.ga4_daily_key_events
             where date_day between $start and $end and event_name = $sign_up),
            (select coalesce(sum(sessions_with_event), case when count(*) = 0 then 0 end)
             from marts.ga4_daily_key_events
             where date_day between $start and $end and event_name = $prototype)
        """,
        {"start": period.start, "end": period.end, "sign_up": events[0], "prototype": events[1]},
    ).fetchall()[0]
    # NULL: days loaded before the connector read the sessions-with-event report (the rate is unknown, not 0)
    counts: dict[str, int | None] = {"sessions": int(row[0]), "sign_up": None if row[1] is None else int(row[1]),
                                     "prototype_request": None if row[2] is None else int(row[2])}
    cohort = first_payment_cohort(con, period, payment_window_days=payment_window_days).iloc[0]
    counts["prototype_cohort"] = None if pd.isna(cohort["prototypes"]) else int(cohort["prototypes"])
    counts["first_payment"] = None if pd.isna(cohort["paid"]) else int(cohort["paid"])
    return counts


@recorded
def funnel(
    con: duckdb.DuckDBPyConnection, period: Period, *, key_events: Sequence[str] = KEY_EVENTS,
    payment_window_days: int = PAYMENT_WINDOW_DAYS,
) -> pd.DataFrame:
    """The funnel sessions -> sign-up -> prototype request -> first successful payment.

    Args:
        con: the warehouse.
        period: the days whose sessions, key events and first payments count.
        key_events: the GA4 events of the sign-up and prototype-request steps, in funnel order.
        payment_window_days: how long after its request a payment still converts a prototype.

    Returns:
        One row per step: step, label, count (NA for paid prototypes when prototypes or payments are not
        loaded), rate_of (the denominator step: the prototype cohort for paid prototypes), denominator,
        rate, ci_low, ci_high (NaN for sessions).
    """
    rev.require(con, "the funnel", GA4_MODELS, GA4_HINT, GA4_TABLES)
    counts = _funnel_counts(con, period, check_key_events(key_events), payment_window_days)
    rows = [{"step": "sessions", "label": STEP_LABELS["sessions"], "count": counts["sessions"], "rate_of": None,
             "denominator": None, "rate": math.nan, "ci_low": math.nan, "ci_high": math.nan}]
    for _, _, step, denominator in RATES:
        rate, low, high = wilson_rate(counts[step], counts[denominator])
        rows.append({"step": step, "label": STEP_LABELS[step], "count": counts[step], "rate_of": denominator,
                     "denominator": counts[denominator], "rate": rate, "ci_low": low, "ci_high": high})
    frame = pd.DataFrame(rows)
    frame["count"] = frame["count"].astype("Int64")
    frame["denominator"] = frame["denominator"].astype("Int64")
    return frame


def _daily_counts(con: duckdb.DuckDBPyConnection, period: Period, event: str) -> pd.DataFrame:
    """day, sessions, events (sessions with the event) of each day of the period with sessions."""
    # a day without a key-event row had none (0); a row whose count is NULL was loaded before the
    # connector read sessions-with-event (unknown, left out)
    return con.execute(
        """
        with traffic as (
            select date_day, sum(sessions) as sessions from marts.ga4_daily_traffic
            where date_day between $start and $end group by date_day
        ), events as (
            select date_day, sum(sessions_with_event) as events, count(*) as row_count
            from marts.ga4_daily_key_events
            where date_day between $start and $end and event_name = $event group by date_day
        )
        select traffic.date_day as day, traffic.sessions,
               case when events.row_count is null then 0 else events.events end as events
        from traffic left join events using (date_day) order by day
        """,
        {"start": period.start, "end": period.end, "event": event},
    ).df()


def funnel_dispersion(con: duckdb.DuckDBPyConnection, period: Period, event: str) -> float:
    """Over-dispersion of an event's daily rate per session over `period` and the period before it.

    A quasi-binomial GLM of the daily counts with a period indicator and weekday effects
    (`stats.rate_dispersion`): 1 for binomial scatter, more when days vary more than independent
    sessions would (the weekly totals' comparison is widened by its square root).
    """
    frames = []
    for later, span in enumerate((period.previous(), period)):
        frame = _daily_counts(con, span, event)
        frame["later"] = later
        frames.append(frame)
    days = pd.concat(frames, ignore_index=True).dropna(subset=["events"])
    if days.empty:
        return 1.0
    weekday = pd.to_datetime(days["day"]).dt.day_of_week
    dummies = [(weekday == w).astype(float) for w in range(1, 7) if (weekday == w).any()]
    design = np.column_stack([days["later"], *dummies])
    return rate_dispersion(days["events"].astype(int), days["sessions"].astype(int), design)


@recorded
def conversion_comparison(
    con: duckdb.DuckDBPyConnection, period: Period, *, key_events: Sequence[str] = KEY_EVENTS,
    payment_window_days: int = PAYMENT_WINDOW_DAYS,
) -> pd.DataFrame:
    """Each funnel rate against the previous period (`Period.previous`), with a two-sided test
    (`stats.rate_change`: score test widened for over-dispersion, Fisher's exact test for small counts).

    Returns:
        One row per rate: metric, label, period_start, period_end, previous_start, previous_end,
        numerator, denominator, rate, ci_low, ci_high, previous_numerator, previous_denominator,
        previous_rate, change_pt (percentage points), z, p_value, test (its method), dispersion,
        significant (p < 0.05; False when the test is undefined).
    """
    rev.require(con, "the conversion comparison", GA4_MODELS, GA4_HINT, GA4_TABLES)
    events = check_key_events(key_events)
    previous = period.previous()
    now = _funnel_counts(con, period, events, payment_window_days)
    before = _funnel_counts(con, previous, events, payment_window_days)
    rows = []
    for metric, label, step, denominator in RATES:
        x1, n1, x0, n0 = now[step], now[denominator], before[step], before[denominator]
        rate, low, high = wilson_rate(x1, n1)
        previous_rate = wilson_rate(x0, n0)[0]
        testable = None not in (x1, n1, x0, n0) and x1 <= n1 and x0 <= n0
        # first payments form one cohort per period, not a daily series: no dispersion estimate
        dispersion = funnel_dispersion(con, period, step) if testable and denominator == "sessions" else 1.0
        test = rate_change(x1, n1, x0, n0, dispersion=dispersion) if testable else None
        p = test.p_value if test else math.nan
        rows.append({
            "metric": metric, "label": label, "period_start": period.start, "period_end": period.end,
            "previous_start": previous.start, "previous_end": previous.end, "numerator": x1, "denominator": n1,
            "rate": rate, "ci_low": low, "ci_high": high,
            "previous_numerator": x0, "previous_denominator": n0, "previous_rate": previous_rate,
            "change_pt": (rate - previous_rate) * 100, "z": test.statistic if test else math.nan, "p_value": p,
            "test": test.method if test else "undefined", "dispersion": dispersion,
            "significant": bool(p < SIGNIFICANCE) if not math.isnan(p) else False,
        })
    return pd.DataFrame(rows)


@recorded
def conversion_trend(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    *,
    key_event: str = "prototype_request",
    grain: str = "auto",
) -> pd.DataFrame:
    """Sessions with the event per session by channel, per week (ISO, Monday start) or day, with Wilson
    intervals (the `key_events` column holds the sessions in which the event happened).

    Args:
        con: the warehouse.
        period: the days to cover (a week at an edge of the period only has the period's days).
        key_event: the GA4 event to count.
        grain: "week", "day", or "auto": days for periods up to two weeks, weeks for longer ones.

    Returns:
        bucket_start, channel, sessions, key_events, rate, ci_low, ci_high, partial (a week cut by the
        period's edges: fewer days than the others, not comparable with them).
    """
    if grain == "auto":
        grain = "day" if period.days <= 14 else "week"
    if grain not in ("week", "day"):
        raise ParamsError(f"grain must be 'week', 'day' or 'auto', got {grain!r}")
    rev.require(con, "the conversion trend", GA4_MODELS, GA4_HINT, GA4_TABLES)
    frame = con.execute(
        f"""
        with traffic as (
            select cast(date_trunc('{grain}', date_day) as date) as bucket_start, channel,
                cast(sum(sessions) as bigint) as sessions
            from marts.ga4_daily_traffic
            where date_day between $start and $end
            group by 1, 2
        ),
        events as (
            select cast(date_trunc('{grain}', date_day) as date) as bucket_start, channel,
                cast(sum(sessions_with_event) as bigint) as key_events
            from marts.ga4_daily_key_events
            where date_day between $start and $end and event_name = $event
            group by 1, 2
        )
        select traffic.bucket_start, traffic.channel, traffic.sessions,
            case when events.channel is null then 0 else events.key_events end as key_events
        from traffic
        left join events on traffic.bucket_start = events.bucket_start and traffic.channel = events.channel
        order by 1, 3 desc, 2
        """,
        {"start": period.start, "end": period.end, "event": key_event},
    ).df()
    bounds = [wilson_rate(None if pd.isna(x) else int(x), int(n))
              for x, n in zip(frame["key_events"], frame["sessions"], strict=True)]
    frame["rate"] = [b[0] for b in bounds]
    frame["ci_low"] = [b[1] for b in bounds]
    frame["ci_high"] = [b[2] for b in bounds]
    starts = pd.to_datetime(frame["bucket_start"]).dt.date
    frame["partial"] = (grain == "week") & ((starts < period.start) | (starts + timedelta(days=6) > period.end))
    return frame


def _pct(value: float) -> str:
    return f"{value * 100:.1f}"


def headline_text(comparison: pd.DataFrame, metric: str = "conversion.prototype_request_rate") -> str:
    """One quotable sentence about one rate of `conversion_comparison(...)`.

    E.g. "Prototype-request conversion was 3.1% (2.8-3.4%), up 0.4 pt on the previous period,
    significant (p = 0.012)."
    """
    row = comparison.set_index("metric").loc[metric]
    if math.isnan(row["rate"]):
        return f"{row['label']}: no data in the period to compute it."
    text = f"{row['label']} was {_pct(row['rate'])}% ({_pct(row['ci_low'])}-{_pct(row['ci_high'])}%)"
    if math.isnan(row["previous_rate"]):
        return text + ", with no previous-period data to compare."
    change = round(row["change_pt"], 1)
    direction = "unchanged" if change == 0 else f"{'up' if change > 0 else 'down'} {abs(change):.1f} pt"
    if math.isnan(row["p_value"]):
        verdict = "no significance test possible"
    else:
        verdict = f"{'significant' if row['significant'] else 'not significant'} (p = {row['p_value']:.3f})"
    dates = (f"{row['period_start']} to {row['period_end']} against {row['previous_start']} to "
             f"{row['previous_end']}")
    return f"{text}, {direction} on the previous period, {verdict} ({dates})."
