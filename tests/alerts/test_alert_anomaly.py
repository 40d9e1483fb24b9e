"""The anomaly rule: weekly-seasonal STL residuals over calendar days, false discovery over the period's days."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
from kpi_history import WEEKS, evaluate, publish, rules_file
from scipy.stats import norm

from statex_bi.alerts.evaluate import evaluate as findings_of
from statex_bi.periods import Period

SPIKE = {"name": "ai_cost_spike", "kind": "anomaly", "metric": "ai.cost.daily", "where": {"tier": "all"},
         "series_tag": "day", "window": 28, "min_history": 14, "z": 3.5, "direction": "up", "severity": "HIGH"}
# The audit's weekday pattern of the demo's AI cost: Monday-Tuesday about $0.30, Thursday-Friday $0.17.
WEEKDAY_COST = {0: 0.30, 1: 0.30, 2: 0.24, 3: 0.17, 4: 0.17, 5: 0.12, 6: 0.12}


def _daily(values: dict[date, float], kind: str = "COUNTER") -> list[dict]:
    return [{"metric_name": "ai.cost.daily", "value": round(v, 4), "unit": "USD", "metric_type": kind,
             "tags": {"tier": "all", "day": d.isoformat()}} for d, v in values.items()]


def _seasonal(days: list[date], seed: int = 5) -> dict[date, float]:
    rng = np.random.default_rng(seed)
    return {d: WEEKDAY_COST[d.weekday()] + float(rng.normal(0, 0.01)) for d in days}


def _days(period: Period, before: int) -> list[date]:
    return [period.start - timedelta(days=before) + timedelta(days=i) for i in range(before + period.days)]


def test_a_thursday_at_a_mondays_cost_is_a_spike_and_a_normal_monday_is_not(tmp_path: Path) -> None:
    """Against the trailing median (the old rule) a Monday looks expensive and a $0.30 Thursday normal."""
    config = rules_file(tmp_path, SPIKE)
    calm = _seasonal(_days(WEEKS[3], 28))
    db = tmp_path / "calm.duckdb"
    publish(db, "now", WEEKS[3], "ai_costs", _daily(calm))
    record = evaluate(db, config, "now", WEEKS[3])
    assert record["opened"] == [] and "ai_cost_spike" not in record["no_data"]

    thursday = WEEKS[3].start + timedelta(days=3)
    trailing = [v for d, v in calm.items() if d < WEEKS[3].start]
    median, mad = np.median(trailing), np.median(np.abs(np.array(trailing) - np.median(trailing)))
    assert 0.6745 * (0.30 - median) / mad < 3.5  # the trailing median's robust z misses it
    db = tmp_path / "spike.duckdb"
    publish(db, "now", WEEKS[3], "ai_costs", _daily(calm | {thursday: 0.30}))
    (opened,) = evaluate(db, config, "now", WEEKS[3])["opened"]
    assert f"on {thursday}" in opened["message"] and "weekly-seasonal STL fit over 28 calendar day(s)" in opened[
        "message"]
    assert opened["threshold_value"] < 0.25  # what one Thursday alone may cost: far below a Monday's


def test_days_without_cost_are_calendar_days_of_history(tmp_path: Path) -> None:
    """A day without AI calls has no row; it is a $0 day, not a missing one (the old rule counted rows)."""
    config = rules_file(tmp_path, SPIKE)
    sparse = {d: 0.3 for d in _days(WEEKS[3], 28) if d.toordinal() % 3 == 0}
    db = tmp_path / "w.duckdb"
    publish(db, "now", WEEKS[3], "ai_costs", _daily(sparse))
    record = evaluate(db, config, "now", WEEKS[3])
    assert "ai_cost_spike" not in record["no_data"]
    con_findings = record["opened"]
    assert con_findings == []  # the same $0.30 every third day is the series' normal
    gauge = tmp_path / "gauge.duckdb"
    publish(gauge, "now", WEEKS[3], "ai_costs", _daily(sparse, "GAUGE"))
    assert "needs 21" in evaluate(gauge, config, "now", WEEKS[3])["no_data"]["ai_cost_spike"]


def test_the_worst_of_a_months_days_is_adjusted_for_the_number_of_days(tmp_path: Path) -> None:
    """A day beyond z = 3.5 alone is no alarm when it is the worst of 30 (Benjamini-Hochberg over the days)."""
    month = Period(date(2026, 11, 1), date(2026, 11, 30))
    values = _seasonal(_days(month, 28), seed=11)
    day = date(2026, 11, 18)
    values[day] += 0.0212  # about 3.9 of this series' one-day-ahead error scales
    config = rules_file(tmp_path, SPIKE)
    db = tmp_path / "month.duckdb"
    publish(db, "month", month, "ai_costs", _daily(values))
    assert evaluate(db, config, "month", month)["opened"] == []
    con = duckdb.connect(str(db), read_only=True)
    try:
        ((finding,),) = [e.findings for e in findings_of(con, config.rules, "month", month)]
    finally:
        con.close()
    alpha = norm.sf(3.5)
    assert finding.context["point"] == day.isoformat() and 3.5 < finding.context["z"] < 4.3
    assert finding.context["p_value"] < alpha <= finding.context["p_adjusted"]
    assert finding.context["tested_points"] == 30 and not finding.holds


def test_a_spike_opens_and_the_next_calm_week_resolves_it(tmp_path: Path) -> None:
    config = rules_file(tmp_path, SPIKE)
    rng = np.random.default_rng(3)
    costs = {d: float(rng.uniform(0.1, 0.5)) for d in _days(WEEKS[3], 28)}
    spike_day = WEEKS[3].start + timedelta(days=2)
    costs[spike_day] = 2.4
    db = tmp_path / "w.duckdb"
    publish(db, "now", WEEKS[3], "ai_costs", _daily(costs))
    (opened,) = evaluate(db, config, "now", WEEKS[3])["opened"]
    assert f"on {spike_day}" in opened["message"] and opened["current_value"] == 2.4
    assert 0.5 < opened["threshold_value"] < 2.4
    calm = {WEEKS[3].end + timedelta(days=i): 0.3 for i in range(1, 8)}
    publish(db, "next", Period(min(calm), max(calm)), "ai_costs", _daily(calm))
    assert len(evaluate(db, config, "next", Period(min(calm), max(calm)))["resolved"]) == 1


@pytest.mark.parametrize("direction", ["down", "both"])
def test_a_drop_is_found_when_the_rule_looks_down(tmp_path: Path, direction: str) -> None:
    values = _seasonal(_days(WEEKS[3], 28))
    monday = WEEKS[3].start
    values[monday] = 0.12  # a weekend's cost on a Monday
    config = rules_file(tmp_path, SPIKE | {"direction": direction})
    db = tmp_path / "w.duckdb"
    publish(db, "now", WEEKS[3], "ai_costs", _daily(values))
    (opened,) = evaluate(db, config, "now", WEEKS[3])["opened"]
    assert f"on {monday}" in opened["message"] and opened["threshold_value"] > 0.2
