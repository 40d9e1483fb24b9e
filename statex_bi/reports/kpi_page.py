"""outputs/metrics.html: every KPI of the registry with its definition, unit, source and latest value.

Written after each run from the KPI registry (statex_bi.kpis.registry) and the warehouse's
monitoring.monitoring_metrics (read-only); each latest value links to the report page that published it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from statex_bi import warehouse
from statex_bi.config import db_path
from statex_bi.exceptions import WarehouseError
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


def write_metrics_page(outputs: Path, secrets: dict[str, str], db: Path | None = None) -> Path:
    """Rewrite outputs/metrics.html.

    Args:
        outputs: the outputs folder.
        secrets: values to redact (tags hold report text).
        db: the warehouse, opened read-only for the latest values (default: $STATEX_BI_DB). When it
            cannot be opened the page still lists every KPI and says why the values are missing.

    Returns:
        The page's path.
    """
    import pandas as pd

    problem = None
    try:
        with warehouse.connect(db or db_path(), read_only=True) as con:
            latest = registry.latest_values(con)
    except WarehouseError as exc:
        latest, problem = pd.DataFrame(columns=["metric_name"]), f"Latest values unavailable: {exc}"
    path = outputs / PAGE_NAME
    partial = path.with_suffix(".html.partial")
    page = registry.render_html(latest, report_pages(outputs), problem)
    partial.write_text(redact(page, secrets), encoding="utf-8")
    partial.replace(path)
    return path
