"""Public files no one here wrote, through the real connectors and the dbt models, against independent
sums of the files: the FinOps Foundation's FOCUS sample delivered twice (tests/sources/billing/fixtures/README.md),
real Vitest 4 and Jest 30 reports whose test names collide and with a file that fails to load
(tests/fixtures/make_identity_reports.sh), and the `stats_v2` body of Sentry's own API test (one 1 KiB
attachment; tests/sources/sentry/fixtures/README.md) served by the Sentry sandbox, and GA4 responses that
carry `subjectToThresholding` / `dataLossFromOtherRow` and an "(other)" row (no public GA4 response with them
was found: the GA4 sandbox's responses, flagged as the v1beta discovery document names the fields). One
warehouse and one `dbt build` for the module."""

from __future__ import annotations

import csv
import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from statex_bi.demo.apis import ga4 as ga4_api
from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.growth import simulate_growth
from statex_bi.demo.sandbox import Response
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source
from statex_bi.kpis import growth_revenue, test_productivity
from statex_bi.kpis import infrastructure_savings as infra
from statex_bi.kpis import web_api_performance as performance
from statex_bi.kpis.ai_costs import bills
from statex_bi.periods import Period
from statex_bi.sources import billing, ga4, sentry, test_reports
from statex_bi.sources.contract import IngestRequest
from statex_bi.transform import build as project

TESTS = Path(__file__).parents[1] / "fixtures" / "test_identity"
SENTRY_STATS = Path(__file__).parents[1] / "sources" / "sentry" / "fixtures" / "stats_v2_multiple_fields.json"
SENTRY_END = datetime.now(UTC).date() - timedelta(days=1)
SENTRY_DAYS = Period(SENTRY_END - timedelta(days=1), SENTRY_END)
GA4_DAYS = Period(SENTRY_END - timedelta(days=6), SENTRY_END)
ROLLED_UP = "Referral"  # the channel GA4 rolls into "(other)" in these responses

FOCUS_SAMPLE = Path(__file__).parents[1] / "sources" / "billing" / "fixtures" / "focus_sample_1_0.csv"
SEPTEMBER_2024 = Period(date(2024, 9, 1), date(2024, 9, 30))


def _focus_rows() -> list[dict[str, str]]:
    with FOCUS_SAMPLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _deliver(path: Path, lines: list[str], when: str) -> None:
    path.write_text("".join(lines))
    stamp = datetime.fromisoformat(when).timestamp()
    os.utime(path, (stamp, stamp))


def _sentry_stats(request) -> Response:
    """Sentry's test body, its two days moved to the two days loaded here; only the fields asked for."""
    body = json.loads(SENTRY_STATS.read_text())
    body["intervals"] = [f"{day}T00:00:00Z" for day in (SENTRY_DAYS.start, SENTRY_DAYS.end)]
    fields = request.query.get("field", [])
    for group in body["groups"]:
        group["series"] = {name: series for name, series in group["series"].items() if name in fields}
    return Response(200, body)


def _load_sentry(db: Path) -> None:
    world = World(WorldConfig(SENTRY_DAYS.start, SENTRY_DAYS.end, seed=3, scale=0.05))
    with pytest.MonkeyPatch.context() as patch, sentry_api.serve(world.ai, world.perf) as box:
        route = next(r for r in box.routes if r[1].pattern.endswith("/stats_v2/"))
        box.routes[box.routes.index(route)] = (route[0], route[1], _sentry_stats, route[3])
        for key, value in sentry_api.environment(box.url).items():
            patch.setenv(key, value)
        request = IngestRequest(SENTRY_DAYS.start, SENTRY_DAYS.end, progress=lambda m: None)
        assert load_source(sentry.SPEC, request, db).status == "succeeded"
    lists = ("/events/", "/events-timeseries/", "/issues/", "/stats_v2/")
    assert {tuple(r.query.get("project", [])) for r in box.requests if r.path.endswith(lists)} == {("-1",)}


def _load_ga4(db: Path) -> int:
    """GA4 over GA4_DAYS, each response flagged and the ROLLED_UP channel's rows rolled into "(other)";
    returns the sessions the traffic responses put in "(other)"."""
    rolled = []
    with pytest.MonkeyPatch.context() as patch, ga4_api.serve(simulate_growth(
            WorldConfig(GA4_DAYS.start, GA4_DAYS.end, seed=5, scale=0.05))) as box:
        route = next(r for r in box.routes if r[1].pattern.endswith(":runReport"))

        def flagged(request):
            response = route[2](request)
            body = response.body
            if response.status == 200:
                body["metadata"] |= {"subjectToThresholding": True, "dataLossFromOtherRow": True}
                names = [h["name"] for h in body["dimensionHeaders"]]
                metrics = [h["name"] for h in body["metricHeaders"]]
                for row in body.get("rows", []):
                    if "sessionDefaultChannelGroup" in names:
                        cell = row["dimensionValues"][names.index("sessionDefaultChannelGroup")]
                        if cell["value"] == ROLLED_UP:
                            cell["value"] = "(other)"
                            if names == ["date", "sessionDefaultChannelGroup"] and "sessions" in metrics:
                                rolled.append(int(row["metricValues"][metrics.index("sessions")]["value"]))
            return Response(response.status, body, response.headers)

        box.routes[box.routes.index(route)] = (route[0], route[1], flagged, route[3])
        for key, value in ga4_api.environment(box.url).items():
            patch.setenv(key, value)
        patch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        patch.delenv("GA4_KEY_EVENTS", raising=False)
        request = IngestRequest(GA4_DAYS.start, GA4_DAYS.end, progress=lambda m: None)
        assert load_source(ga4.SPEC, request, db).status == "succeeded"
    assert rolled, "the simulation has Referral traffic to roll up"
    return sum(rolled)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    db, exports = folder / "warehouse.duckdb", folder / "focus"
    exports.mkdir()
    quiet = IngestRequest(dir=exports, progress=lambda message: None)
    lines = FOCUS_SAMPLE.read_text().splitlines(keepends=True)
    # The export's file as first delivered, then overwritten by the fuller bill of the same month.
    _deliver(exports / "focus.csv", lines[:121], "2024-09-20T08:00:00")
    assert load_source(billing.SPEC, quiet, db).status == "succeeded"
    _deliver(exports / "focus.csv", lines, "2024-09-21T08:00:00")
    assert load_source(billing.SPEC, quiet, db).status == "succeeded"
    assert load_source(test_reports.SPEC, IngestRequest(dir=TESTS, progress=lambda m: None), db).status == "succeeded"
    _load_sentry(db)
    other_sessions = _load_ga4(db)
    project.build(db, progress=lambda message: None)
    return db, other_sessions


@pytest.fixture(scope="module")
def con(warehouse):
    with duckdb.connect(str(warehouse[0]), read_only=True) as connection:
        yield connection


def test_a_redelivered_month_publishes_the_final_file_s_total(con):
    truth = sum(Decimal(r["BilledCost"]) for r in _focus_rows() if r["ChargePeriodStart"].startswith("2024-09"))
    published = {m.tags["service"]: m.value for m in infra.metrics(con, SEPTEMBER_2024)
                 if m.name == "infra.cost.actual"}
    assert published["all"] == pytest.approx(float(truth), rel=1e-12)
    notes = infra.notes(con, SEPTEMBER_2024)
    assert any(n.startswith("The closed billing period September 2024 of ") for n in notes)


def test_only_azure_ai_services_feed_the_ai_reconciliation_while_infra_keeps_the_category(con):
    rows = _focus_rows()
    machine_learning = [r for r in rows if r["ServiceName"] == "Azure Machine Learning"]
    assert machine_learning and all(r["ServiceCategory"] == "AI and Machine Learning" for r in machine_learning)
    assert bills.azure_ai_bill(con, SEPTEMBER_2024).empty
    actual = infra.actual_costs(con, SEPTEMBER_2024)
    ai = actual.loc[actual["service"] == "ai", "cost_usd"].sum()
    truth = sum(Decimal(r["BilledCost"]) for r in rows if r["ServiceCategory"] == "AI and Machine Learning")
    assert ai == pytest.approx(float(truth), rel=1e-12)


def _test_period() -> Period:
    started = [json.loads((TESTS / name / "run.json").read_text())["started_at"][:10] for name in ("vitest", "jest")]
    return Period(date.fromisoformat(min(started)), date.fromisoformat(max(started)))


@pytest.mark.parametrize("runner", ["vitest", "jest"])
def test_colliding_names_are_distinct_tests_none_flaky_and_a_broken_file_is_a_failure(con, runner):
    report = json.loads((TESTS / runner / f"{runner}.json").read_text())
    tests = [t for suite in report["testResults"] for t in suite["assertionResults"]]
    load_failures = sum(1 for s in report["testResults"] if s["status"] == "failed" and not s["assertionResults"])
    passed = sum(t["status"] == "passed" for t in tests)
    failed = sum(t["status"] == "failed" for t in tests) + load_failures
    published = {(m.name, m.tags.get("runner")): m for m in test_productivity.metrics(con, _test_period())}
    # One run per runner: nothing can be flaky. Tests: 4 in identity.test.js and the file that failed to load.
    assert published[("tests.flaky_tests", None)].value == 0
    assert published[("tests.flaky_tests", None)].tags["tests"] == len(tests) + load_failures == 5
    assert published[("tests.pass_rate", runner)].value == pytest.approx(passed / (passed + failed))


def test_sentry_attachments_are_counted_not_weighed(con):
    body = json.loads(SENTRY_STATS.read_text())
    published = {(m.tags.get("category"), m.tags.get("outcome")): m for m in performance.metrics(con, SENTRY_DAYS)
                 if m.name == "sentry.events"}
    for group in body["groups"]:
        by = group["by"]
        # An attachment's sum(quantity) is its bytes (1024); the count is sum(times_seen).
        expected = group["totals"]["sum(times_seen)" if by["category"] == "attachment" else "sum(quantity)"]
        metric = published[(by["category"], by["outcome"])]
        assert (metric.value, metric.unit) == (expected, "count")
    volumes = performance.event_volumes(con, SENTRY_DAYS).set_index("category")
    assert volumes.loc["attachment", "attachment_bytes"] == 1024


def test_sentry_publishes_nothing_for_a_period_before_its_data(con):
    before = Period(SENTRY_DAYS.start - timedelta(days=30), SENTRY_DAYS.start - timedelta(days=24))
    published = {m.name: m for m in performance.metrics(con, before) if m.name.startswith("sentry.")}
    for name in ("sentry.events", "sentry.unresolved_issues"):
        assert published[name].value is None and "holds no data" in published[name].reason


def test_ga4_warnings_are_kept_and_shown_beside_its_numbers(con, warehouse):
    other_sessions = warehouse[1]
    notes = growth_revenue.notes(con, GA4_DAYS)
    assert any(n.startswith(f"GA4 withheld data for privacy (thresholding) on {GA4_DAYS.days} of the period's")
               for n in notes)
    assert any(f"{other_sessions:,} sessions are counted in totals but belong to no named channel" in n
               for n in notes)
    published = {m.name: m for m in growth_revenue.metrics(con, GA4_DAYS)}
    assert published["ga4.sessions"].tags["thresholded_days"] == GA4_DAYS.days
    assert published["ga4.sessions"].tags["other_sessions"] == other_sessions


def test_ga4_publishes_nothing_for_a_period_before_its_data(con):
    before = Period(GA4_DAYS.start - timedelta(days=14), GA4_DAYS.start - timedelta(days=8))
    published = {m.name: m for m in growth_revenue.metrics(con, before)}
    for name in ("ga4.sessions", "ga4.daily_active_users"):
        assert published[name].value is None and published[name].reason == "GA4 holds no data for the period"
