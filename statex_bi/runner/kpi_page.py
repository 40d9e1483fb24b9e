"""outputs/metrics.html: every KPI of the registry with its definition, unit, lineage and latest value.

Written after each run from the KPI registry (statex_bi.metrics.registry) and the warehouse's
monitoring.monitoring_metrics (read-only); each latest value links to the report page that published it.
Lineage: the dbt models each KPI reads (registry `models`), each linked to its node in the newest
published docs site (`<run>/lineage/index.html`), the sources it comes from, and the reports that show
it: its own, and the executive summary when params/targets.yaml or params/claims.yaml names it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from statex_bi import formatting, warehouse
from statex_bi.config import PARAMS_DIR, db_path, read_yaml
from statex_bi.exceptions import WarehouseError
from statex_bi.metrics import registry
from statex_bi.runner import manifest as manifests
from statex_bi.secrets import redact

PAGE_NAME = "metrics.html"


def _latest_text(kpi: registry.KpiDef, rows: pd.DataFrame) -> str:
    """The latest value(s): the 'all' value first, then each breakdown's."""
    key = kpi.breakdown_key
    parts = []
    for row in rows.itertuples():
        tag = json.loads(row.tags or "{}").get(key) if key else None
        text = formatting.value(row.value, row.unit)
        parts.append((tag not in (None, "all"), f"{tag}: {text}" if tag and tag != "all" else text))
    return "; ".join(text for _, text in sorted(parts, key=lambda part: part[0]))


def _code(text: str) -> str:
    """Escaped text whose `backticks` become <code> spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


SUMMARY = "executive_summary"
# A model's node in the dbt docs site (the node id dbt gives a model of the statex_bi project).
NODE = "#!/model/model.statex_bi.{}"


def summarised() -> set[str]:
    """The KPIs the executive summary shows: those params/targets.yaml or params/claims.yaml names."""
    names = set()
    for file, key in (("targets.yaml", "targets"), ("claims.yaml", "claims")):
        data = read_yaml(PARAMS_DIR / file) or {}
        names |= {str(entry.get("metric")) for entry in data.get(key) or [] if isinstance(entry, dict)}
    return names


def model_links(kpi: registry.KpiDef, lineage: str | None) -> str:
    """The KPI's models, each linked to its node in the docs site at `lineage` (relative to outputs/)."""
    if not kpi.models:
        return '<span class="note">the raw tables and load records (no model)</span>'
    if not lineage:
        return ", ".join(f"<code>{html.escape(name)}</code>" for name in kpi.models)
    return ", ".join(f'<a href="{html.escape(lineage + NODE.format(quote(name)))}"><code>{html.escape(name)}</code></a>'
                     for name in kpi.models)


def _reports(kpi: registry.KpiDef, titles: dict[str, str], pages: dict[tuple[str, str], str],
             latest_run: str | None, summary: set[str]) -> str:
    shown = [kpi.report] + ([SUMMARY] if kpi.name in summary else [])
    parts = []
    for stem in shown:
        page = pages.get((latest_run, stem)) if latest_run else None
        title = html.escape(titles.get(stem, stem))
        parts.append(f'<a href="{html.escape(page)}">{title}</a>' if page else title)
    return ", ".join(parts)


def render(latest: pd.DataFrame, pages: dict[tuple[str, str], str], problem: str | None = None,
           lineage: str | None = None, summary: set[str] | None = None) -> str:
    """outputs/metrics.html: every KPI of the registry with its lineage, latest value and report links.

    Args:
        latest: `registry.latest_values(...)` (may be empty).
        pages: (run_id, report) -> the report page's path relative to outputs/, for runs that have one.
        problem: why there are no latest values (e.g. the warehouse is locked), shown at the top.
        lineage: the newest published docs site, relative to outputs/ (None: no run published one).
        summary: the KPIs the executive summary shows (`summarised()`).
    """
    titles = {r.report: r.title for r in registry.reports()} | {SUMMARY: "Executive summary"}
    sections = []
    for report in registry.reports():
        rows = []
        for kpi in report.kpis:
            mine = latest[latest["metric_name"] == kpi.name] if len(latest) else latest
            latest_run = str(mine.iloc[0]["run_id"]) if len(mine) else None
            if len(mine):
                first = mine.iloc[0]
                period = f"{first['period_start']:%d %b %Y} – {first['period_end']:%d %b %Y}"
                page = pages.get((first["run_id"], first["report"]))
                where = (f'<a href="{html.escape(page)}">{html.escape(period)}</a>' if page
                         else html.escape(period))
                value = f'{html.escape(_latest_text(kpi, mine))}<div class="note">{where}</div>'
            else:
                value = '<span class="note">not published yet</span>'
            unit = "reporting currency" if kpi.unit == "currency" else kpi.unit
            split = f'<div class="note">by {html.escape(kpi.breakdown)}</div>' if kpi.breakdown else ""
            rows.append(
                f"<tr><td><strong>{html.escape(kpi.label)}</strong><div class=\"note\"><code>"
                f"{html.escape(kpi.name)}</code></div>{split}</td><td>{_code(kpi.definition)}</td>"
                f"<td>{html.escape(unit)}</td><td>{html.escape(kpi.source)}</td>"
                f'<td class="models">{model_links(kpi, lineage)}</td>'
                f"<td>{_reports(kpi, titles, pages, latest_run, summary or set())}</td><td>{value}</td></tr>"
            )
        sections.append(
            f"<h2>{html.escape(report.title)}</h2><table><tr><th>KPI</th><th>Definition</th><th>Unit</th>"
            f"<th>Sources</th><th>Models</th><th>Reports</th><th>Latest value</th></tr>{''.join(rows)}</table>"
        )
    notice = f'<p class="problem">{html.escape(problem)}</p>' if problem else ""
    return _PAGE.format(body=notice + "\n".join(sections))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Statex KPIs</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2328; margin: 2em auto; max-width: 72em; padding: 0 1em; line-height: 1.45; }}
h1 {{ font-size: 1.6em; }} h2 {{ font-size: 1.2em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.92em; }}
th, td {{ text-align: left; padding: 0.35em 0.6em; border-bottom: 1px solid #eaeef2; vertical-align: top; }}
th {{ font-size: 0.85em; color: #57606a; }}
.note {{ color: #57606a; font-size: 0.85em; }}
.problem {{ color: #a40e26; font-weight: 600; }}
</style>
</head>
<body>
<h1>Statex KPIs</h1>
<p class="note">Every KPI the reports publish, from the KPI registry; the latest value comes from the newest
run that published it. <a href="index.html">All report runs</a></p>
{body}
</body>
</html>
"""


def report_pages(outputs: Path) -> dict[tuple[str, str], str]:
    """(run_id, report stem) -> that report's page relative to `outputs`, for every page that exists."""
    pages = {}
    for run in manifests.read_all(outputs):
        for stem, entry in run.get("notebooks", {}).items():
            if entry.get("html") and (outputs / run["run_id"] / entry["html"]).exists():
                pages[(run["run_id"], stem)] = f"{quote(run['run_id'])}/{quote(entry['html'])}"
    return pages


def newest_lineage(outputs: Path) -> str | None:
    """The newest run's published docs site, relative to `outputs` (None when no run published one)."""
    for run in manifests.read_all(outputs):
        if run.get("lineage") and (outputs / run["run_id"] / run["lineage"]).exists():
            return f"{quote(run['run_id'])}/{quote(run['lineage'])}"
    return None


def metrics_page(outputs: Path, secrets: dict[str, str], db: Path | None = None, wait: float = 0.0) -> str:
    """The markup of outputs/metrics.html, redacted (statex_bi.runner.index writes it beside the index).

    Args:
        outputs: the outputs folder.
        secrets: values to redact (tags hold report text).
        db: the warehouse, opened read-only for the latest values (default: $STATEX_BI_DB). When it
            cannot be opened the page still lists every KPI and says why the values are missing.
        wait: seconds to wait for a warehouse another process holds (`run --wait`).
    """
    problem = None
    try:
        with warehouse.connect(db or db_path(), read_only=True, wait=wait) as con:
            latest = registry.latest_values(con)
    except WarehouseError as exc:
        latest, problem = pd.DataFrame(columns=["metric_name"]), f"Latest values unavailable: {exc}"
    return redact(render(latest, report_pages(outputs), problem, newest_lineage(outputs), summarised()), secrets)
