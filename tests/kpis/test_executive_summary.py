"""The executive summary's data (scorecard, claims ledger) and its place in a run: listed first, run last."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import nbformat
import pandas as pd
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


def _interval_seed(db: Path) -> None:
    rows = [
        ("conversion.prototype_request_rate", 0.004, "fraction",
         {"numerator": 19, "denominator": 4700, "ci_low": 0.0026, "ci_high": 0.0063}),
        ("conversion.signup_rate", 0.031, "fraction", {"ci_low": 0.026, "ci_high": 0.036}),
        ("payments.failure_rate", 0.02, "fraction", {"provider": "stripe", "ci_low": 0.011, "ci_high": 0.034}),
        ("infra.savings_pct", 89.6, "percent", {"service": "email", "range_low": 84.1, "range_high": 92.3,
                                                "unverified_prices": "sendgrid-essentials-100k"}),
        ("api.p95_ms", 100.0, "ms", {"route": "all"}),
        ("ai.usd_per_1k_tokens", 0.0016, "USD", {"tier": "openai", "interval_basis": "no interval: a census"}),
        ("web_vitals.lcp_p75_ms", 2400.0, "ms", {"device": "all", "ci_low": 2300.0, "ci_high": None}),
    ]
    with warehouse.writer(db) as con:
        replace_metrics(con, "now", WEEK, {"mixed": [
            {"metric_name": n, "metric_type": "GAUGE", "value": v, "unit": u, "tags": t, "source": "test"}
            for n, v, u, t in rows]})


def test_claims_are_holds_fails_or_inconclusive_by_their_interval_in_the_kpis_unit(tmp_path: Path) -> None:
    """The audit: verdicts used the point estimate only ("SES 90%: fails by 0.4 pt" inside the catalog's own
    uncertainty); criteria printed 0.005 for half a percent."""
    db = tmp_path / "w.duckdb"
    _interval_seed(db)
    claims = _write(tmp_path, "claims.yaml", "claims", [
        {"claim": "conversion at least 0.5%", "metric": "conversion.prototype_request_rate",
         "holds_if": {"at_least": 0.005}},
        {"claim": "conversion at least 1%", "metric": "conversion.prototype_request_rate",
         "holds_if": {"at_least": 0.01}},
        {"claim": "sign-ups at least 2%", "metric": "conversion.signup_rate", "holds_if": {"at_least": 0.02}},
        {"claim": "SES 90% cheaper", "metric": "infra.savings_pct", "tags": {"service": "email"},
         "holds_if": {"at_least": 90}},
        {"claim": "under 100 ms", "metric": "api.p95_ms", "tags": {"route": "all"}, "holds_if": {"at_most": 100}},
        {"claim": "failures near 3%", "metric": "payments.failure_rate", "tags": {"provider": "stripe"},
         "holds_if": {"near": 0.03, "within": 0.5}},
        {"claim": "$0.03 per 1K", "metric": "ai.usd_per_1k_tokens", "tags": {"tier": "openai"},
         "holds_if": {"near": 0.03, "within": 0.25}},
        {"claim": "LCP under 2.5 s", "metric": "web_vitals.lcp_p75_ms", "tags": {"device": "all"},
         "holds_if": {"at_most": 2500}},
    ])
    con = duckdb.connect(str(db), read_only=True)
    ledger = summary.claims_ledger(con, WEEK, "now", claims).set_index("claim")
    con.close()
    assert ledger.loc["conversion at least 0.5%", "verdict"] == summary.INCONCLUSIVE  # 0.4%, CI 0.26-0.63%
    assert ledger.loc["conversion at least 1%", "verdict"] == summary.FAILS
    assert ledger.loc["sign-ups at least 2%", "verdict"] == summary.HOLDS
    assert ledger.loc["SES 90% cheaper", "verdict"] == summary.INCONCLUSIVE
    assert ledger.loc["under 100 ms", "verdict"] == summary.HOLDS  # the edge is met, here as everywhere
    assert ledger.loc["failures near 3%", "verdict"] == summary.INCONCLUSIVE  # 1.1-3.4% against 1.5-4.5%
    assert ledger.loc["conversion at least 0.5%", "criterion"] == "≥ 0.50%"
    assert ledger.loc["conversion at least 0.5%", "interval_text"] == "95% CI 0.26% to 0.63%"
    # An unverified catalog row that sets an end of the range is named beside it, never silently.
    assert ledger.loc["SES 90% cheaper", "interval_text"] == (
        "scenario range 84.1% to 92.3%; rests in part on unverified prices: sendgrid-essentials-100k")
    assert ledger.loc["under 100 ms", "interval_text"] == "no interval published"
    assert ledger.loc["$0.03 per 1K", "interval_text"] == "no interval: a census"  # what the verdict rests on
    assert ledger.loc["$0.03 per 1K", "verdict"] == summary.FAILS
    # an unbounded upper end (too few samples for an order statistic) is not a missing interval
    assert ledger.loc["LCP under 2.5 s", "verdict"] == summary.INCONCLUSIVE
    assert ledger.loc["LCP under 2.5 s", "interval_text"] == "95% CI 2.3 s to no bound"
    html = display.ledger_html(ledger.reset_index())
    assert "<th>Interval</th>" in html and "inconclusive" in html


def test_a_target_whose_interval_straddles_it_is_amber_and_shows_the_interval(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    _interval_seed(db)
    targets = _write(tmp_path, "targets.yaml", "targets", [
        {"label": "Conversion", "metric": "conversion.prototype_request_rate", "at_least": 0.005,
         "tolerance": 0.0},
        {"label": "Failures", "metric": "payments.failure_rate", "tags": {"provider": "stripe"}, "at_most": 0.05},
        {"label": "Sign-ups", "metric": "conversion.signup_rate", "at_least": 0.04},
    ])
    con = duckdb.connect(str(db), read_only=True)
    card = summary.scorecard(con, WEEK, "now", targets).set_index("label")
    con.close()
    assert card.loc["Conversion", "light"] == summary.AMBER  # missed as a point, not by the interval
    assert card.loc["Conversion", "value_text"] == "0.40% (95% CI 0.26% to 0.63%)"
    assert card.loc["Failures", "light"] == summary.GREEN
    assert card.loc["Sign-ups", "light"] == summary.RED  # the whole interval is below 4%, tolerance or not


def test_unmeasured_claims_print_their_criterion_in_the_registry_unit(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "empty.duckdb"))
    warehouse.migrate(con)
    ledger = summary.claims_ledger(con, WEEK, "none").set_index("metric")
    con.close()
    assert ledger.loc["api.error_rate [route=all]", "criterion"] == "≤ 5.0%"
    assert ledger.loc["api.p95_ms [route=all]", "criterion"].startswith("≤ 100")


def test_each_claim_links_to_the_table_that_measured_it(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    _seed(db)
    con = duckdb.connect(str(db), read_only=True)
    ledger = summary.claims_ledger(con, WEEK, "now").set_index("metric")
    con.close()
    assert ledger.loc["infra.savings_pct [service=storage]", "anchor"] == "savings-by-service"
    html = display.ledger_html(ledger.reset_index(), {"infrastructure_savings", "ai_costs"})
    assert '<a href="infrastructure_savings.html#savings-by-service">' in html
    assert 'id="savings-by-service"' in display.table_html(pd.DataFrame({"x": [1]}), caption="Savings by service")


def test_every_claims_table_is_a_caption_of_its_report() -> None:
    import re

    from statex_bi.config import NOTEBOOKS_DIR, PARAMS_DIR

    for claim in yaml.safe_load((PARAMS_DIR / "claims.yaml").read_text())["claims"]:
        notebook = nbformat.read(NOTEBOOKS_DIR / f"{claim['report']}.ipynb", as_version=4)
        code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        captions = set(re.findall(r'caption="([^"]+)"', code))
        assert claim.get("table") in captions, f"{claim['claim']}: no table captioned {claim.get('table')!r}"
