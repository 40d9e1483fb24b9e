"""Web and API performance: routes against the seed's targets, Web Vitals, Sentry events and issues.

Every function is `(con, period, **params) -> small DataFrame` over the marts `api_route_performance`,
`web_vitals`, `sentry_issues` and `sentry_event_volumes` (statex_bi/models), plus the report's
`headline`, `notes` and `metrics()`.

Percentiles of a period are never formed from daily percentiles. The connector loads Sentry's own
p50/p95 (routes) and p75 (vitals) for every day, ISO week and calendar month: a report period that is
one of those is exact (`basis = exact`). For any other period the tables show the highest daily value
(`basis = at most`), a true upper bound (at that value every day's distribution, and so their mixture,
has reached the percentile), and the percentile KPIs are not published. Counts, error rates and
throughput add up over days and are always exact.
"""

from __future__ import annotations

import math
import warnings
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from statex_bi import targets, warehouse
from statex_bi.kpis.stats import wilson_interval
from statex_bi.kpis.verdicts import FAILS, HOLDS, INCONCLUSIVE, judge
from statex_bi.metrics.record import Metric
from statex_bi.order_statistics import quantile_ranks
from statex_bi.periods import Period, exact_grain
from statex_bi.reads import recorded

ALL = "(all)"
SOURCE = "sentry"
VITALS = ("lcp", "inp", "cls")
EXACT, UPPER_BOUND = "exact", "at most"
NOT_MEASURED = "not measured"


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pd.DataFrame:
    return con.execute(sql, params).df()


def _bounds(period: Period) -> list[Any]:
    return [period.start, period.end + timedelta(days=1)]


def _target(value: float | None, name: str) -> float:
    """A parameter, else the plan's target of that name (params/targets.yaml)."""
    return targets.values()[name] if value is None else float(value)


def p95_verdict(low: float | None, high: float | None, target: float) -> str:
    """The p95 target's three-way verdict from its 95 % interval (kpis.verdicts.judge, "at most": the
    target itself is met): holds when the whole interval is at or under the target, fails when all of it
    is above, inconclusive otherwise (an unbounded side counts as reaching past the target)."""
    low = -math.inf if low is None or pd.isna(low) else low
    high = math.inf if high is None or pd.isna(high) else high
    return judge("at_most", target, math.nan, (low, high, "95% CI"))


@recorded
def route_table(con: duckdb.DuckDBPyConnection, period: Period, p95_target_ms: float | None = None,
                max_error_rate: float | None = None, **_: Any) -> pd.DataFrame:
    """One row per route, `(all)` first: requests, throughput, error rate, p50/p95 with the p95's interval,
    the average, and the targets met.

    Returns:
        route, requests, throughput_rpm (requests / minutes in the period), error_rate (failed / requests),
        p50_ms, p95_ms, p95_low_ms and p95_high_ms (the p95's 95 % order-statistic interval, from Sentry's
        quantiles: sources.sentry.performance.quantile_interval; NaN for a side no order statistic bounds;
        for a period that is no day, week or month the lowest and highest daily bound, each day's
        interval being 95 %, not a joint one), avg_ms (the seed's "average response time": Sentry's
        mean, exact for any period), basis (exact | at most), p95_verdict (holds | fails | inconclusive
        against the target, from the interval), meets_p95_target (the p95 itself <= target),
        meets_error_target (<= the maximum), small_sample (too few requests for an order statistic to
        bound the p95 from above at 95 %: fewer than 72, so its verdict cannot hold).
    """
    grain = exact_grain(period)
    minutes = period.days * 1440.0
    if grain:
        sql = """
            select route, requests, failed_requests / requests as error_rate, p50_ms, p95_ms, p95_low_ms,
                   p95_high_ms, avg_ms, 'exact' as basis
            from marts.api_route_performance
            where grain = ? and period_start = ? and period_end = ? and requests > 0"""
        frame = _frame(con, sql, [grain, *_bounds(period)])
    else:
        # Only the top routes have daily rows: their sums cover them exactly; the percentiles are bounds;
        # an interval side is missing when any day's is (min/max would skip it).
        sql = """
            select route, sum(requests) as requests, sum(failed_requests) / sum(requests) as error_rate,
                   max(p50_ms) as p50_ms, max(p95_ms) as p95_ms,
                   case when count(p95_low_ms) = count(*) then min(p95_low_ms) end as p95_low_ms,
                   case when count(p95_high_ms) = count(*) then max(p95_high_ms) end as p95_high_ms,
                   sum(avg_ms * requests) / sum(requests) as avg_ms, 'at most' as basis
            from marts.api_route_performance
            where grain = 'day' and period_start >= ? and period_start < ?
            group by route having sum(requests) > 0"""
        frame = _frame(con, sql, _bounds(period))
    frame["throughput_rpm"] = frame["requests"] / minutes
    p95_target_ms = _target(p95_target_ms, "api_p95_ms")
    max_error_rate = _target(max_error_rate, "api_error_rate")
    frame["p95_verdict"] = [p95_verdict(low, high, p95_target_ms)
                            for low, high in zip(frame["p95_low_ms"], frame["p95_high_ms"], strict=True)]
    # one edge convention for every target (kpis.verdicts): the target itself is met
    frame["meets_p95_target"] = frame["p95_ms"] <= p95_target_ms
    frame["meets_error_target"] = frame["error_rate"] <= max_error_rate
    frame["small_sample"] = [quantile_ranks(int(n), 0.95)[1] is None for n in frame["requests"]]
    frame["_order"] = (frame["route"] != ALL).astype(int)
    frame = frame.sort_values(["_order", "p95_ms"], ascending=[True, False]).drop(columns="_order")
    columns = ["route", "requests", "throughput_rpm", "error_rate", "p50_ms", "p95_ms", "p95_low_ms", "p95_high_ms",
               "avg_ms", "basis", "p95_verdict", "meets_p95_target", "meets_error_target", "small_sample"]
    return frame[columns].reset_index(drop=True)


@recorded
def worst_routes(con: duckdb.DuckDBPyConnection, period: Period, by: str = "p95_ms", limit: int = 5,
                 **params: Any) -> pd.DataFrame:
    """The `limit` routes with the highest `by` (p95_ms or error_rate), without the `(all)` row."""
    routes = route_table(con, period, **params)
    return routes[routes["route"] != ALL].sort_values(by, ascending=False).head(limit).reset_index(drop=True)


@recorded
def daily_trend(con: duckdb.DuckDBPyConnection, period: Period, weeks: int = 8, **_: Any) -> pd.DataFrame:
    """All routes per day over the `weeks` weeks up to the period's end: throughput, p95, error rate.

    Days without requests are left out (Sentry keeps no row for them), and so is every day after the
    period's end: the chart never shows a partial day as a drop.
    """
    sql = """
        select period_start as day, requests / 1440.0 as throughput_rpm, p95_ms,
               failed_requests / requests as error_rate
        from marts.api_route_performance
        where grain = 'day' and route = ? and period_start > ? and period_start <= ? and requests > 0
        order by day"""
    return _frame(con, sql, [ALL, period.end - timedelta(weeks=weeks), period.end])


@recorded
def daily_error_rates(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> pd.DataFrame:
    """Each day of the period, per route (the top routes Sentry's daily series keep, and `(all)`): requests
    and failed requests, for the daily error-rate alert: a one-day incident is diluted in a week's rate.

    Returns:
        day, route, requests, failed (failure_rate x requests, rounded), error_rate.
    """
    sql = """
        select period_start as day, route, requests,
               least(round(failed_requests), requests)::bigint as failed,
               failed_requests / requests as error_rate
        from marts.api_route_performance
        where grain = 'day' and period_start >= ? and period_start < ? and requests > 0
        order by day, route"""
    return _frame(con, sql, _bounds(period))


@recorded
def vitals_table(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> pd.DataFrame:
    """One row per page and device class, `(all)` rows included: p75 of LCP, INP, CLS and whether all
    three are good (web.dev thresholds: LCP <= 2.5 s, INP <= 200 ms, CLS <= 0.1).

    Returns:
        page, device, page_loads, lcp_p75_ms, inp_p75_ms, cls_p75, their 95 % order-statistic intervals
        (lcp_p75_low_ms, lcp_p75_high_ms, inp_..., cls_p75_low, cls_p75_high: from Sentry's quantiles,
        sources.sentry.performance.quantile_interval; NaN for an unbounded side; for a period that is no
        day, week or month the lowest and highest daily bound), lcp_good, inp_good, cls_good, passes
        (NA when a vital has no samples and the others are good), status ("passes", "fails",
        "not measured": web.dev's assessment of the p75 values), verdict (the same assessment with each p75's
        interval, kpis.verdicts: "holds" when every vital's interval is good, "fails" when one's is wholly
        above its threshold, "inconclusive" when an interval straddles one, "not measured"), basis.
    """
    grain = exact_grain(period)
    where = ("grain = ? and period_start = ? and period_end = ?" if grain
             else "grain = 'day' and period_start >= ? and period_start < ?")
    params = [grain, *_bounds(period)] if grain else _bounds(period)
    sql = f"""
        with rows as (
            select page, device, metric, p75, p75_low, p75_high, samples, good_threshold
            from marts.web_vitals where {where}
        ),
        per_metric as (
            select page, device, metric, max(p75) as p75, sum(samples) as samples,
                   case when count(p75_low) = count(*) then min(p75_low) end as p75_low,
                   case when count(p75_high) = count(*) then max(p75_high) end as p75_high,
                   max(p75) <= any_value(good_threshold) as good, any_value(good_threshold) as threshold
            from rows group by page, device, metric
        )
        select page, device,
               max(samples) filter (where metric = 'lcp') as page_loads,
               max(p75) filter (where metric = 'lcp') as lcp_p75_ms,
               max(p75) filter (where metric = 'inp') as inp_p75_ms,
               max(p75) filter (where metric = 'cls') as cls_p75,
               max(p75_low) filter (where metric = 'lcp') as lcp_p75_low_ms,
               max(p75_high) filter (where metric = 'lcp') as lcp_p75_high_ms,
               max(p75_low) filter (where metric = 'inp') as inp_p75_low_ms,
               max(p75_high) filter (where metric = 'inp') as inp_p75_high_ms,
               max(p75_low) filter (where metric = 'cls') as cls_p75_low,
               max(p75_high) filter (where metric = 'cls') as cls_p75_high,
               bool_and(good) filter (where metric = 'lcp') as lcp_good,
               bool_and(good) filter (where metric = 'inp') as inp_good,
               bool_and(good) filter (where metric = 'cls') as cls_good,
               any_value(threshold) filter (where metric = 'lcp') as lcp_threshold,
               any_value(threshold) filter (where metric = 'inp') as inp_threshold,
               any_value(threshold) filter (where metric = 'cls') as cls_threshold
        from per_metric group by page, device
    """
    frame = _frame(con, sql, params)
    # A vital without samples is not measured, not failed: a page passes when all three are good, fails
    # when a measured one is not, and is "not measured" (passes NA) otherwise.
    goods = frame[["lcp_good", "inp_good", "cls_good"]].astype("boolean")
    failed = (goods == False).any(axis=1)  # noqa: E712 (NA-aware comparison)
    passes = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    passes[failed] = False
    passes[~failed & goods.notna().all(axis=1)] = True
    frame["passes"] = passes
    frame["status"] = passes.map({True: "passes", False: "fails"}).fillna(NOT_MEASURED)
    frame["verdict"] = [_vitals_verdict(row) for row in frame.to_dict("records")]
    frame = frame.drop(columns=[f"{vital}_threshold" for vital in ("lcp", "inp", "cls")])
    frame["basis"] = EXACT if grain else UPPER_BOUND
    frame["_order"] = list(zip(frame["page"] != ALL, frame["device"] != ALL, strict=True))
    return frame.sort_values(["_order", "page", "device"]).drop(columns="_order").reset_index(drop=True)


VITALS = (("lcp", "lcp_p75_ms", "lcp_p75_low_ms", "lcp_p75_high_ms"),
          ("inp", "inp_p75_ms", "inp_p75_low_ms", "inp_p75_high_ms"),
          ("cls", "cls_p75", "cls_p75_low", "cls_p75_high"))


def _vitals_verdict(row: dict[str, Any]) -> str:
    """A page's Core Web Vitals verdict from each p75's 95 % interval against its good threshold (an unbounded
    side, NaN, can neither hold nor fail): fails when one vital fails, holds when all three hold."""
    verdicts = []
    for vital, value, low, high in VITALS:
        if not pd.isna(row[value]):
            low_high = [math.nan if pd.isna(row[side]) else float(row[side]) for side in (low, high)]
            verdicts.append(judge("at_most", row[f"{vital}_threshold"], row[value], (*low_high, "95% interval")))
    if FAILS in verdicts:
        return FAILS
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return HOLDS if len(verdicts) == len(VITALS) else NOT_MEASURED


@recorded
def good_share(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> pd.DataFrame:
    """Per metric: the share of samples (all pages and devices) rated good. Exact for any period: counts add up.

    Returns:
        metric, samples, good_samples, good_share.
    """
    sql = """
        select metric, sum(samples) as samples, sum(good_samples) as good_samples,
               sum(good_samples) / sum(samples) as good_share
        from marts.web_vitals
        where grain = 'day' and page = ? and device = ? and period_start >= ? and period_start < ?
        group by metric having sum(samples) > 0 order by metric"""
    return _frame(con, sql, [ALL, ALL, *_bounds(period)])


@recorded
def event_volumes(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> pd.DataFrame:
    """Sentry events by category and outcome (what the quota is spent on) and each outcome's share.

    Returns:
        category, outcome, events (items: attachments counted, never their bytes), attachment_bytes (bytes of
        the attachments; NULL for other categories), share_of_category.
    """
    sql = """
        select category, outcome, sum(events) as events, sum(attachment_bytes) as attachment_bytes,
               sum(events) / sum(sum(events)) over (partition by category) as share_of_category
        from marts.sentry_event_volumes where day >= ? and day < ?
        group by category, outcome order by category, events desc"""
    return _frame(con, sql, _bounds(period))


def _kaplan_meier_median(done: np.ndarray, still_open: np.ndarray) -> tuple[float, float, float]:
    """Median time to resolve and its 95 % interval (log-log) from resolved and right-censored (still
    open) durations; inf where the survival curve (or its band) never falls to one half."""
    if len(done) == 0:
        return math.nan, math.nan, math.nan
    survival = stats.ecdf(stats.CensoredData(uncensored=done, right=still_open)).sf
    with warnings.catch_warnings():
        # Where the curve is 0 or 1 the log-log band is undefined (NaN), read below as no bound: expected.
        warnings.filterwarnings("ignore", "The confidence interval is undefined", RuntimeWarning)
        band = survival.confidence_interval(0.95, method="log-log")

    def first_half(probabilities: np.ndarray) -> float:
        below = probabilities <= 0.5
        return float(survival.quantiles[np.argmax(below)]) if below.any() else math.inf

    return (first_half(survival.probabilities), first_half(band.low.probabilities),
            first_half(band.high.probabilities))


@recorded
def resolution(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> pd.DataFrame:
    """Issues resolved in the period, those still open at its end, and the time it takes to resolve one.

    *Time to resolve* (first seen -> the resolving activity) is a Kaplan-Meier median over the issues
    resolved in the period and those open at its end (first seen by then, not ignored), the open ones
    right-censored at their age at the period's end: an issue open for weeks says resolution takes at
    least that long, which a mean over the resolved ones alone leaves out.

    Returns:
        One row: resolved (with a known time), censored (open at the end), km_median_hours, km_ci_low,
        km_ci_high (95 %, log-log; inf when the curve or its band never falls to one half),
        mttr_hours (mean over the resolved ones only), median_hours, p90_hours, resolved_without_activity
        (status resolved, last seen in the period, no resolution time kept), unresolved_at_end (first
        seen by the period's end and not resolved by then).
    """
    sql = """
        with resolved as (
            select hours_to_resolve from marts.sentry_issues where resolved_at >= ? and resolved_at < ?
        )
        select (select count(*) from resolved) as resolved,
               (select avg(hours_to_resolve) from resolved) as mttr_hours,
               (select median(hours_to_resolve) from resolved) as median_hours,
               (select quantile_cont(hours_to_resolve, 0.9) from resolved) as p90_hours,
               (select count(*) from marts.sentry_issues where status = 'resolved' and resolved_at is null
                    and last_seen >= ? and last_seen < ?) as resolved_without_activity,
               (select count(*) from marts.sentry_issues where first_seen < ? and status != 'ignored'
                    and (status = 'unresolved' or resolved_at >= ?)) as unresolved_at_end
    """
    start, stop = _bounds(period)
    frame = _frame(con, sql, [start, stop, start, stop, stop, stop])
    durations = _frame(con, """
        select hours_to_resolve as hours, true as resolved from marts.sentry_issues
        where resolved_at >= ? and resolved_at < ? and hours_to_resolve is not null
        union all
        select date_diff('second', first_seen, ?::timestamp) / 3600.0, false from marts.sentry_issues
        where first_seen < ? and status != 'ignored' and (status = 'unresolved' or resolved_at >= ?)
    """, [start, stop, stop, stop, stop])
    done = durations.loc[durations["resolved"], "hours"].to_numpy(float)
    still_open = durations.loc[~durations["resolved"], "hours"].to_numpy(float)
    median, low, high = _kaplan_meier_median(done, still_open)
    frame.insert(1, "censored", len(still_open))
    frame.insert(2, "km_median_hours", median)
    frame.insert(3, "km_ci_low", low)
    frame.insert(4, "km_ci_high", high)
    return frame


@recorded
def mttr_trend(con: duckdb.DuckDBPyConnection, period: Period, weeks: int = 12, **_: Any) -> pd.DataFrame:
    """Mean and median hours to resolve of the issues resolved in each ISO week up to the period's end."""
    sql = """
        select date_trunc('week', resolved_at)::date as week, count(*) as resolved,
               avg(hours_to_resolve) as mttr_hours, median(hours_to_resolve) as median_hours
        from marts.sentry_issues
        where resolved_at >= ? and resolved_at < ?
        group by week order by week"""
    monday = period.end - timedelta(days=period.end.weekday())
    return _frame(con, sql, [monday - timedelta(weeks=weeks - 1), period.end + timedelta(days=1)])


@recorded
def oldest_unresolved(con: duckdb.DuckDBPyConnection, period: Period, limit: int = 10, **_: Any) -> pd.DataFrame:
    """The issues still unresolved now that were first seen by the period's end, oldest first."""
    sql = """
        select short_id, title, level, first_seen, last_seen, event_count, user_count,
               date_diff('hour', first_seen, ?::timestamp) / 24.0 as age_days
        from marts.sentry_issues
        where status = 'unresolved' and first_seen < ?
        order by first_seen limit ?"""
    stop = period.end + timedelta(days=1)
    return _frame(con, sql, [stop, stop, limit])


def notes(con: duckdb.DuckDBPyConnection, period: Period, traces_sample_rate: float | None = None,
          **_: Any) -> list[str]:
    """What the reader must know: data not loaded, periods whose percentiles are bounds, what request counts are.

    Args:
        traces_sample_rate: the app's Sentry SDK `tracesSampleRate` (0-1), stated beside the request counts.
    """
    if not warehouse.table_exists(con, "raw_sentry", "route_performance"):
        return ["Sentry performance data is not loaded (`statex-bi ingest sentry`): every number below is empty."]
    rate = (f"the app samples {traces_sample_rate:.0%} of traces (param `traces_sample_rate`)"
            if traces_sample_rate is not None else "the app's sample rate is not stated (param `traces_sample_rate`)")
    found = [f"Requests and throughput are Sentry's extrapolated counts, not raw spans: each sampled `http.server` "
             f"span weighted by 1 / its sample rate (Sentry's `count()` with extrapolation on); {rate}."]
    if traces_sample_rate is not None and traces_sample_rate < 1:
        found.append(f"The p95 intervals take those counts as the requests measured: with {traces_sample_rate:.0%} "
                     "of traces sampled they are narrower than the spans Sentry measured support.")
    if exact_grain(period) is None:
        found.append(f"{period} is not a calendar week or month: percentiles below are the highest daily "
                     "value (an upper bound) and are not published as KPIs.")
    newest = loaded_until(con)
    if newest is None or newest < period.end:
        found.append(f"Sentry data reaches {newest or 'no day'}; the period ends {period.end}.")
    return found


def _ms_interval(low: Any, high: Any) -> str:
    """"95% CI 80 to 96 ms", with "no bound" for a side no order statistic bounds."""
    def side(value: Any) -> str:
        return "no bound" if value is None or pd.isna(value) else f"{value:,.0f}"
    return f"95% CI {side(low)} to {side(high)} ms"


def headline(con: duckdb.DuckDBPyConnection, period: Period, p95_target_ms: float | None = None,
             **params: Any) -> str:
    """e.g. 'API p95 response time was 87 ms (95% CI 85 to 90 ms; average 41 ms), target at most 100 ms: holds,
    with 0.42% errors; 2 of 8 routes missed the target (1 inconclusive); 3 of 5 measured pages pass ...'.

    A route misses the target when its whole interval is above it (three-way verdict, `p95_verdict`).
    """
    p95_target_ms = _target(p95_target_ms, "api_p95_ms")
    routes = route_table(con, period, p95_target_ms=p95_target_ms, **params)
    overall = routes[routes["route"] == ALL]
    if overall.empty:
        return "No API requests were recorded in this period."
    row = overall.iloc[0]
    bound = "at most " if row["basis"] == UPPER_BOUND else ""
    others = routes[routes["route"] != ALL]
    missed = int((others["p95_verdict"] == FAILS).sum())
    unsure = int((others["p95_verdict"] == INCONCLUSIVE).sum())
    text = (f"API p95 response time was {bound}{row['p95_ms']:,.0f} ms "
            f"({_ms_interval(row['p95_low_ms'], row['p95_high_ms'])}; average {row['avg_ms']:,.0f} ms), "
            f"target at most {p95_target_ms:,.0f} ms: {row['p95_verdict']}, with {row['error_rate']:.2%} errors; "
            f"{missed} of {len(others)} routes missed the target" + (f" ({unsure} inconclusive)" if unsure else ""))
    vitals = vitals_table(con, period)
    pages = vitals[(vitals["page"] != ALL) & (vitals["device"] == "mobile")]
    if not pages.empty:
        measured = pages[pages["passes"].notna()]
        unsure = int((measured["verdict"] == INCONCLUSIVE).sum())
        text += (f"; {int(measured['passes'].sum())} of {len(measured)} measured pages pass all Core Web Vitals "
                 "on mobile" + (f" ({unsure} inconclusive within the 95% intervals)" if unsure else ""))
    return text + "."


def _finite(value: Any) -> float | None:
    """A finite number as float, else None (NaN: undefined; inf: an unbounded interval end)."""
    return float(value) if value is not None and not pd.isna(value) and math.isfinite(value) else None


def metrics(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[Metric]:
    """The KPIs the report publishes (docs/metrics.md), for `publish.publish`."""
    records: list[Metric] = []
    exact = exact_grain(period) is not None
    why_bound = "percentiles of a period that is not a day, ISO week or calendar month are only bounded"
    for row in route_table(con, period, **params).itertuples():
        route = "all" if row.route == ALL else row.route
        tags = {"route": route, "requests": int(row.requests)}
        failed = min(int(round(row.error_rate * row.requests)), int(row.requests))
        low, high = wilson_interval(failed, int(row.requests))
        spread = {"ci_low": _finite(row.p95_low_ms), "ci_high": _finite(row.p95_high_ms),
                  "avg_ms": _finite(row.avg_ms)} if exact else {}
        records += [
            Metric("api.p95_ms", float(row.p95_ms), "ms", SOURCE, tags | spread, reason="" if exact else why_bound),
            Metric("api.throughput_rpm", float(row.throughput_rpm), "number", SOURCE, tags),
            Metric("api.error_rate", float(row.error_rate), "fraction", SOURCE,
                   tags | {"failed": failed, "ci_low": low, "ci_high": high}),
        ]
    for row in daily_error_rates(con, period).itertuples():
        records.append(Metric("api.error_rate.daily", float(row.error_rate), "fraction", SOURCE,
                              {"route": "all" if row.route == ALL else row.route, "day": f"{row.day:%Y-%m-%d}",
                               "requests": int(row.requests), "failed": int(row.failed)}))
    vitals = vitals_table(con, period)
    for row in vitals[vitals["page"] == ALL].itertuples():
        device = "all" if row.device == ALL else row.device
        tags = {"device": device, "page_loads": None if pd.isna(row.page_loads) else int(row.page_loads)}
        for name, column, low, high, unit in (
                ("web_vitals.lcp_p75_ms", "lcp_p75_ms", "lcp_p75_low_ms", "lcp_p75_high_ms", "ms"),
                ("web_vitals.inp_p75_ms", "inp_p75_ms", "inp_p75_low_ms", "inp_p75_high_ms", "ms"),
                ("web_vitals.cls_p75", "cls_p75", "cls_p75_low", "cls_p75_high", "number")):
            value = getattr(row, column)
            spread = {"ci_low": _finite(getattr(row, low)), "ci_high": _finite(getattr(row, high))} if exact else {}
            records.append(Metric(name, None if pd.isna(value) else float(value), unit, SOURCE, tags | spread,
                                  reason="" if exact else why_bound))
    for row in good_share(con, period).itertuples():
        records.append(Metric("web_vitals.good_share", float(row.good_share), "fraction", SOURCE,
                              {"metric": row.metric, "samples": int(row.samples)}))
    held = sentry_days(con)
    if held is None or held[0] > period.end or held[1] < period.start:
        # Before Sentry's first loaded day, or after its last: no data, so no count (never a made-up 0).
        why = (f"Sentry holds no data for the period (its loaded days: {held[0]} to {held[1]})" if held
               else "Sentry is not loaded (`statex-bi ingest sentry`)")
        records.append(Metric("sentry.events", None, "count", SOURCE, {}, "COUNTER", why))
        records.append(Metric("sentry.unresolved_issues", None, "count", SOURCE,
                              {"as_of": (period.end + timedelta(days=1)).isoformat()}, reason=why))
        return records
    for row in event_volumes(con, period).itertuples():
        known = not pd.isna(row.events)
        records.append(Metric("sentry.events", float(row.events) if known else None, "count", SOURCE,
                              {"category": row.category, "outcome": row.outcome}, "COUNTER",
                              "" if known else "attachment counts were not loaded (stats_v2 sum(times_seen)); "
                              "reload the period"))
    issues = resolution(con, period).iloc[0]
    median = issues["km_median_hours"]
    defined = _finite(median) is not None
    why = ("no issue was resolved in the period" if pd.isna(median)
           else "fewer than half the issues were resolved: the median is beyond the longest open one")
    records.append(Metric("sentry.mttr_hours", float(median) if defined else None, "hours", SOURCE,
                          {"resolved": int(issues["resolved"]), "censored": int(issues["censored"]),
                           "ci_low": _finite(issues["km_ci_low"]), "ci_high": _finite(issues["km_ci_high"]),
                           "mean_of_resolved_hours": _finite(issues["mttr_hours"]),
                           "resolved_without_activity": int(issues["resolved_without_activity"])},
                          reason="" if defined else why))
    records.append(Metric("sentry.unresolved_issues", float(issues["unresolved_at_end"]), "count", SOURCE,
                          {"as_of": (period.end + timedelta(days=1)).isoformat()}))
    return records


def sentry_days(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """The first and last UTC day of Sentry data loaded (stats_v2 reports every day of a loaded window), or
    None when nothing is."""
    if not warehouse.loaded(con, "marts.sentry_event_volumes"):
        return None
    first, last = con.execute("select min(day), max(day) from marts.sentry_event_volumes").fetchall()[0]
    return None if first is None else (first, last)


def loaded_until(con: duckdb.DuckDBPyConnection) -> date | None:
    """The newest day of route data loaded (None when nothing is)."""
    sql = "select max(period_start) from marts.api_route_performance where grain = 'day'"
    return con.execute(sql).fetchall()[0][0]
