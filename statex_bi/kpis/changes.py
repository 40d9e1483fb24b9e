"""Every KPI against the previous period, computed from the warehouse, and why the headlines moved.

A report hands its KPI module's `metrics` function to `compare(...)` instead of calling it itself:

    compared = changes.compare(growth.metrics, con, period, reporting_currency="EUR", ...)
    published = publish.publish(compared.metrics)
    display.drivers(compared)

`compare` computes the KPIs for the period and for `period.previous()` from the warehouse, so a first
run, or one after a skipped week, has its change too (no earlier run needs to have published it).
Each KPI row gets the tag `previous_value` (the same KPI and breakdown over the previous period; None
when undefined there), and a rate with `numerator`/`denominator` tags gets the previous period's as
`previous_numerator`/`previous_denominator`, which the `change` alert rule tests against. The
headline KPIs that have a main dimension (`DRIVERS`) are split over it (statex_bi.kpis.drivers) and
their row gets the tag `driver`: the change and its top driver in words, which the executive summary
and the alert messages quote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import duckdb
import pandas as pd

from statex_bi.kpis import drivers
from statex_bi.kpis import web_api_performance as performance
from statex_bi.kpis.ai_costs import measures as ai_costs
from statex_bi.kpis.drivers import DRIVER_TAG, PREVIOUS_TAG, Decomposition
from statex_bi.kpis.growth_revenue.growth import KEY_EVENTS
from statex_bi.metrics import registry
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period, exact_grain
from statex_bi.reads import Reads, RecordingConnection, stamp, tracing

ALL = "all"


@dataclass(frozen=True)
class Driver:
    """How one KPI's change is split: over which dimension, and from which segments."""

    dimension: str  # for people: "channel", "model", "route"
    weight_noun: str  # what a segment's weight is a share of, for shift-share: "sessions"
    segments: Callable[..., Decomposition | None]  # (con, period, now rows, previous rows, **params)


@dataclass(frozen=True)
class Explained:
    """One KPI's change split over its dimension."""

    metric: str
    label: str
    unit: str | None
    dimension: str
    decomposition: Decomposition
    sentence: str


@dataclass(frozen=True)
class Comparison:
    """What `compare` returns: the KPIs with their previous values, the explained changes (each table carrying
    what it was read from), and what computing this period's KPIs read (statex_bi.reads)."""

    period: Period
    previous: Period
    metrics: list[Metric]
    explained: list[Explained] = field(default_factory=list)
    reads: Reads = field(default_factory=Reads)


def breakdown_keys(name: str) -> tuple[str, ...]:
    """The tags that tell a KPI's rows apart (registry `breakdown`, e.g. "category, outcome")."""
    kpi = registry.kpis().get(name)
    if kpi is None or not kpi.breakdown:
        return ()
    return tuple(part.split(":")[0].strip() for part in kpi.breakdown.split(","))


def _key(item: Metric) -> tuple[str, tuple[str, ...]]:
    return item.name, tuple(str(item.tags.get(tag)) for tag in breakdown_keys(item.name))


def _rows(items: list[Metric], name: str, tag: str) -> dict[str, Metric]:
    """The defined rows of one KPI by the value of its breakdown tag."""
    return {str(m.tags.get(tag)): m for m in items if m.name == name and m.defined}


def _main(items: list[Metric], name: str, tag: str | None) -> Metric | None:
    for item in items:
        if item.name == name and item.defined and (tag is None or item.tags.get(tag) == ALL):
            return item
    return None


# --- segments from the published rows of both periods ------------------------------------------------

def _additive_rows(tag: str) -> Callable[..., Decomposition | None]:
    """Segments: the KPI's own breakdown rows (e.g. revenue.net per provider), which add up to 'all'."""

    def split(con: duckdb.DuckDBPyConnection, name: str, now: list[Metric], before: list[Metric],
              period: Period, previous: Period, **_: Any) -> Decomposition | None:
        rows1, rows0 = _rows(now, name, tag), _rows(before, name, tag)
        names = sorted((set(rows1) | set(rows0)) - {ALL})
        frame = pd.DataFrame({"segment": names,
                              "before": [rows0[s].value if s in rows0 else 0.0 for s in names],
                              "after": [rows1[s].value if s in rows1 else 0.0 for s in names]})
        return drivers.contributions(frame)

    return split


def _ratio_rows(tag: str, weight: str, rest: str) -> Callable[..., Decomposition | None]:
    """Segments: the KPI's breakdown rows, each a rate over its `weight` tag (requests, attempts).

    When the rows do not cover the 'all' row (the top routes only), the remainder is one segment `rest`.
    """

    def split(con: duckdb.DuckDBPyConnection, name: str, now: list[Metric], before: list[Metric],
              period: Period, previous: Period, **_: Any) -> Decomposition | None:
        counts = {}
        for side, items in (("before", before), ("after", now)):
            rows = _rows(items, name, tag)
            for segment, row in rows.items():
                weight_value = float(row.tags.get(weight) or 0)
                counts.setdefault(segment, {})[side] = (row.value * weight_value, weight_value)
        total = counts.pop(ALL, None)
        if total is None or "before" not in total or "after" not in total:
            return None
        for side in ("before", "after"):
            covered = [c[side] for c in counts.values() if side in c]
            left = (total[side][0] - sum(x for x, _ in covered), total[side][1] - sum(n for _, n in covered))
            if left[1] > 0.5:
                counts.setdefault(rest, {})[side] = left
        frame = pd.DataFrame([
            {"segment": segment, **{f"{part}_{side}": c.get(side, (0.0, 0.0))[index]
                                    for side in ("before", "after")
                                    for index, part in enumerate(("numerator", "denominator"))}}
            for segment, c in sorted(counts.items())])
        return drivers.shift_share(frame) if len(frame) else None

    return split


def _side_by_side(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Two periods' segment frames (indexed by segment) in one, columns suffixed _before and _after."""
    return before.merge(after, how="outer", left_index=True, right_index=True, suffixes=("_before", "_after"))


# --- segments from SQL over the warehouse ----------------------------------------------------------

_CONVERSION_BY_CHANNEL = """
    with traffic as (
        select channel, sum(sessions) as sessions from marts.ga4_daily_traffic
        where date_day between $start and $end group by channel
    ), events as (
        select channel, sum(sessions_with_event) as converted from marts.ga4_daily_key_events
        where date_day between $start and $end and event_name = $event group by channel
    )
    select coalesce(traffic.channel, events.channel) as segment, coalesce(events.converted, 0) as numerator,
           coalesce(traffic.sessions, 0) as denominator
    from traffic full outer join events on traffic.channel = events.channel
"""


def _conversion_by_channel(step: int) -> Callable[..., Decomposition | None]:
    """Segments: each channel's sessions and the sessions with the funnel's key event `step` (0 sign-up)."""

    def split(con: duckdb.DuckDBPyConnection, name: str, now: list[Metric], before: list[Metric],
              period: Period, previous: Period, key_events: tuple[str, ...] = KEY_EVENTS, **_: Any
              ) -> Decomposition | None:
        sides = []
        for window in (previous, period):
            sides.append(con.execute(_CONVERSION_BY_CHANNEL, {"start": window.start, "end": window.end,
                                                              "event": key_events[step]}).df().set_index("segment"))
        frame = _side_by_side(*sides).fillna(0.0)
        return drivers.shift_share(frame.reset_index())

    return split


def _sessions_by_channel(con: duckdb.DuckDBPyConnection, name: str, now: list[Metric], before: list[Metric],
                         period: Period, previous: Period, **_: Any) -> Decomposition | None:
    sql = ("select channel as segment, sum(sessions) as sessions from marts.ga4_daily_traffic "
           "where date_day between ? and ? group by channel")
    sides = [con.execute(sql, [w.start, w.end]).df().set_index("segment")["sessions"] for w in (previous, period)]
    frame = pd.DataFrame({"before": sides[0], "after": sides[1]}).fillna(0.0).rename_axis("segment").reset_index()
    return drivers.contributions(frame)


def _models(con: duckdb.DuckDBPyConnection, window: Period, params: dict[str, Any]) -> pd.Series:
    usage = ai_costs.usage_by_model(con, window, **params)
    usage["segment"] = usage["model"].fillna("(no model)") + " (" + usage["tier"] + ")"
    return usage.groupby("segment")["cost_usd"].sum(min_count=1).fillna(0.0)


def _ai_cost_by_model(per_prototype: bool) -> Callable[..., Decomposition | None]:
    """Segments: each model's cost (over the period's prototypes for the cost per prototype)."""

    def split(con: duckdb.DuckDBPyConnection, name: str, now: list[Metric], before: list[Metric],
              period: Period, previous: Period, **params: Any) -> Decomposition | None:
        tag = None if per_prototype else "tier"
        main0, main1 = _main(before, name, tag), _main(now, name, tag)
        if main0 is None or main1 is None:
            return None
        divisors = (float(main0.tags.get("prototypes") or 0), float(main1.tags.get("prototypes") or 0)) \
            if per_prototype else (1.0, 1.0)
        frame = pd.DataFrame({"before": _models(con, previous, params), "after": _models(con, period, params)})
        frame = frame.fillna(0.0).rename_axis("segment").reset_index()
        return drivers.contributions(frame, *divisors)

    return split


def _p95_by_route(con: duckdb.DuckDBPyConnection, name: str, now: list[Metric], before: list[Metric],
                  period: Period, previous: Period, **params: Any) -> Decomposition | None:
    """Segments: each route's requests and its log-normal through Sentry's p50 and p95 of the route."""
    main0, main1 = _main(before, name, "route"), _main(now, name, "route")
    if main0 is None or main1 is None:
        return None
    sides = []
    for window in (previous, period):
        routes = performance.route_table(con, window, **params)
        routes = routes[routes["route"] != performance.ALL].set_index("route")
        mu, sigma = drivers.lognormal_from_p50_p95(routes["p50_ms"], routes["p95_ms"])
        sides.append(pd.DataFrame({"weight": routes["requests"], "value": routes["p95_ms"], "mu": mu, "sigma": sigma},
                                  index=routes.index))
    frame = _side_by_side(*sides).rename_axis("segment").reset_index()
    return drivers.percentile_counterfactual(frame, main0.value, main1.value, 0.95, "p95")


_VITALS_BY_PAGE = """
    select page || ' (' || device || ')' as segment, samples as weight, p75 as value, good_threshold,
           good_samples / nullif(samples, 0) as good_share
    from marts.web_vitals
    where grain = ? and period_start = ? and period_end = ? and metric = ? and page <> ? and device <> ?
      and samples > 0
"""


def _p75_by_page(vital: str) -> Callable[..., Decomposition | None]:
    """Segments: each page and device's page loads and its log-normal through Sentry's p75 of the vital
    and the share of its loads rated good (at or under the good threshold)."""

    def split(con: duckdb.DuckDBPyConnection, name: str, now: list[Metric], before: list[Metric],
              period: Period, previous: Period, **_: Any) -> Decomposition | None:
        main0, main1 = _main(before, name, "device"), _main(now, name, "device")
        grain = exact_grain(period)
        if main0 is None or main1 is None or grain is None or exact_grain(previous) != grain:
            return None  # the vitals' percentiles are exact for whole days, weeks and months only
        sides = []
        for window in (previous, period):
            rows = con.execute(_VITALS_BY_PAGE, [grain, window.start, window.end + timedelta(days=1), vital,
                                                 performance.ALL, performance.ALL]).df().set_index("segment")
            mu, sigma = drivers.lognormal_from_share_below(rows["value"], 0.75, rows["good_threshold"],
                                                           rows["good_share"].fillna(0.5))
            sides.append(pd.DataFrame({"weight": rows["weight"], "value": rows["value"], "mu": mu, "sigma": sigma},
                                      index=rows.index))
        frame = _side_by_side(*sides).rename_axis("segment").reset_index()
        return drivers.percentile_counterfactual(frame, main0.value, main1.value, 0.75, "p75")

    return split


# The headline KPIs whose change is split, and over what. KPIs with a breakdown are split on their 'all' row.
DRIVERS: dict[str, Driver] = {
    "conversion.prototype_request_rate": Driver("channel", "sessions", _conversion_by_channel(1)),
    "conversion.signup_rate": Driver("channel", "sessions", _conversion_by_channel(0)),
    "ga4.sessions": Driver("channel", "", _sessions_by_channel),
    "revenue.net": Driver("provider", "", _additive_rows("provider")),
    "revenue.gross": Driver("provider", "", _additive_rows("provider")),
    "revenue.fees": Driver("provider", "", _additive_rows("provider")),
    "payments.failure_rate": Driver("provider", "payment attempts", _ratio_rows("provider", "attempts", "other")),
    "ai.cost": Driver("model", "", _ai_cost_by_model(per_prototype=False)),
    "ai.cost_per_prototype": Driver("model", "", _ai_cost_by_model(per_prototype=True)),
    "infra.cost.actual": Driver("service", "", _additive_rows("service")),
    "api.error_rate": Driver("route", "requests", _ratio_rows("route", "requests", "other routes")),
    "api.p95_ms": Driver("route", "requests", _p95_by_route),
    "web_vitals.lcp_p75_ms": Driver("page and device", "page loads", _p75_by_page("lcp")),
}


def compare(metrics: Callable[..., list[Metric]], con: duckdb.DuckDBPyConnection, period: Period,
            **params: Any) -> Comparison:
    """A report's KPIs for `period` with each one's previous value and, for `DRIVERS`, why it moved.

    Args:
        metrics: the report's KPI function, `metrics(con, period, **params) -> list[Metric]`.
        con: the warehouse (read-only).
        period: the report's period; the previous one is `period.previous()`.
        **params: the report's parameters, passed to `metrics` and to the segment queries.

    Returns:
        The KPIs (tags `previous_value`, and `driver` on split rows) and the explained changes, in
        `DRIVERS` order.
    """
    previous = period.previous()
    traced = RecordingConnection(con)
    with tracing() as read_now:
        now = metrics(traced, period, **params)
    before = metrics(con, previous, **params)
    earlier = {_key(item): item for item in before}
    out, explained = [], []
    for item in now:
        match = earlier.get(_key(item))
        tags = {**item.tags, PREVIOUS_TAG: match.value if match and match.defined else None}
        if match and {"numerator", "denominator"} <= set(match.tags):  # what the `change` alert rule tests
            tags |= {"previous_numerator": match.tags["numerator"], "previous_denominator": match.tags["denominator"]}
        out.append(replace(item, tags=tags))
    for name, driver in DRIVERS.items():
        kpi = registry.kpis().get(name)
        keys = breakdown_keys(name)
        row = _main(now, name, keys[0] if keys else None)
        if kpi is None or row is None or not any(m.name == name for m in before):
            continue
        with tracing() as read_split:  # a split of the KPI's own rows reads nothing more than its models
            read_split.relations |= set(kpi.models)
            result = driver.segments(traced, name, now, before, period, previous, **params)
        if result is None or not result.change or not _matches(result, _main(before, name, keys[0] if keys else None),
                                                                 row):
            continue
        text = drivers.sentence(result, kpi.label, row.unit, driver.weight_noun or "the total", driver.dimension)
        stamp(result.table, read_split)
        explained.append(Explained(name, kpi.label, row.unit, driver.dimension, result, text))
        out = [replace(m, tags={**m.tags, DRIVER_TAG: text}) if _key(m) == _key(row) else m for m in out]
    return Comparison(period, previous, out, explained, read_now)


def _matches(result: Decomposition, before: Metric | None, after: Metric) -> bool:
    """Whether the split runs between the published values: segments that do not add up to the KPI (a
    segment the query misses, a definition drifted apart) would explain a change that did not happen."""
    if before is None:
        return False
    scale = max(1.0, abs(after.value), abs(before.value))
    return abs(result.after - after.value) <= 1e-9 * scale and abs(result.before - before.value) <= 1e-9 * scale
