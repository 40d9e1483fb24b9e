"""Each KPI against the previous period from the warehouse, and the headline changes split over their dimension,
on the simulated company: the splits add up to the published change, and the planted incidents are explained as
planted (the broken request form as a rate change across channels, the campaign as a mix change in its channel,
the AI cost spike by the model it switched to, the API regression by its route)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from warehouse_copies import copy_with_state

from statex_bi.demo import growth as simulated_growth
from statex_bi.demo.ai import cost_spike_day
from statex_bi.demo.perf import REGRESSED_ROUTE, REGRESSION_DAYS_AGO
from statex_bi.demo.runner import served
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import ingest
from statex_bi.kpis import ai_costs as ai_report
from statex_bi.kpis import changes, drivers
from statex_bi.kpis import growth_revenue as growth_report
from statex_bi.kpis import web_api_performance as performance
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period
from statex_bi.sources.contract import IngestRequest

# Five weeks ending on a Sunday: the last week holds the broken request form and the AI cost spike, the
# week two before it the campaign and the API regression (from its Monday on).
CONFIG = WorldConfig(date(2026, 10, 26), date(2026, 11, 29), seed=7)
# GA4 at 16 times the default traffic: at the default scale a channel sees a few prototype requests a week,
# and chance moves its rate as much as the planted incidents do (docs/demo.md); GA4 rows are daily totals,
# so the larger company loads as fast. Sentry (AI calls, API routes) stays at the default scale.
GA4_CONFIG = WorldConfig(CONFIG.start, CONFIG.end, seed=7, scale=16)
DROP = Period(*simulated_growth.conversion_drop_week(CONFIG))
CAMPAIGN = Period(*simulated_growth.campaign_week(CONFIG))
REGRESSION = Period(date(2026, 11, 9), date(2026, 11, 15))
GROWTH = {"reporting_currency": "EUR", "key_events": ["sign_up", "prototype_request"], "payment_window_days": 30}
AI = {"monthly_budget_usd": 10, "cost_currency": "USD"}
PERF = {"p95_target_ms": 100, "max_error_rate": 0.05}


def test_the_planted_weeks_are_where_the_test_expects_them():
    assert Period(date(2026, 11, 23), date(2026, 11, 29)) == DROP and DROP.previous().previous() == CAMPAIGN
    assert cost_spike_day(CONFIG) in (DROP.start, DROP.end) or DROP.start <= cost_spike_day(CONFIG) <= DROP.end
    assert REGRESSION.start == date(2026, 11, 29).fromordinal(CONFIG.end.toordinal() - REGRESSION_DAYS_AGO)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, pseudonym_key_module, built_empty):
    """GA4 from the larger company and Sentry from the default one, loaded by the real connectors into one
    copy of the session's built warehouse (one dbt build, of the models downstream of them)."""
    db = copy_with_state(built_empty[0], tmp_path_factory.mktemp("changes_demo"))
    with served(World(GA4_CONFIG), ["ga4"], progress=lambda _: None), \
            served(World(CONFIG), ["sentry"], progress=lambda _: None):
        results = ingest(["ga4", "sentry"], IngestRequest(CONFIG.start, CONFIG.end, progress=lambda _: None), db=db)
    assert [r.status for r in results] == ["succeeded", "succeeded"], [r.error for r in results]
    connection = duckdb.connect(str(db), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def pseudonym_key_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATEX_BI_PSEUDONYM_KEY", "test-pseudonym-key")
        yield


def _explained(comparison: changes.Comparison, metric: str) -> changes.Explained:
    return next(item for item in comparison.explained if item.metric == metric)


def _published(comparison: changes.Comparison, metric: str, **tags: str):
    return next(m for m in comparison.metrics if m.name == metric and all(m.tags.get(k) == v for k, v in tags.items()))


CASES = [(growth_report.metrics, GROWTH, DROP), (growth_report.metrics, GROWTH, CAMPAIGN),
         (ai_report.metrics, AI, DROP), (performance.metrics, PERF, REGRESSION), (performance.metrics, PERF, DROP)]


@pytest.mark.parametrize(("metrics", "params", "period"), CASES)
def test_every_split_adds_up_to_the_published_change(warehouse, metrics, params, period):
    con = warehouse
    comparison = changes.compare(metrics, con, period, **params)
    assert comparison.explained
    previous = {(m.name, tuple(sorted((k, str(v)) for k, v in m.tags.items()))): m.value
                for m in metrics(con, period.previous(), **params)}
    for item in comparison.explained:
        result = item.decomposition
        keys = changes.breakdown_keys(item.metric)
        row = _published(comparison, item.metric, **({keys[0]: "all"} if keys else {}))
        # the split starts and ends at the published values: this period's and the previous period's
        assert abs(result.after - row.value) < 1e-9, item.metric
        assert abs(result.before - row.tags[changes.PREVIOUS_TAG]) < 1e-9, item.metric
        assert row.tags[changes.DRIVER_TAG] == item.sentence
        if result.exact:
            assert abs(result.table["contribution"].sum() - result.change) < 1e-9, item.metric
        total = sum(v for k, v in result.components.items() if k != "counterfactual")
        assert not result.components or abs(total - result.change) < 1e-9, item.metric
    # previous_value is the KPI computed over the previous period, row by row
    for item in comparison.metrics:
        if item.tags.get(changes.PREVIOUS_TAG) is not None and item.name in ("ga4.sessions", "api.error_rate"):
            same = [v for (name, tags), v in previous.items()
                    if name == item.name and dict(tags).get("route", "") == str(item.tags.get("route", ""))]
            assert item.tags[changes.PREVIOUS_TAG] in same


def test_the_broken_request_form_is_a_rate_change_across_channels(warehouse):
    result = _explained(changes.compare(growth_report.metrics, warehouse, DROP, **GROWTH),
                        "conversion.prototype_request_rate").decomposition
    assert result.change < 0
    assert result.components["rate"] < 0 and abs(result.components["rate"]) > abs(result.components["mix"])
    assert (result.table["rate"] < 0).all()  # across channels: every channel's own rate fell


def test_the_campaign_is_a_mix_change_in_its_channel(warehouse):
    comparison = changes.compare(growth_report.metrics, warehouse, CAMPAIGN, **GROWTH)
    item = _explained(comparison, "conversion.prototype_request_rate")
    result = item.decomposition
    top = drivers.top_driver(result)
    assert result.change < 0 and abs(result.components["mix"]) > abs(result.components["rate"])
    assert top["segment"] == simulated_growth.CAMPAIGN_CHANNEL and abs(top["mix"]) > abs(top["rate"])
    assert top["weight_after"] > 3 * top["weight_before"]
    assert f"{simulated_growth.CAMPAIGN_CHANNEL} explains" in item.sentence and "a mix change" in item.sentence


def test_the_ai_cost_spike_is_the_model_it_switched_to(warehouse):
    item = _explained(changes.compare(ai_report.metrics, warehouse, DROP, **AI), "ai.cost")
    assert item.decomposition.change > 0
    assert drivers.top_driver(item.decomposition)["segment"].startswith("gpt-4o (")
    assert "gpt-4o (" in item.sentence


def test_the_api_regression_is_its_route(warehouse):
    item = _explained(changes.compare(performance.metrics, warehouse, REGRESSION, **PERF), "api.p95_ms")
    assert not item.decomposition.exact and item.decomposition.change > 0
    assert drivers.top_driver(item.decomposition)["segment"] == REGRESSED_ROUTE
    assert f"{REGRESSED_ROUTE} moved it most" in item.sentence and "does not split exactly" in item.sentence


def _traffic() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.ga4_daily_traffic (date_day DATE, channel VARCHAR, "
                "sessions BIGINT)")
    con.execute("INSERT INTO marts.ga4_daily_traffic VALUES ('2026-11-17', 'Direct', 100), "
                "('2026-11-18', 'Email', 50), ('2026-11-24', 'Direct', 90), ('2026-11-25', 'Email', 200)")
    return con


def _sessions(offset: float):
    def metrics(con: duckdb.DuckDBPyConnection, period: Period, **_: object) -> list[Metric]:
        total = con.execute("SELECT sum(sessions) FROM marts.ga4_daily_traffic WHERE date_day BETWEEN ? AND ?",
                            [period.start, period.end]).fetchall()[0][0]
        return [Metric("ga4.sessions", float(total) + offset, "count", "ga4")]
    return metrics


def test_compare_tags_the_previous_value_and_the_driver_of_a_split_that_adds_up():
    comparison = changes.compare(_sessions(0.0), _traffic(), DROP)
    (row,) = comparison.metrics
    assert row.tags[changes.PREVIOUS_TAG] == 150.0
    # Email's +150 is more than the whole change: Direct's −10 offsets part of it
    assert row.tags[changes.DRIVER_TAG] == "Sessions rose 140; Email moved it most (+150; others offset part): " \
                                          "from 50 to 200."
    assert [item.metric for item in comparison.explained] == ["ga4.sessions"]


def test_a_split_that_does_not_add_up_to_the_published_kpi_is_not_shown():
    comparison = changes.compare(_sessions(1.0), _traffic(), DROP)  # the KPI counts one session more
    (row,) = comparison.metrics
    assert row.tags[changes.PREVIOUS_TAG] == 151.0 and changes.DRIVER_TAG not in row.tags
    assert comparison.explained == []
