"""One KPI registry: docs/metrics.md, metrics.html, the publish check and each report's history come from it."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from statex_bi import publish, warehouse
from statex_bi.config import PROJECT_ROOT
from statex_bi.exceptions import ParamsError
from statex_bi.metrics import registry
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period
from statex_bi.runner import kpi_page

WEEK = Period(date(2026, 11, 23), date(2026, 11, 29))


def test_docs_metrics_md_is_generated_from_the_registry():
    assert registry.DOC.read_text(encoding="utf-8") == registry.render_markdown(), (
        "docs/metrics.md is out of date: run `python -m statex_bi.metrics.registry`"
    )


def test_every_kpi_has_a_label_unit_definition_and_source_and_each_report_a_headline():
    kpis = registry.kpis()
    assert {"health.tables_loaded", "conversion.prototype_request_rate", "revenue.net", "ai.cost"} <= set(kpis)
    for report in registry.reports():
        assert any(k.headline for k in report.kpis), f"{report.report} has no headline KPI"
    assert kpis["revenue.net"].breakdown_key == "provider" and kpis["revenue.net"].accepts_unit("GBP")
    assert not kpis["ai.cost"].accepts_unit("EUR")


def test_a_malformed_definitions_file_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text(
        "report: x\ntitle: X\nnotebook: notebooks/x.ipynb\nkpis:\n  - name: x.one\n    label: One\n    unit: count\n"
        "    source: s\n", encoding="utf-8")
    monkeypatch.setattr(registry, "DEFINITIONS", tmp_path)
    registry.reports.cache_clear()
    try:
        with pytest.raises(ParamsError, match=r"broken.yaml: KPI #1 \(x.one\): missing definition"):
            registry.reports()
    finally:
        registry.reports.cache_clear()


def test_publish_checks_every_metric_before_writing_any(tmp_path, monkeypatch):
    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(publish.SIDECAR_ENV, str(sidecar))
    good = Metric("ai.calls", 3, "count", "sentry", metric_type="COUNTER")
    with pytest.raises(ParamsError, match="'ai.not_a_kpi' is not in the KPI registry"):
        publish.publish([good, Metric("ai.not_a_kpi", 1, "count", "sentry")])
    with pytest.raises(ParamsError, match="unit 'EUR' differs from the registry's 'USD'"):
        publish.publish([good, Metric("ai.cost", 1.5, "EUR", "sentry", {"tier": "all"})])
    assert not sidecar.exists(), "nothing is published before everything is checked"


def test_publish_writes_defined_values_and_explains_undefined_ones(tmp_path, monkeypatch):
    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv(publish.SIDECAR_ENV, str(sidecar))
    frame = publish.publish([
        Metric("ai.cost", 0.000123456789, "USD", "sentry", {"tier": "openai", "median": float("nan")}, "COUNTER"),
        Metric("ai.cost_per_prototype", None, "USD", "sentry", reason="no prototype in the period"),
        Metric("revenue.aov", float("nan"), "EUR", "payments", {"provider": "all"}),
    ])
    lines = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert [(r["metric_name"], r["value"], r["tags"]) for r in lines] == [
        ("ai.cost", 0.000123456789, {"tier": "openai", "median": None})]
    assert frame["published"].tolist() == [True, False, False]
    assert frame["breakdown"].tolist() == ["openai", "", "all"]
    assert frame.loc[1, "reason"] == "no prototype in the period"
    assert "nothing to divide by" in frame.loc[2, "reason"]


def _insert(con, report: str, name: str, value: float, start: date, end: date, tags: dict, recorded: datetime,
            unit: str = "USD") -> None:
    con.execute(
        "INSERT INTO monitoring.monitoring_metrics (metric_name, metric_type, value, unit, tags, source, run_id, "
        "report, period_start, period_end, recorded_at) VALUES (?, 'GAUGE', ?, ?, ?, 's', ?, ?, ?, ?, ?)",
        [name, value, unit, json.dumps(tags), f"run-{recorded:%Y%m%d%H%M}", report, start, end, recorded],
    )


def test_history_shows_the_latest_run_of_the_last_12_periods_of_the_same_kind(db_file):
    with warehouse.writer(db_file) as con:
        for weeks_back in range(1, 15):
            start = WEEK.start - timedelta(weeks=weeks_back)
            recorded = datetime(2026, 11, 30) - timedelta(weeks=weeks_back)
            _insert(con, "ai_costs", "ai.cost", weeks_back, start, start + timedelta(days=6), {"tier": "all"},
                    recorded)
            _insert(con, "ai_costs", "ai.cost", 1000 + weeks_back, start, start + timedelta(days=6),
                    {"tier": "openai"}, recorded)
        last = WEEK.start - timedelta(weeks=1)
        _insert(con, "ai_costs", "ai.cost", 99.5, last, last + timedelta(days=6), {"tier": "all"},
                datetime(2026, 11, 30, 12))  # a re-run of last week replaces its value
        _insert(con, "ai_costs", "ai.cost", 5000, date(2026, 10, 1), date(2026, 10, 31), {"tier": "all"},
                datetime(2026, 11, 2))  # a month: not the same kind
        _insert(con, "other_report", "ai.cost", 7000, last, last + timedelta(days=6), {"tier": "all"},
                datetime(2026, 11, 30))
        _insert(con, "ai_costs", "ai.cost", 8000, WEEK.start, WEEK.end, {"tier": "all"},
                datetime(2026, 11, 30))  # this period's earlier run: this run's value wins
    published = pd.DataFrame([{"metric_name": "ai.cost", "breakdown": "all", "value": 2.5, "unit": "USD",
                               "tags": {"tier": "all"}, "source": "s", "published": True, "reason": ""}])
    with warehouse.connect(db_file, read_only=True) as con:
        frame, columns = registry.history(con, "ai_costs", WEEK, published)
    assert len(frame) == registry.HISTORY_PERIODS
    assert frame["period"].iloc[0] == "23 Nov 2026 – 29 Nov 2026"
    assert frame["period"].iloc[1] == "16 Nov 2026 – 22 Nov 2026"
    assert frame["ai.cost"].tolist() == [2.5, 99.5, *range(2, 12)]
    assert columns["ai.cost"].header() == "AI cost (USD)"
    assert frame["ai.cost_per_prototype"].isna().all(), "a headline KPI never published is an empty column"


def test_metrics_page_lists_every_kpi_with_its_latest_value_and_report(db_file):
    with warehouse.writer(db_file) as con:
        _insert(con, "ai_costs", "ai.cost", 1.25, date(2026, 11, 16), date(2026, 11, 22), {"tier": "all"},
                datetime(2026, 11, 23))
        _insert(con, "ai_costs", "ai.cost", 2.5, WEEK.start, WEEK.end, {"tier": "all"}, datetime(2026, 11, 30))
        _insert(con, "ai_costs", "ai.cost", -0.0002, WEEK.start, WEEK.end, {"tier": "ollama"},
                datetime(2026, 11, 30))
    with warehouse.connect(db_file, read_only=True) as con:
        latest = registry.latest_values(con)
    page = kpi_page.render(latest, {("run-202611300000", "ai_costs"): "run-202611300000/ai_costs.html"})
    for kpi in registry.kpis().values():
        assert kpi.label in page and kpi.name in page
    assert "$2.50; ollama: \u2212$0.0002" in page
    assert '<a href="run-202611300000/ai_costs.html">23 Nov 2026 – 29 Nov 2026</a>' in page
    assert "$1.25" not in page, "only the newest period's value"
    assert page.count("not published yet") == len(registry.kpis()) - 1


def test_every_model_a_kpi_names_is_a_model_of_the_dbt_project():
    models = {path.stem for path in (PROJECT_ROOT / "statex_bi" / "models").rglob("*.sql")}
    named = {name for kpi in registry.kpis().values() for name in kpi.models}
    assert named and named <= models, sorted(named - models)
    without = {kpi.name for kpi in registry.kpis().values() if not kpi.models}
    assert {name.split(".")[0] for name in without} == {"health"}, "only data health reads no model"


def test_metrics_page_lists_each_kpis_models_sources_and_reports(db_file):
    with warehouse.writer(db_file) as con:
        _insert(con, "growth_revenue", "conversion.prototype_request_rate", 0.01, WEEK.start, WEEK.end, {},
                datetime(2026, 11, 30))
    with warehouse.connect(db_file, read_only=True) as con:
        latest = registry.latest_values(con)
    pages = {("run-202611300000", "growth_revenue"): "run-1/growth_revenue.html",
             ("run-202611300000", "executive_summary"): "run-1/executive_summary.html"}
    page = kpi_page.render(latest, pages, lineage="run-1/lineage/index.html", summary=kpi_page.summarised())
    row = page[page.index("<code>conversion.prototype_request_rate</code>"):]
    row = row[:row.index("</tr>")]
    for model in ("ga4_daily_traffic", "ga4_daily_key_events"):
        assert f'href="run-1/lineage/index.html#!/model/model.statex_bi.{model}"' in row
    assert '<a href="run-1/growth_revenue.html">Growth and revenue</a>' in row
    assert '<a href="run-1/executive_summary.html">Executive summary</a>' in row  # a headline of the summary
    assert "<td>ga4</td>" in row
