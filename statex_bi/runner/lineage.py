"""The dbt models behind each report's KPIs, linked into the run's published docs site (lineage/)."""

from __future__ import annotations

import html
from urllib.parse import quote

from statex_bi.metrics import registry

LINEAGE_PAGE = "lineage/index.html"


def report_models(stem: str) -> list[str]:
    """The models a report's KPIs read: the registry's `models` of each KPI (empty for a report it has none of)."""
    return sorted({model for report in registry.reports() if report.report == stem
                   for kpi in report.kpis for model in kpi.models})


def model_links(run_id: str, stem: str) -> str:
    """HTML links from a report's index row to its models in the run's docs site ('' when none)."""
    return ", ".join(
        f'<a href="{quote(run_id)}/{LINEAGE_PAGE}#!/model/model.statex_bi.{quote(name)}">{html.escape(name)}</a>'
        for name in report_models(stem)
    )
