"""Growth KPIs: GA4 traffic, new paying customers and the first-payment cohort; what is loaded.

The funnel and its rates against the previous period are in `statex_bi.kpis.growth_revenue.conversion`.

Definitions (docs/metrics.md repeats them):

- *Sessions*, *engaged sessions*: GA4 sums over the period's days and channels.
- *Average session duration*: total session time / sessions over the period, each day-channel row's
  GA4 mean weighted by its sessions (never a mean of daily means).
- *Daily active users*: the mean over the period's days of GA4's daily active users (de-duplicated
  across channels); user counts do not add up across days.
- *Days*: GA4 days are the property's days, in its time zone (`ga4_time_zone`); payments are dated in
  the same zone in the funnel (new paying customers, the prototype cohort).
- *New paying customers* (`customers.new_paying`): customers whose first ever successful payment at any
  provider falls in the period; a customer who paid before the period is never new again.
- *First-payment rate* (a cohort): the prototypes first requested in the period (their first AI call,
  marts.ai_prototypes) that have a successful payment linked to them (payment metadata `prototype_id`)
  within `payment_window_days` (default 30) of the request, over those prototypes. The numerator is a
  subset of the denominator. The cohort is *mature* once the window of its last day has closed
  (period end + window <= the newest loaded payment); until then the rate can still rise.
- Every rate is a fraction 0-1 with a Wilson 95 % interval (ci_low, ci_high).

Revenue, failure rate and AOV are defined in `statex_bi.kpis.growth_revenue.revenue`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.exceptions import MissingDataError, ParamsError
from statex_bi.kpis.growth_revenue import revenue as rev
from statex_bi.kpis.stats import wilson_interval
from statex_bi.periods import Period
from statex_bi.reads import recorded

KEY_EVENTS = ("sign_up", "prototype_request")
GA4_MODELS = ["marts.ga4_daily_traffic", "marts.ga4_daily_key_events", "marts.ga4_daily_users"]
GA4_HINT = "load GA4 (`statex-bi ingest ga4`)"
GA4_TABLES = ["raw_ga4.traffic_by_channel", "raw_ga4.key_events_by_channel", "raw_ga4.daily_users"]
PAYMENT_WINDOW_DAYS = 30
AI_CALL_TABLES = (("raw_sentry", "gen_ai_spans"), ("raw_ai_calls", "calls"))


@dataclass(frozen=True)
class Availability:
    """Which parts of the growth report the warehouse can feed, and what to tell the reader if not."""

    ga4: bool
    payments: bool
    revenue: bool
    providers: list[str]
    notes: list[str] = field(default_factory=list)  # something is missing
    caveats: list[str] = field(default_factory=list)  # everything is there, read it with this in mind


def ga4_warnings(con: duckdb.DuckDBPyConnection, period: Period) -> dict[str, Any]:
    """GA4's own warnings over the period's days: days on which a report's response said rows were withheld
    for privacy (thresholding) or rolled into "(other)", and the sessions the "(other)" channel holds.

    Returns:
        thresholded_days, other_row_days, other_sessions (0 when nothing is flagged or loaded), and
        `notes`: one sentence per warning, for the report to show beside the GA4 numbers.
    """
    found: dict[str, Any] = {"thresholded_days": 0, "other_row_days": 0, "other_sessions": 0, "notes": []}
    if not warehouse.table_exists(con, "staging", "stg_ga4__report_flags"):
        return found
    days = con.execute("""
        select count(distinct date) filter (subject_to_thresholding),
               count(distinct date) filter (data_loss_from_other_row)
        from staging.stg_ga4__report_flags where date between ? and ?""", [period.start, period.end]).fetchall()[0]
    found["thresholded_days"], found["other_row_days"] = int(days[0]), int(days[1])
    if warehouse.table_exists(con, "marts", "ga4_daily_traffic"):
        found["other_sessions"] = int(con.execute(
            "select coalesce(sum(sessions), 0) from marts.ga4_daily_traffic where channel = '(other)' "
            "and date_day between ? and ?", [period.start, period.end]).fetchall()[0][0])
    if found["thresholded_days"]:
        found["notes"].append(
            f"GA4 withheld data for privacy (thresholding) on {found['thresholded_days']} of the period's "
            f"{period.days} days: users, sessions and key events on those days are lower bounds.")
    if found["other_row_days"] or found["other_sessions"]:
        found["notes"].append(
            f"GA4 rolled rows into \"(other)\" on {found['other_row_days']} of the period's days: "
            f"{found['other_sessions']:,} sessions are counted in totals but belong to no named channel.")
    return found


def availability(con: duckdb.DuckDBPyConnection) -> Availability:
    """What is loaded for the growth report.

    Returns:
        ga4 (traffic and key events), payments (first payments, failure rates), revenue (needs fx too),
        the loaded payment providers, one note per missing part, and caveats about what is loaded.
    """
    def built(models: list[str]) -> bool:
        return all(warehouse.table_exists(con, *m.split(".")) for m in models)

    providers = rev.loaded_providers(con)
    ga4 = built(GA4_MODELS) and warehouse.loaded(con, *GA4_TABLES)
    payments = bool(providers) and built(["core.payments"])
    revenue_ok = payments and built(rev.REVENUE_MODELS) and warehouse.loaded(con, *rev.FX_TABLES)
    notes = []
    if not ga4:
        notes.append(f"GA4 is not loaded: traffic, key events and conversion rates are missing; {GA4_HINT}.")
    if not providers:
        notes.append(
            "No payment provider is loaded: first payments, revenue and failure rates are missing; "
            "load one with `statex-bi ingest stripe` (or paypal, coinbase)."
        )
    else:
        absent = [p for p in rev.PROVIDERS if p not in providers]
        if absent:
            notes.append(
                f"Not loaded: {', '.join(absent)}. Revenue and failure rates cover {', '.join(providers)} only."
            )
        if not revenue_ok:
            notes.append("ECB exchange rates are not loaded, so revenue cannot be converted: `statex-bi ingest fx`.")
    caveats = []
    if "coinbase" in providers:
        caveats.append("Coinbase Commerce reports no fees in its charges API: Coinbase fees count as 0.")
    return Availability(ga4, payments, revenue_ok, providers, notes, caveats)


def check_key_events(key_events: Sequence[str]) -> tuple[str, str]:
    events = tuple(key_events)
    if len(events) != 2 or not all(isinstance(e, str) and e for e in events):
        raise ParamsError(
            f"key_events must name the sign-up and prototype-request GA4 events in funnel order, got {key_events!r}"
        )
    return events[0], events[1]


@recorded
def traffic_summary(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """Sessions, weighted average session duration and mean daily active users of the period.

    Returns:
        One row: sessions, engaged_sessions, avg_session_duration_s (NaN without sessions),
        daily_active_users (NaN without days), days_with_users.
    """
    rev.require(con, "traffic", GA4_MODELS, GA4_HINT, GA4_TABLES)
    return con.execute(
        """
        with traffic as (
            select
                cast(coalesce(sum(sessions), 0) as bigint) as sessions,
                cast(coalesce(sum(engaged_sessions), 0) as bigint) as engaged_sessions,
                sum(session_duration_s) / nullif(sum(sessions), 0) as avg_session_duration_s
            from marts.ga4_daily_traffic
            where date_day between $start and $end
        ),
        users as (
            select avg(active_users) as daily_active_users, count(*) as days_with_users
            from marts.ga4_daily_users
            where date_day between $start and $end
        )
        select * from traffic cross join users
        """,
        {"start": period.start, "end": period.end},
    ).df()


@recorded
def daily_traffic(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """GA4 traffic per day and channel.

    Returns:
        date_day, channel, sessions, engaged_sessions, active_users, avg_session_duration_s.
    """
    rev.require(con, "daily traffic", GA4_MODELS, GA4_HINT, GA4_TABLES)
    return con.execute(
        """
        select date_day, channel, sessions, engaged_sessions, active_users, avg_session_duration_s
        from marts.ga4_daily_traffic
        where date_day between ? and ?
        order by date_day, sessions desc, channel
        """,
        [period.start, period.end],
    ).df()


@recorded
def first_payment_cohort(
    con: duckdb.DuckDBPyConnection, period: Period, *, payment_window_days: int = PAYMENT_WINDOW_DAYS
) -> pd.DataFrame:
    """The period's prototype cohort and how many of its prototypes were paid for within the window.

    Returns:
        One row: cohort_start, cohort_end, prototypes (first requested in the period), paid (with a
        successful payment linked by metadata prototype_id within the window), rate, ci_low, ci_high,
        payment_window_days, window_closes (the day after which the last cohort day's window is over),
        data_as_of (newest loaded payment, NaT when none), days_observed (of the last day's window),
        window_closed (the cohort is mature). NULL counts when AI calls or payments are not loaded.
    """
    window = int(payment_window_days)
    if window < 1:
        raise ParamsError(f"payment_window_days must be a whole number of days >= 1, got {payment_window_days!r}")
    closes = period.end + timedelta(days=window)
    row = {"cohort_start": period.start, "cohort_end": period.end, "prototypes": None, "paid": None,
           "payment_window_days": window, "window_closes": closes, "data_as_of": None}
    if _prototypes_loaded(con) and rev.loaded_providers(con) and warehouse.table_exists(con, "core", "payments"):
        counts = con.execute(
            f"""
            with cohort as (
                select prototype_id, first_call_at
                from marts.ai_prototypes
                where {_local_day("first_call_at")} between $start and $end
            ),
            paid as (
                select distinct cohort.prototype_id
                from cohort
                join core.payments
                    on case when json_valid(payments.metadata_json)
                        then json_extract_string(payments.metadata_json, '$.prototype_id') end = cohort.prototype_id
                where payments.status = 'succeeded'
                    and payments.created_at >= cohort.first_call_at
                    and payments.created_at < cohort.first_call_at + to_days($window)
            )
            select (select count(*) from cohort), (select count(*) from paid),
                   (select cast(max(created_at) as date) from core.payments)
            """,
            {"start": period.start, "end": period.end, "window": window, "tz": ga4_time_zone(con)},
        ).fetchall()[0]
        row.update(prototypes=int(counts[0]), paid=int(counts[1]), data_as_of=counts[2])
    rate, low, high = wilson_rate(row["paid"], row["prototypes"])
    as_of = row["data_as_of"]
    observed = None if as_of is None else max(0, min(window, (as_of - period.end).days))
    row.update(rate=rate, ci_low=low, ci_high=high, days_observed=observed,
               window_closed=as_of is not None and as_of >= closes)
    frame = pd.DataFrame([row])
    for column in ("prototypes", "paid", "days_observed"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _prototypes_loaded(con: duckdb.DuckDBPyConnection) -> bool:
    """AI calls (which name the prototypes) are loaded: marts.ai_prototypes is built (empty) without them."""
    loaded = any(warehouse.table_exists(con, schema, table) for schema, table in AI_CALL_TABLES)
    return loaded and warehouse.table_exists(con, "marts", "ai_prototypes")


def maturity_note(cohort: pd.DataFrame) -> str:
    """A sentence on the cohort's maturity, for the report: whether its payment window has closed."""
    row = cohort.iloc[0]
    window = int(row["payment_window_days"])
    if pd.isna(row["prototypes"]):
        return "The first-payment cohort needs AI calls (prototypes) and payments, which are not both loaded."
    text = (f"First-payment cohort: {int(row['prototypes']):,} prototypes first requested {row['cohort_start']} to "
            f"{row['cohort_end']}, each followed for {window} days.")
    if row["window_closed"]:
        return text + f" The window closed on {row['window_closes']}: the rate is final."
    observed = 0 if pd.isna(row["days_observed"]) else int(row["days_observed"])
    return (text + f" Not mature: payments are loaded up to {row['data_as_of'] or 'nothing'}, {observed} of the "
            f"{window} days after the last request; the window closes on {row['window_closes']} and the rate can "
            "still rise.")


def ga4_time_zone(con: duckdb.DuckDBPyConnection) -> str:
    """The GA4 property's time zone, in which GA4 cuts its days ("UTC" until GA4 is loaded).

    Raises:
        MissingDataError: the loaded properties state different time zones.
    """
    if not warehouse.table_exists(con, "marts", "ga4_property"):
        return "UTC"
    zones = sorted({row[0] for row in con.execute("select time_zone from marts.ga4_property").fetchall() if row[0]})
    if len(zones) > 1:
        raise MissingDataError("the GA4 time zone", ["marts.ga4_property"],
                               f"the loaded GA4 properties use several time zones ({', '.join(zones)})")
    return zones[0] if zones else "UTC"


def _local_day(column: str) -> str:
    """SQL: the day of naive-UTC `column` in the time zone $tz."""
    return f"cast(timezone($tz, {column} at time zone 'UTC') as date)"


def new_paying_customers(con: duckdb.DuckDBPyConnection, period: Period) -> int | None:
    """Customers whose first ever successful payment is in the period, dated in the GA4 property's time
    zone like the sessions (None when no provider is loaded)."""
    if not rev.loaded_providers(con) or not warehouse.table_exists(con, "core", "payments"):
        return None
    return int(con.execute(
        f"select count(*) from core.payments where is_first_successful and {_local_day('created_at')} "
        "between $start and $end",
        {"start": period.start, "end": period.end, "tz": ga4_time_zone(con)},
    ).fetchall()[0][0])


def wilson_rate(numerator: int | None, denominator: int | None) -> tuple[float, float, float]:
    """numerator / denominator with its Wilson 95 % interval; NaNs when either is unknown or 0 sessions."""
    if numerator is None or denominator is None or denominator == 0:
        return math.nan, math.nan, math.nan
    low, high = wilson_interval(min(numerator, denominator), denominator)
    return numerator / denominator, low, high
