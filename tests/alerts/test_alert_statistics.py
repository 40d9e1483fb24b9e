"""Alerts that know their sample: exact rate tests with a minimum sample, FDR across subjects, change
tests on both periods' counts from the report, over-dispersion and a minimum change."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from kpi_history import WEEKS, evaluate, publish, rules_file
from scipy.stats import binomtest

from statex_bi.alerts import rules
from statex_bi.alerts.evaluate import evaluate as findings_of

PAYMENTS = {"name": "payment_failure_rate", "kind": "threshold", "metric": "payments.failure_rate",
            "subject": "provider", "above": 0.10, "sample_tag": "attempts", "events_tag": "failed",
            "min_sample": 20, "alpha": 0.05, "severity": "HIGH"}


def _failures(by_provider: dict[str, tuple[int, int]]) -> list[dict]:
    return [{"metric_name": "payments.failure_rate", "value": failed / attempts, "unit": "fraction",
             "tags": {"provider": provider, "attempts": attempts, "failed": failed}}
            for provider, (failed, attempts) in by_provider.items()]


def _context(db: Path) -> dict[str, dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT subject, fastify_context FROM monitoring.monitoring_alerts").fetchall()
    finally:
        con.close()
    return {subject: json.loads(context) for subject, context in rows}


def test_a_rate_fires_on_its_exact_bound_and_a_small_sample_is_too_little_data(tmp_path: Path) -> None:
    """The audit: HIGH alerts opened for Coinbase at 1 failure in 2 attempts and for all at 2 of 14."""
    db = tmp_path / "w.duckdb"
    config = rules_file(tmp_path, PAYMENTS)
    publish(db, "now", WEEKS[1], "growth_revenue", _failures({
        "coinbase": (1, 2), "paypal": (2, 14), "stripe": (40, 200), "adyen": (12, 100)}))
    record = evaluate(db, config, "now", WEEKS[1])

    assert [o["subject"] for o in record["opened"]] == ["provider=stripe"]
    too_little = record["no_data"]["payment_failure_rate"]
    assert too_little.startswith("too little data")
    assert "[provider=coinbase] 2 attempts, needs 20" in too_little and "[provider=paypal] 14 attempts" in too_little
    # 12 of 100 is above 10% as a point, not as evidence: the one-sided exact lower bound is below 10%
    assert binomtest(12, 100, 0.10, alternative="greater").pvalue > 0.05
    stripe = _context(db)["provider=stripe"]
    assert stripe["p_value"] == pytest.approx(binomtest(40, 200, 0.10, alternative="greater").pvalue)
    assert stripe["bound"] > 0.10
    assert "one-sided 95% lower bound" in record["opened"][0]["message"]


def test_a_subject_without_enough_data_keeps_its_open_alert(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = rules_file(tmp_path, PAYMENTS)
    publish(db, "r0", WEEKS[0], "growth_revenue", _failures({"stripe": (40, 200)}))
    assert len(evaluate(db, config, "r0", WEEKS[0])["opened"]) == 1
    publish(db, "r1", WEEKS[1], "growth_revenue", _failures({"stripe": (0, 3)}))
    record = evaluate(db, config, "r1", WEEKS[1])
    assert record["resolved"] == [] and record["open"] == 1 and "too little data" in record["no_data"][
        "payment_failure_rate"]


def test_false_discovery_is_controlled_across_the_subjects_of_one_rule(tmp_path: Path) -> None:
    """One route at p = 0.03 fires on its own, not as the best of ten routes (Benjamini-Hochberg)."""
    rule = {"name": "api_error_rate", "kind": "threshold", "metric": "api.error_rate", "subject": "route",
            "above": 0.05, "sample_tag": "requests", "events_tag": "failed", "min_sample": 100,
            "severity": "CRITICAL"}
    borderline = (21, 250)  # 8.4 % of 250
    assert binomtest(*borderline, 0.05, alternative="greater").pvalue < 0.05

    def rows(routes: dict[str, tuple[int, int]]) -> list[dict]:
        return [{"metric_name": "api.error_rate", "value": f / n, "unit": "fraction",
                 "tags": {"route": route, "requests": n, "failed": f}} for route, (f, n) in routes.items()]

    alone = tmp_path / "alone"
    alone.mkdir()
    publish(alone / "w.duckdb", "now", WEEKS[0], "web_api_performance", rows({"GET /a": borderline}))
    assert len(evaluate(alone / "w.duckdb", rules_file(alone, rule), "now", WEEKS[0])["opened"]) == 1

    db = tmp_path / "w.duckdb"
    routes = {"GET /a": borderline} | {f"GET /r{i}": (5, 250) for i in range(9)}
    publish(db, "now", WEEKS[0], "web_api_performance", rows(routes))
    assert evaluate(db, rules_file(tmp_path, rule), "now", WEEKS[0])["opened"] == []


CONVERSION = {"name": "conversion_drop", "kind": "change", "metric": "conversion.prototype_request_rate",
              "direction": "down", "alpha": 0.01, "min_relative_change": 0.2, "severity": "HIGH"}


def _rate(x: int, n: int, x0: int | None = None, n0: int | None = None, dispersion: float = 1.0) -> dict:
    tags = {"numerator": x, "denominator": n, "dispersion": dispersion}
    if x0 is not None:
        tags |= {"previous_numerator": x0, "previous_denominator": n0}
    return {"metric_name": "conversion.prototype_request_rate", "value": x / n, "unit": "fraction", "tags": tags}


def test_conversion_drop_reads_the_previous_period_from_the_report_without_a_previous_run(tmp_path: Path) -> None:
    """The audit: 19/4761 against 49/4785 (p = 0.0003) could not fire, no run of the week before existed."""
    db = tmp_path / "w.duckdb"
    publish(db, "now", WEEKS[2], "growth_revenue", [_rate(19, 4761, 49, 4785)])
    (opened,) = evaluate(db, rules_file(tmp_path, CONVERSION), "now", WEEKS[2])["opened"]
    context = _context(db)["all"]
    assert (context["x0"], context["n0"], context["previous_run_id"]) == (49, 4785, None)
    assert context["test"] == "score test" and context["p_value"] == pytest.approx(0.00014, abs=0.00002)
    assert "0.40% (19 of 4,761)" in opened["message"] and "1.02% (49 of 4,785)" in opened["message"]


def test_over_dispersed_days_widen_the_change_test(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    publish(db, "now", WEEKS[2], "growth_revenue", [_rate(19, 4761, 49, 4785, dispersion=6.0)])
    config = rules_file(tmp_path, CONVERSION)
    assert evaluate(db, config, "now", WEEKS[2])["opened"] == []
    con = duckdb.connect(str(db), read_only=True)
    try:
        ((finding,),) = [e.findings for e in findings_of(con, config.rules, "now", WEEKS[2])]
    finally:
        con.close()
    assert not finding.holds and "score test (over-dispersion 6.00)" in finding.message
    assert finding.context["p_value"] > 0.01


def test_a_significant_but_small_drop_does_not_wake_anyone(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    publish(db, "now", WEEKS[2], "growth_revenue", [_rate(40_000, 1_000_000, 42_000, 1_000_000)])
    assert evaluate(db, rules_file(tmp_path, CONVERSION), "now", WEEKS[2])["opened"] == []
    without_floor = {k: v for k, v in CONVERSION.items() if k != "min_relative_change"}
    assert len(evaluate(db, rules_file(tmp_path, without_floor), "now", WEEKS[2])["opened"]) == 1


@pytest.mark.parametrize(("entry", "message"), [
    ({"above": 0.1, "events_tag": "failed"}, "need 'sample_tag'"),
    ({"above": 0.1, "min_sample": 5}, "need 'sample_tag'"),
    ({"above": 0.1, "sample_tag": "n", "alpha": 0.05}, "needs 'events_tag'"),
    ({"above_tag": "limit", "sample_tag": "n", "events_tag": "failed"}, "fixed 'above' or 'below'"),
    ({"above": 0.1, "sample_tag": "n", "min_sample": -1}, "'min_sample' must be a whole number"),
    ({"above": 0.1, "sample_tag": "n", "events_tag": "failed", "bound_tag": "ci_low"}, "two ways to judge"),
])
def test_invalid_sample_keys_name_the_rule_and_key(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(rules.ParamsError, match=message):
        rules_file(tmp_path, {"name": "broken", "kind": "threshold", "metric": "payments.failure_rate",
                              "severity": "LOW", **entry})


BUDGET = {"name": "ai_budget_forecast", "kind": "forecast", "metric": "ai.budget.forecast_usd", "probability": 0.8,
          "severity": "HIGH"}


def _forecast(value: float, spent: float, chance: float, low: float, high: float) -> list[dict]:
    return [{"metric_name": "ai.budget.forecast_usd", "value": value, "unit": "USD",
             "tags": {"budget_usd": 10.0, "mtd_cost_usd": spent, "exceed_probability": chance,
                      "forecast_low_usd": low, "forecast_high_usd": high, "month_start": "2026-11-01"}}]


@pytest.mark.parametrize(("spent", "value", "chance", "fires"), [
    (1.0, 12.5, 0.55, False),  # a point forecast over budget, on day 1: a coin toss, no page
    (6.0, 11.0, 0.86, True),   # likely over budget
    (10.5, 10.5, 1.0, True),   # already over it
    (3.0, 9.0, 0.30, False),
])
def test_the_budget_alert_fires_on_the_chance_of_going_over(tmp_path: Path, spent: float, value: float,
                                                            chance: float, fires: bool) -> None:
    db = tmp_path / "w.duckdb"
    publish(db, "now", WEEKS[0], "ai_costs", _forecast(value, spent, chance, value * 0.8, value * 1.2))
    opened = evaluate(db, rules_file(tmp_path, BUDGET), "now", WEEKS[0])["opened"]
    assert bool(opened) is fires
    if opened:
        assert f"{chance:.0%} chance of exceeding the budget (alert at 80%)" in opened[0]["message"]
        assert "90% prediction interval" in opened[0]["message"]


def test_a_series_rule_judges_every_day_and_keeps_one_alert_per_route(tmp_path: Path) -> None:
    """A one-day incident opens the route's alert (not one per day, which no later run could resolve),
    and a week without a bad day resolves it."""
    rule = {"name": "api_error_rate_daily", "kind": "threshold", "metric": "api.error_rate.daily",
            "subject": "route", "series_tag": "day", "above": 0.05, "sample_tag": "requests", "events_tag": "failed",
            "min_sample": 50, "severity": "CRITICAL"}
    config = rules_file(tmp_path, rule)

    def days(week, bad_day: int | None) -> list[dict]:
        return [{"metric_name": "api.error_rate.daily", "value": f / 77, "unit": "fraction",
                 "tags": {"route": "POST /checkout", "day": str(week.start + timedelta(days=i)), "requests": 77,
                          "failed": f}}
                for i, f in enumerate(25 if i == bad_day else 1 for i in range(7))]

    db = tmp_path / "w.duckdb"
    publish(db, "r0", WEEKS[0], "web_api_performance", days(WEEKS[0], bad_day=3))
    opened = evaluate(db, config, "r0", WEEKS[0])["opened"]
    assert [o["subject"] for o in opened] == ["route=POST /checkout"]
    assert f"day={WEEKS[0].start + timedelta(days=3)}" in opened[0]["message"]
    publish(db, "r1", WEEKS[1], "web_api_performance", days(WEEKS[1], bad_day=None))
    assert [r["subject"] for r in evaluate(db, config, "r1", WEEKS[1])["resolved"]] == ["route=POST /checkout"]
