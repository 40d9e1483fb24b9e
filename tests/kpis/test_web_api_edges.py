"""One edge convention for every target, and a vital without samples is "not measured", not a failure
(over hand-made mart rows: the rules, not the simulation)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from statex_bi.kpis import web_api_performance as performance
from statex_bi.periods import Period

WEEK = Period(date(2026, 11, 23), date(2026, 11, 29))
BOUNDS = (datetime(2026, 11, 23), datetime(2026, 11, 30))


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA marts")
    connection.execute("""CREATE TABLE marts.web_vitals (grain VARCHAR, period_start TIMESTAMP, period_end TIMESTAMP,
        page VARCHAR, device VARCHAR, metric VARCHAR, p75 DOUBLE, samples BIGINT, good_threshold DOUBLE)""")
    vitals = [("/a", "mobile", "lcp", 2000, 40, 2500), ("/a", "mobile", "cls", 0.05, 40, 0.1),  # no INP samples
              ("/b", "mobile", "lcp", 3100, 40, 2500), ("/b", "mobile", "cls", 0.05, 40, 0.1),
              ("/c", "mobile", "lcp", 2500, 40, 2500), ("/c", "mobile", "inp", 200, 40, 200),
              ("/c", "mobile", "cls", 0.1, 40, 0.1)]
    for row in vitals:
        connection.execute("INSERT INTO marts.web_vitals VALUES ('week', ?, ?, ?, ?, ?, ?, ?, ?)", [*BOUNDS, *row])
    connection.execute("""CREATE TABLE marts.api_route_performance (grain VARCHAR, period_start TIMESTAMP,
        period_end TIMESTAMP, route VARCHAR, requests BIGINT, failed_requests BIGINT, p50_ms DOUBLE, p95_ms DOUBLE)""")
    for route, requests, failed, p95 in [("(all)", 300, 15, 100.0), ("GET /x", 200, 10, 100.0),
                                         ("GET /y", 100, 5, 100.5)]:
        connection.execute("INSERT INTO marts.api_route_performance VALUES ('week', ?, ?, ?, ?, ?, 20, ?)",
                           [*BOUNDS, route, requests, failed, p95])
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


def test_a_route_with_too_few_requests_for_a_p95_bound_is_flagged(con) -> None:
    con.execute("INSERT INTO marts.api_route_performance VALUES ('week', ?, ?, 'GET /rare', 58, 0, 20, 90.0)",
                list(BOUNDS))
    routes = performance.route_table(con, WEEK).set_index("route")
    # 1 - 0.95^58 < 0.95 <= 1 - 0.95^59: 58 requests cannot bound their p95 from above
    assert 1 - 0.95 ** 58 < 0.95 <= 1 - 0.95 ** 59
    assert bool(routes.loc["GET /rare", "small_sample"]) and not routes.loc["GET /x", "small_sample"]
