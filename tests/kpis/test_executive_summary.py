"""The executive summary's data (scorecard, claims ledger) and its place in a run: listed first, run last."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from statex_bi import display, warehouse
from statex_bi.alerts import lifecycle
from statex_bi.kpis import executive_summary as summary
from statex_bi.periods import Period
from statex_bi.runner.metrics import replace_metrics

WEEK = Period(date(2026, 11, 23), date(2026, 11, 29))
BEFORE = Period(date(2026, 11, 16), date(2026, 11, 22))


def _seed(db: Path) -> None:
    def rows(records: list[tuple]) -> list[dict]:
        return [{"metric_name": n, "metric_type": "GAUGE", "value": v, "unit": u, "tags": t, "source": "test"}
                for n, v, u, t in records]

    with warehouse.writer(db) as con:
        replace_metrics(con, "prev", BEFORE, {"growth_revenue": rows([
            ("conversion.prototype_request_rate", 0.011, "fraction", {"numerator": 51, "denominator": 4565})])})
        replace_metrics(con, "now", WEEK, {
            "growth_revenue": rows([("conversion.prototype_request_rate", 0.004, "fraction",
                                     {"numerator": 19, "denominator": 4700})]),
            "ai_costs": rows([("ai.budget.forecast_usd", 10.6, "USD", {"budget_usd": 10.0}),
                              ("ai.usd_per_1k_tokens", 0.0012, "USD", {"tier": "openai"})]),
            "infrastructure_savings": rows([("infra.savings_pct", 71.0, "percent", {"service": "storage"})]),
        })


def _write(tmp_path: Path, name: str, key: str, entries: list[dict]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({key: entries}))
    return path


def test_scorecard_lights_and_changes(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    _seed(db)
    targets = _write(tmp_path, "targets.yaml", "targets", [
        {"label": "Conversion", "metric": "conversion.prototype_request_rate", "at_least": 0.01, "better": "up"},
        {"label": "Budget", "metric": "ai.budget.forecast_usd", "at_most_tag": "budget_usd", "better": "down"},
        {"label": "p95", "metric": "api.p95_ms", "tags": {"route": "all"}, "at_most": 100},
    ])
    con = duckdb.connect(str(db), read_only=True)
    card = summary.scorecard(con, WEEK, "now", targets).set_index("label")
    assert card.loc["Conversion", "light"] == summary.RED  # 0.4% against at least 1%: missed by 60%
    assert card.loc["Conversion", "change_text"] == "-0.70 pt (was 1.1%)"
    assert (card.loc["Conversion", "value_text"], card.loc["Budget", "value_text"]) == ("0.40%", "$10.60")
    assert card.loc["Budget", "light"] == summary.AMBER  # $10.60 against $10.00: within 10%
    assert card.loc["Budget", "change_text"] == "no value for the previous period"
    assert card.loc["p95", "light"] == summary.NO_DATA
    html = display.scorecard_html(card.reset_index(), {"growth_revenue", "ai_costs"})
    assert '<a href="growth_revenue.html">Growth and revenue</a>' in html  # the report's title, not its file


def test_the_summary_run_on_its_own_shows_what_the_reports_published_for_its_period(tmp_path: Path) -> None:
    """`run weekly --only executive_summary`: its own run published nothing, the reports' run did."""
    db = tmp_path / "w.duckdb"
    _seed(db)
    targets = _write(tmp_path, "targets.yaml", "targets", [
        {"label": "Conversion", "metric": "conversion.prototype_request_rate", "at_least": 0.01, "better": "up"},
        {"label": "Budget", "metric": "ai.budget.forecast_usd", "at_most_tag": "budget_usd", "better": "down"}])
    claims = _write(tmp_path, "claims.yaml", "claims", [
        {"claim": "R2 66% cheaper", "metric": "infra.savings_pct", "tags": {"service": "storage"},
         "holds_if": {"at_least": 66}, "report": "infrastructure_savings"}])
    con = duckdb.connect(str(db), read_only=True)
    card = summary.scorecard(con, WEEK, "summary-only", targets).set_index("label")
    ledger = summary.claims_ledger(con, WEEK, "summary-only", claims)
    assert card.loc["Conversion", "value"] == 0.004 and card.loc["Conversion", "run_id"] == "now"
    assert card.loc["Conversion", "change_text"] == "-0.70 pt (was 1.1%)"
    assert summary.sentence(card.reset_index(), summary.open_alerts(con), ledger).startswith(
        "0 of 2 KPIs with a target meet it; 0 open alerts; 1 of 1 measurable seed claims hold")
    html = display.scorecard_html(card.reset_index(), summary.run_reports(con, "summary-only"), "summary-only")
    assert '<a href="../now/growth_revenue.html">Growth and revenue</a> (run now)' in html
    assert summary.scorecard(con, BEFORE, "summary-only", targets).set_index("label").loc[
        "Conversion", "run_id"] == "prev"  # each period its own values


def test_the_previous_value_comes_from_the_warehouse_when_no_earlier_run_published_it(tmp_path: Path) -> None:
    """A first run: the report computed the previous period itself (tag previous_value) and split the change."""
    db = tmp_path / "w.duckdb"
    why = "Sessions fell 120; Paid Search explains 80%: from 900 to 804."
    with warehouse.writer(db) as con:
        replace_metrics(con, "first", WEEK, {"growth_revenue": [
            {"metric_name": "ga4.sessions", "metric_type": "GAUGE", "value": 4580.0, "unit": "count",
             "tags": {"previous_value": 4700.0, "driver": why}, "source": "ga4"}]})
    targets = _write(tmp_path, "targets.yaml", "targets", [{"label": "Sessions", "metric": "ga4.sessions"}])
    con = duckdb.connect(str(db), read_only=True)
    card = summary.scorecard(con, WEEK, "first", targets)
    assert card.loc[0, "change_text"] == "-120, -3% (was 4,700)"
    assert card.loc[0, "driver"] == why
    assert why in display.drivers_html(card, "first")


def test_open_alerts_are_listed_most_severe_first(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with warehouse.writer(db) as con:
        ranked = [("a_low", "LOW"), ("b_medium", "MEDIUM"), ("c_critical", "CRITICAL"), ("d_high", "HIGH")]
        for name, severity in ranked:
            con.execute("INSERT INTO monitoring.monitoring_alerts (alert_name, severity, run_id, subject, params) "
                        "VALUES (?, ?, 'r', 'all', 'weekly')", [name, severity])
    with duckdb.connect(str(db), read_only=True) as con:
        listed = summary.open_alerts(con)
        from_lifecycle = [a["severity"] for a in lifecycle.open_alerts(con)]
    assert list(listed["severity"]) == from_lifecycle == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]


def test_claims_ledger_verdicts_come_from_the_data(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    _seed(db)
    claims = _write(tmp_path, "claims.yaml", "claims", [
        {"claim": "R2 66% cheaper", "metric": "infra.savings_pct", "tags": {"service": "storage"},
         "holds_if": {"at_least": 66}, "report": "infrastructure_savings"},
        {"claim": "SES 90% cheaper", "metric": "infra.savings_pct", "tags": {"service": "email"},
         "holds_if": {"at_least": 90}, "report": "infrastructure_savings"},
        {"claim": "$0.03 per 1K", "metric": "ai.usd_per_1k_tokens", "tags": {"tier": "openai"},
         "holds_if": {"near": 0.03, "within": 0.25}, "report": "ai_costs"},
    ])
    con = duckdb.connect(str(db), read_only=True)
    ledger = summary.claims_ledger(con, WEEK, "now", claims).set_index("claim")
    assert ledger.loc["R2 66% cheaper", "verdict"] == summary.HOLDS
    assert ledger.loc["SES 90% cheaper", "verdict"] == summary.NOT_MEASURABLE
    assert ledger.loc["$0.03 per 1K", "verdict"] == summary.FAILS
    assert ledger.loc["R2 66% cheaper", "report"] == "infrastructure_savings"
    html = display.ledger_html(ledger.reset_index(), {"ai_costs", "infrastructure_savings", "growth_revenue"})
    assert '<a href="infrastructure_savings.html">' in html


def test_project_claims_and_targets_files_are_valid(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "empty.duckdb"))
    warehouse.migrate(con)
    ledger = summary.claims_ledger(con, WEEK, "none")
    assert len(ledger) >= 10 and set(ledger["verdict"]) == {summary.NOT_MEASURABLE}
    assert {"infra.savings_pct [service=storage]", "tests.speedup_vs_jest", "api.p95_ms [route=all]",
            "web_vitals.lcp_p75_ms [device=all]"} <= set(ledger["metric"])
    assert set(summary.scorecard(con, WEEK, "none")["light"]) == {summary.NO_DATA}


PARAMS_CELL = 'period_start = "2026-01-01"\nperiod_end = "2026-01-07"\nrun_id = ""'


def test_the_summary_is_listed_first_and_runs_after_the_others_published(tmp_path: Path, monkeypatch) -> None:
    from statex_bi.runner.run import run_params

    folder = tmp_path / "notebooks"
    folder.mkdir()
    publisher = new_notebook(cells=[new_code_cell(PARAMS_CELL, metadata={"tags": ["parameters"]}),
                                    new_code_cell("from statex_bi import publish\n"
                                                  "publish.metric('health.stale_tables', 7, unit='count')")])
    reader = new_notebook(cells=[new_code_cell(PARAMS_CELL, metadata={"tags": ["parameters"]}), new_code_cell(
        "import duckdb, os\ncon = duckdb.connect(os.environ['STATEX_BI_DB'], read_only=True)\n"
        "seen = con.execute('SELECT count(*) FROM monitoring.monitoring_metrics WHERE run_id = ?', [run_id]).fetchall()"
        "[0][0]\nalerts = con.execute('SELECT count(*) FROM monitoring.monitoring_alerts WHERE run_id = ?', [run_id])"
        ".fetchall()[0][0]\nassert (seen, alerts) == (1, 1), (seen, alerts)")])
    reader.metadata["statex_bi"] = {"runs_after_reports": True}
    for nb in (publisher, reader):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(reader, folder / "summary.ipynb")
    nbformat.write(publisher, folder / "orders.ipynb")
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump({"rules": [
        {"name": "many_orders", "kind": "threshold", "metric": "health.stale_tables", "above": 5, "severity": "LOW"}]}))
    params = tmp_path / "p.yaml"
    spec = {"title": "T", "start": "2026-03-02", "end": "2026-03-08", "notebooks_dir": "notebooks",
            "alerts": "alerts.yaml", "notebooks": {"summary": {}, "orders": {}}}
    params.write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("STATEX_BI_DB", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("STATEX_BI_OUTPUTS", str(tmp_path / "outputs"))
    assert run_params(params, run_id="r1", quiet=True) == 0
    manifest = json.loads((tmp_path / "outputs" / "r1" / "manifest.json").read_text())
    assert list(manifest["notebooks"]) == ["summary", "orders"]
    assert manifest["notebooks"]["summary"]["started_at"] >= manifest["notebooks"]["orders"]["finished_at"]
    assert [a["rule"] for a in manifest["alerts"]["opened"]] == ["many_orders"]
