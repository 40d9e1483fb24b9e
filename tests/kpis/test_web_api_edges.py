"""One edge convention for every target, and a vital without samples is "not measured", not a failure
(over hand-made mart rows: the rules, not the simulation)."""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from statex_bi import warehouse
from statex_bi.alerts import rules
from statex_bi.alerts.evaluate import evaluate
from statex_bi.config import PARAMS_DIR
from statex_bi.kpis import executive_summary as summary
from statex_bi.kpis import verdicts
from statex_bi.kpis import web_api_performance as performance
from statex_bi.periods import Period
from statex_bi.runner.metrics import replace_metrics

WEEK = Period(date(2026, 11, 23), date(2026, 11, 29))
BOUNDS = (datetime(2026, 11, 23), datetime(2026, 11, 30))


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA marts")
    connection.execute("""CREATE TABLE marts.web_vitals (grain VARCHAR, period_start TIMESTAMP, period_end TIMESTAMP,
        page VARCHAR, device VARCHAR, metric VARCHAR, p75 DOUBLE, samples BIGINT, good_threshold DOUBLE,
        good_samples BIGINT, p75_low DOUBLE, p75_high DOUBLE)""")
    vitals = [("/a", "mobile", "lcp", 2000, 40, 2500), ("/a", "mobile", "cls", 0.05, 40, 0.1),  # no INP samples
              ("/b", "mobile", "lcp", 3100, 40, 2500), ("/b", "mobile", "cls", 0.05, 40, 0.1),
              ("/c", "mobile", "lcp", 2500, 40, 2500), ("/c", "mobile", "inp", 200, 40, 200),
              ("/c", "mobile", "cls", 0.1, 40, 0.1)]
    for row in vitals:
        connection.execute("INSERT INTO marts.web_vitals VALUES ('week', ?, ?, ?, ?, ?, ?, ?, ?, 30, NULL, NULL)",
                           [*BOUNDS, *row])
    connection.execute("""CREATE TABLE marts.api_route_performance (grain VARCHAR, period_start TIMESTAMP,
        period_end TIMESTAMP, route VARCHAR, requests BIGINT, failed_requests BIGINT, p50_ms DOUBLE, p95_ms DOUBLE,
        p95_low_ms DOUBLE, p95_high_ms DOUBLE, avg_ms DOUBLE)""")
    # (route, requests, failed, p95, its 95 % interval): at the target, straddling it, above it
    for row in [("(all)", 300, 15, 100.0, 96.0, 100.0), ("GET /x", 200, 10, 100.0, 95.0, 100.0),
                ("GET /y", 100, 5, 100.5, 97.0, 104.0), ("GET /z", 100, 5, 130.0, 100.5, 150.0)]:
        connection.execute("INSERT INTO marts.api_route_performance VALUES ('week', ?, ?, ?, ?, ?, 20, ?, ?, ?, 40)",
                           [*BOUNDS, *row])
    yield connection
    connection.close()


def test_a_page_without_inp_samples_is_not_measured_rather_than_failed(con) -> None:
    table = performance.vitals_table(con, WEEK).set_index("page")
    assert table.loc["/a", "status"] == performance.NOT_MEASURED and pd.isna(table.loc["/a", "passes"])
    assert table.loc["/b", "status"] == "fails" and not table.loc["/b", "passes"]
    assert table.loc["/c", "status"] == "passes"  # every vital exactly at its threshold: good


def test_a_target_met_exactly_is_met_in_the_report_as_in_the_ledger_and_the_alert(con) -> None:
    routes = performance.route_table(con, WEEK, p95_target_ms=100, max_error_rate=0.05).set_index("route")
    assert bool(routes.loc["GET /x", "meets_p95_target"]) and bool(routes.loc["GET /x", "meets_error_target"])
    assert not routes.loc["GET /y", "meets_p95_target"]


def test_the_p95_verdict_is_three_way_on_its_interval_with_the_average_beside_it(con) -> None:
    """A p95 of 100.5 ms whose interval reaches down to 97 ms is not a miss of the 100 ms target: inconclusive."""
    routes = performance.route_table(con, WEEK, p95_target_ms=100).set_index("route")
    assert routes["p95_verdict"].to_dict() == {"(all)": "holds", "GET /x": "holds", "GET /y": "inconclusive",
                                               "GET /z": "fails"}
    text = performance.headline(con, WEEK, p95_target_ms=100)
    assert "95% CI 96 to 100 ms; average 40 ms" in text and "1 of 3 routes missed the target (1 inconclusive)" in text
    published = {(m.name, m.tags.get("route")): m for m in performance.metrics(con, WEEK, p95_target_ms=100)}
    p95 = published[("api.p95_ms", "GET /y")]
    assert (p95.tags["ci_low"], p95.tags["ci_high"], p95.tags["avg_ms"]) == (97.0, 104.0, 40.0)


def _issues(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.execute("""CREATE TABLE marts.sentry_issues (short_id VARCHAR, status VARCHAR, first_seen TIMESTAMP,
        last_seen TIMESTAMP, resolved_at TIMESTAMP, hours_to_resolve DOUBLE)""")
    con.executemany("INSERT INTO marts.sentry_issues VALUES (?, ?, ?, ?, ?, ?)", rows)


def test_time_to_resolve_counts_the_open_issues_as_censored(con) -> None:
    """The audit: the mean over resolved issues ignored open ones up to 1,852 h old (3 issues, mean 39.5 h)."""
    stop = datetime(2026, 11, 30)
    resolved = [(f"R{i}", "resolved", stop - timedelta(hours=h + 20), stop - timedelta(hours=20),
                 stop - timedelta(hours=20), float(h)) for i, h in enumerate((10, 16, 90))]
    still_open = [(f"O{i}", "unresolved", stop - timedelta(hours=h), stop, None, None)
                  for i, h in enumerate((400, 1852))]
    ignored = [("I", "ignored", stop - timedelta(hours=5000), stop, None, None)]
    _issues(con, resolved + still_open + ignored)
    row = performance.resolution(con, WEEK).iloc[0]
    # Kaplan-Meier by hand over 10, 16, 90 (resolved) and 400+, 1852+ (open): S = 4/5, 3/5, 2/5 -> median 90 h.
    assert (row["resolved"], row["censored"]) == (3, 2)
    assert row["km_median_hours"] == pytest.approx(90.0)
    assert row["mttr_hours"] == pytest.approx((10 + 16 + 90) / 3)  # what was published before
    assert row["km_ci_low"] <= 90.0 <= row["km_ci_high"]


def test_time_to_resolve_is_undefined_when_fewer_than_half_are_resolved(con) -> None:
    stop = datetime(2026, 11, 30)
    _issues(con, [("R", "resolved", stop - timedelta(hours=30), stop, stop - timedelta(hours=20), 10.0)]
            + [(f"O{i}", "unresolved", stop - timedelta(hours=500), stop, None, None) for i in range(3)])
    assert performance.resolution(con, WEEK).iloc[0]["km_median_hours"] == float("inf")


def test_time_to_resolve_with_every_issue_resolved_has_an_open_ended_band_and_no_warning(con) -> None:
    """With nothing censored the curve reaches 0, where scipy's log-log band is undefined and it warns; a warning
    printed in a notebook reached the published page."""
    stop = datetime(2026, 11, 30)
    _issues(con, [(f"R{i}", "resolved", stop - timedelta(hours=h + 20), stop - timedelta(hours=20),
                   stop - timedelta(hours=20), float(h)) for i, h in enumerate((10, 16, 90))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = performance.resolution(con, WEEK).iloc[0]

    assert (row["resolved"], row["censored"], row["km_median_hours"]) == (3, 0, 16.0)
    assert row["km_ci_low"] <= 16.0 <= row["km_ci_high"]


def test_a_route_with_too_few_requests_for_a_p95_bound_is_flagged_and_cannot_hold(con) -> None:
    con.execute("INSERT INTO marts.api_route_performance VALUES ('week', ?, ?, 'GET /rare', 71, 0, 20, 90.0, 60.0, "
                "NULL, 40)", list(BOUNDS))
    routes = performance.route_table(con, WEEK, p95_target_ms=100).set_index("route")
    # two-sided 95 %: the largest of n requests bounds the p95 from above when 1 - 0.95^n >= 0.975
    assert 1 - 0.95 ** 71 < 0.975 <= 1 - 0.95 ** 72
    assert bool(routes.loc["GET /rare", "small_sample"]) and not routes.loc["GET /y", "small_sample"]
    assert routes.loc["GET /rare", "p95_verdict"] == "inconclusive"  # 90 ms, but nothing bounds it from above
    # the ledger and the KPI card judge the published row alike: its null upper end is unbounded, not missing
    rare = next(m for m in performance.metrics(con, WEEK) if m.name == "api.p95_ms" and m.tags["route"] == "GET /rare")
    assert (rare.value, rare.tags["ci_low"], rare.tags["ci_high"]) == (90.0, 60.0, None)
    assert verdicts.judge("at_most", 100, rare.value, summary.interval(rare.tags)) == "inconclusive"
    assert summary.interval_text(summary.interval(rare.tags), "ms").endswith("to no bound")


def test_a_one_day_incident_fires_the_daily_error_rate_rule_the_weekly_one_rightly_misses(con, tmp_path) -> None:
    """The back-test: a third of checkout calls fail for a day, 31 of 539 over the week (5.75 %, p = 0.24)."""
    days = [(WEEK.start + timedelta(days=i), 77, 25 if i == 3 else 1) for i in range(7)]
    for day, requests, failed in days:
        con.execute("INSERT INTO marts.api_route_performance VALUES ('day', ?, ?, 'POST /checkout', ?, ?, 200, 300, "
                    "290, 320, 220)", [day, day + timedelta(days=1), requests, failed])
    con.execute("INSERT INTO marts.api_route_performance VALUES ('week', ?, ?, 'POST /checkout', 539, 31, 200, 300, "
                "290, 320, 220)", list(BOUNDS))
    fired = _fired(con, tmp_path, "api_error_rate")
    assert [(rule, subject) for rule, subject, _ in fired] == [("api_error_rate_daily", "route=POST /checkout")]
    # one alert per route (it resolves when a later period has no such day), naming the day
    assert "(route=POST /checkout, day=2026-11-26): 32.5% (25 of 77 requests)" in fired[0][2]
    assert fired[0][2].endswith("1 of 7 point(s) hold")


def test_the_p95_alert_fires_when_the_whole_interval_is_above_the_target(con, tmp_path) -> None:
    """GET /y's p95 of 100.5 ms (interval 97-104 ms) is inconclusive, not an alert; GET /z's (100.5-150 ms) is."""
    assert [fired[:2] for fired in _fired(con, tmp_path, "api_p95_over_target")] == [
        ("api_p95_over_target", "route=GET /z")]


def _fired(con: duckdb.DuckDBPyConnection, tmp_path, rule_prefix: str) -> list[tuple[str, str, str]]:
    """(rule, subject, message) of each alert the project's rules named `rule_prefix...` raise on the report's KPIs."""
    published = [{"metric_name": m.name, "metric_type": m.metric_type, "value": m.value, "unit": m.unit,
                  "source": m.source, "tags": m.tags} for m in performance.metrics(con, WEEK, p95_target_ms=100)
                 if m.defined]
    chosen = [rule for rule in rules.load(PARAMS_DIR / "alerts.yaml").rules if rule.name.startswith(rule_prefix)]
    with warehouse.writer(tmp_path / "w.duckdb") as history:
        replace_metrics(history, "r", WEEK, {"web_api_performance": published})
        return [(e.rule.name, f.subject, f.message) for e in evaluate(history, chosen, "r", WEEK)
                for f in e.findings if f.holds]
