"""outputs/metrics.html: every KPI of the registry with its definition, unit, source and latest value.

Written after each run from the KPI registry (statex_bi.kpis.registry) and the warehouse's
monitoring.monitoring_metrics (read-only); each latest value links to the report page that published it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from statex_bi import warehouse
from statex_bi.kpis import registry
from statex_bi.reports import manifest as manifests
from statex_bi.reports.secrets import redact

PAGE_NAME = "metrics.html"


def report_pages(outputs: Path) -> dict[tuple[str, str], str]:
    """(run_id, report stem) -> that report's page relative to `outputs`, for every page that exists."""
    pages = {}
    for run in manifests.read_all(outputs):
        for stem, entry in run.get("notebooks", {}).items():
            if entry.get("html") and (outputs / run["run_id"] / entry["html"]).exists():
                pages[(run["run_id"], stem)] = f"{quote(run['run_id'])}/{quote(entry['html'])}"
    return pages


def write_metrics_page(outputs: Path, db: Path, secrets: dict[str, str]) -> Path:
    """Rewrite outputs/metrics.html.

    Args:
        outputs: the outputs folder.
        db: the warehouse, opened read-only for the latest values.
        secrets: values to redact (tags hold report text).

    Returns:
        The page's path.

    Raises:
        WarehouseError: the warehouse cannot be opened.
    """
    with warehouse.connect(db, read_only=True) as con:
        latest = registry.latest_values(con)
    path = outputs / PAGE_NAME
    partial = path.with_suffix(".html.partial")
    partial.write_text(redact(registry.render_html(latest, report_pages(outputs)), secrets), encoding="utf-8")
    partial.replace(path)
    return path
