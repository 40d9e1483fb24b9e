"""Alert rules evaluated over a real warehouse's KPI history: open, keep, resolve over runs; no duplicates."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import nbformat
import pytest
import yaml
from kpi_history import WEEKS
from kpi_history import alerts as _alerts
from kpi_history import evaluate as _evaluate
from kpi_history import publish as _publish
from kpi_history import rules_file as _rules
from statsmodels.stats import proportion

from statex_bi import cli
from statex_bi.alerts import rules


def test_an_alert_opens_stays_single_while_it_holds_and_resolves_when_cleared(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "payment_failures", "kind": "threshold", "metric": "payments.failure_rate",
                               "subject": "provider", "above": 0.1, "severity": "HIGH"})
    rates = [{"stripe": 0.125, "paypal": 0.02}, {"stripe": 0.15, "paypal": 0.03}, {"stripe": 0.04, "paypal": 0.01}]
    records = []
    for i, by_provider in enumerate(rates):
        _publish(db, f"run{i}", WEEKS[i], "growth_revenue", [
            {"metric_name": "payments.failure_rate", "value": v, "unit": "fraction", "tags": {"provider": p}}
            for p, v in by_provider.items()])
        records.append(_evaluate(db, config, f"run{i}", WEEKS[i]))
        if i == 1:
            # a run without the KPI (e.g. --only data_health) neither resolves nor duplicates anything
            _publish(db, "run1b", WEEKS[1], "data_health", [{"metric_name": "health.stale_tables", "value": 0}])
            assert _evaluate(db, config, "run1b", WEEKS[1])["no_data"] == {
                "payment_failures": "payments.failure_rate is not published by this run"}
    assert [len(r["opened"]) for r in records] == [1, 0, 0]
    assert [len(r["resolved"]) for r in records] == [0, 0, 1]
    ((alert_id, name, subject, current, is_open, condition, opened_by, last, resolved_by),) = _alerts(db)
    assert (name, subject) == ("payment_failures", "provider=stripe")
    assert records[0]["opened"][0]["alert_id"] == records[2]["resolved"][0]["alert_id"] == alert_id
    assert not is_open and condition is False
    assert (opened_by, last, resolved_by) == ("run0", "run1", "run2")
    assert current == pytest.approx(0.04)
    # the condition comes back: a new alert, the old one stays resolved
    _publish(db, "run3", WEEKS[3], "growth_revenue", [
        {"metric_name": "payments.failure_rate", "value": 0.2, "unit": "fraction", "tags": {"provider": "stripe"}}])
    assert len(_evaluate(db, config, "run3", WEEKS[3])["opened"]) == 1
    assert [row[4] for row in _alerts(db)] == [False, True]


def test_a_backfill_of_an_earlier_period_leaves_a_newer_alert_alone(tmp_path: Path) -> None:
    """`make reports` backfills the week before the current one: its good numbers must not resolve (and the
    current run then re-open, notifying twice) an alert raised for the current week."""
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "payment_failures", "kind": "threshold", "metric": "payments.failure_rate",
                               "above": 0.1, "severity": "HIGH"})
    for run_id, week, rate in [("now", WEEKS[2], 0.2), ("backfill", WEEKS[1], 0.01)]:
        _publish(db, run_id, week, "growth_revenue", [
            {"metric_name": "payments.failure_rate", "value": rate, "unit": "fraction"}])
    assert len(_evaluate(db, config, "now", WEEKS[2])["opened"]) == 1
    backfill = _evaluate(db, config, "backfill", WEEKS[1])
    assert backfill["opened"] == [] and backfill["resolved"] == []
    ((_, _, _, current, is_open, _, opened_by, last, resolved_by),) = _alerts(db)
    assert is_open and current == pytest.approx(0.2) and (opened_by, last, resolved_by) == ("now", "now", None)


def test_rerunning_a_run_id_does_not_duplicate_an_open_alert(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "stale", "kind": "threshold", "metric": "health.stale_tables", "above": 0,
                               "severity": "HIGH"})
    for _ in range(2):
        _publish(db, "same", WEEKS[0], "data_health", [{"metric_name": "health.stale_tables", "value": 2}])
        _evaluate(db, config, "same", WEEKS[0])
    assert len(_alerts(db)) == 1


def test_a_threshold_can_come_from_the_rows_own_tag(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "budget", "kind": "threshold", "metric": "ai.budget.forecast_usd",
                               "above_tag": "budget_usd", "severity": "HIGH"})
    _publish(db, "r", WEEKS[0], "ai_costs", [{"metric_name": "ai.budget.forecast_usd", "value": 12.5, "unit": "USD",
                                              "tags": {"budget_usd": 10.0}}])
    (opened,) = _evaluate(db, config, "r", WEEKS[0])["opened"]
    assert (opened["current_value"], opened["threshold_value"]) == (12.5, 10.0)
    assert "$12.50" in opened["message"] and "$10.00" in opened["message"]


def _rate(x: int, n: int) -> dict:
    return {"metric_name": "conversion.prototype_request_rate", "value": x / n, "unit": "fraction",
            "tags": {"numerator": x, "denominator": n}}


@pytest.mark.parametrize(("previous", "current", "fires"), [((52, 4600), (18, 4700), True),
                                                          ((52, 4600), (44, 4700), False)])
def test_conversion_drop_falls_back_to_the_previous_periods_run_with_a_score_test(
    tmp_path: Path, previous: tuple[int, int], current: tuple[int, int], fires: bool
) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "conversion_drop", "kind": "change", "direction": "down", "alpha": 0.01,
                               "metric": "conversion.prototype_request_rate", "severity": "HIGH"})
    _publish(db, "before", WEEKS[0], "growth_revenue", [_rate(*previous)])
    _publish(db, "now", WEEKS[1], "growth_revenue", [_rate(*current)])
    _evaluate(db, config, "now", WEEKS[1])
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT fastify_context FROM monitoring.monitoring_alerts").fetchall()
    con.close()
    score = proportion.test_proportions_2indep(*current, *previous, method="score", compare="diff",
                                               alternative="smaller")
    z, p = score.statistic, score.pvalue
    assert bool(rows) is fires and fires is bool(p < 0.01)
    if rows:
        context = json.loads(rows[0][0])
        assert context["z"] == pytest.approx(z) and context["p_value"] == pytest.approx(p)


def test_a_first_run_is_tested_against_the_previous_counts_its_report_computed(tmp_path: Path) -> None:
    """No earlier run in the history: the row's previous_numerator/denominator tags (statex_bi.kpis.changes)
    stand for the previous period, and the message quotes the row's driver."""
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "conversion_drop", "kind": "change", "direction": "down", "alpha": 0.01,
                               "metric": "conversion.prototype_request_rate", "severity": "HIGH"})
    why = "Prototype-request conversion fell 0.74 pt; Direct explains 40%: its rate fell from 1.4% to 0.30%."
    row = _rate(18, 4700)
    row["tags"] |= {"previous_numerator": 52, "previous_denominator": 4600, "driver": why}
    _publish(db, "first", WEEKS[1], "growth_revenue", [row])
    (opened,) = _evaluate(db, config, "first", WEEKS[1])["opened"]
    score = proportion.test_proportions_2indep(18, 4700, 52, 4600, method="score", compare="diff",
                                               alternative="smaller")
    z, p = score.statistic, score.pvalue
    assert "went from 1.13% (52 of 4,600)" in opened["message"]
    assert opened["message"].endswith(f"Why: {why}")
    con = duckdb.connect(str(db), read_only=True)
    context = json.loads(con.execute("SELECT fastify_context FROM monitoring.monitoring_alerts").fetchall()[0][0])
    con.close()
    assert context["z"] == pytest.approx(z) and context["p_value"] == pytest.approx(p) and context["driver"] == why


def test_an_alert_quotes_the_driver_of_the_kpi_it_is_explained_by(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "budget", "kind": "threshold", "metric": "ai.budget.forecast_usd",
                               "above_tag": "budget_usd", "severity": "HIGH", "explained_by": "ai.cost"})
    why = "AI cost rose $3.20; gpt-4o (openai) explains 80%: from $0.1730 to $2.73."
    _publish(db, "r", WEEKS[0], "ai_costs", [
        {"metric_name": "ai.budget.forecast_usd", "value": 12.5, "unit": "USD", "tags": {"budget_usd": 10.0}},
        {"metric_name": "ai.cost", "value": 4.1, "unit": "USD", "tags": {"tier": "all", "driver": why}}])
    (opened,) = _evaluate(db, config, "r", WEEKS[0])["opened"]
    assert opened["message"].endswith(f"Why: {why}")


def test_no_previous_period_in_the_history_is_no_data_not_an_alert(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "conversion_drop", "kind": "change",
                               "metric": "conversion.prototype_request_rate", "severity": "HIGH"})
    _publish(db, "old", WEEKS[0], "growth_revenue", [_rate(50, 4000)])  # two weeks before: not the previous period
    _publish(db, "now", WEEKS[2], "growth_revenue", [_rate(5, 4000)])
    record = _evaluate(db, config, "now", WEEKS[2])
    assert record["opened"] == []
    assert "no previous period (2026-11-09 to 2026-11-15)" in record["no_data"]["conversion_drop"]


def test_too_little_history_is_no_data(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "spike", "kind": "anomaly", "metric": "ai.cost.daily", "series_tag": "day",
                               "window": 28, "min_history": 14, "severity": "HIGH"})
    days = [(WEEKS[0].start + timedelta(days=i)).isoformat() for i in range(7)]
    _publish(db, "now", WEEKS[0], "ai_costs",
             [{"metric_name": "ai.cost.daily", "value": 1.0 + i, "tags": {"day": day}} for i, day in enumerate(days)])
    record = _evaluate(db, config, "now", WEEKS[0])
    assert record["opened"] == [] and "needs 21" in record["no_data"]["spike"]


def test_a_metric_nobody_publishes_yet_is_no_data(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    config = _rules(tmp_path, {"name": "api_p95", "kind": "threshold", "metric": "api.p95_ms", "above": 100,
                               "severity": "HIGH"})
    _publish(db, "now", WEEKS[0], "data_health", [{"metric_name": "health.stale_tables", "value": 0}])
    assert "never been published" in _evaluate(db, config, "now", WEEKS[0])["no_data"]["api_p95"]


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "threshold", "metric": "api.error_rate", "severity": "HIGH"}, "exactly one of above"),
    ({"kind": "threshold", "metric": "api.error_rate", "above": 0.1, "severity": "URGENT"},
     "'severity' must be one of"),
    ({"kind": "anomaly", "metric": "ai.cost.daily", "severity": "LOW", "min_history": 30}, "exceeds 'window'"),
    ({"kind": "change", "metric": "conversion.prototype_request_rate", "severity": "LOW", "above": 1},
     "key 'above' is not allowed"),
    # Accepted silently before: a limit no value can cross the other way, one that never compares, a name
    # that is no KPI (it showed "no data" forever), a minimum change no rate difference reaches.
    ({"kind": "threshold", "metric": "api.error_rate", "above": -0.05, "severity": "CRITICAL"},
     r"'above': -0.05 is outside what api.error_rate \(fraction\) can be, from 0 to 1"),
    ({"kind": "threshold", "metric": "api.p95_ms", "below": -1, "severity": "LOW"}, "0 or more"),
    ({"kind": "threshold", "metric": "api.error_rate", "above": float("nan"), "severity": "HIGH"},
     "'above' must be a finite number, got nan"),
    ({"kind": "anomaly", "metric": "ai.cost.daily", "z": float("inf"), "severity": "LOW"}, "finite number"),
    ({"kind": "threshold", "metric": "api.eror_rate", "above": 0.05, "severity": "HIGH"},
     "'metric' 'api.eror_rate' is not a KPI of the registry; did you mean 'api.error_rate'"),
    ({"kind": "threshold", "metric": "ai.cost", "above": 100, "severity": "HIGH", "explained_by": "ai.costs"},
     "'explained_by' 'ai.costs' is not a KPI of the registry; did you mean 'ai.cost'"),
    ({"kind": "change", "metric": "conversion.prototype_request_rate", "severity": "LOW", "min_change": 5},
     "'min_change' is a difference of rates"),
])
def test_invalid_rules_name_the_rule_and_key(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(rules.ParamsError, match=message) as refused:
        _rules(tmp_path, {"name": "broken", **entry})
    assert str(refused.value).startswith(f"alert rules {tmp_path / 'alerts.yaml'}: rules[0] (broken): ")
    assert "\n" not in str(refused.value)


def test_a_yaml_error_is_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules:\n  - name: api_error_rate\n    kind: threshold\n   metric: api.error_rate\n")
    with pytest.raises(rules.ParamsError) as refused:
        rules.load(path)
    assert str(refused.value) == (f"{path}, line 4, column 4: not valid YAML: expected <block end>, "
                                  "but found '<block mapping start>'")


def test_the_cli_refuses_a_bad_rule_in_one_line_with_exit_code_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump({"rules": [
        {"name": "api_errors", "kind": "threshold", "metric": "api.error_rate", "above": -0.05, "severity": "HIGH"}]}))
    (tmp_path / "notebooks").mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})])
    nbformat.write(notebook, tmp_path / "notebooks" / "report.ipynb")
    params = tmp_path / "weekly.yaml"
    params.write_text(yaml.safe_dump({"title": "T", "notebooks_dir": "notebooks", "alerts": "alerts.yaml",
                                      "notebooks": {"report": {}}}))
    assert cli.main(["run", str(params), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and "'above': -0.05 is outside what api.error_rate" in error, error
