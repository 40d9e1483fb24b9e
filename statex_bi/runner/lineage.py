"""The dbt models behind each report's tables, linked into the run's published docs site (lineage/)."""

from __future__ import annotations

import html
from urllib.parse import quote

LINEAGE_PAGE = "lineage/index.html"
# Report notebook -> the models its KPI modules read (statex_bi/kpis/*).
REPORT_MODELS: dict[str, list[str]] = {
    "growth_revenue": [
        "ga4_daily_traffic", "ga4_daily_key_events", "ga4_daily_users", "payments", "payments_eur", "refunds_eur",
        "fx_daily_eur_rates",
    ],
    "ai_costs": ["ai_calls", "openai_billing_daily"],
    "data_health": [],
}


def model_links(run_id: str, stem: str) -> str:
    """HTML links from a report's index row to its models in the run's docs site ('' when none)."""
    return ", ".join(
        f'<a href="{quote(run_id)}/{LINEAGE_PAGE}#!/model/model.statex_bi.{quote(name)}">{html.escape(name)}</a>'
        for name in REPORT_MODELS.get(stem, [])
    )
