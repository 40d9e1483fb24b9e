"""outputs/index.html: every run (read from the manifests), grouped by parameter set, newest first.

Each parameter set (params file) is a section, the one run most recently first. Its latest run is
shown in full at the top (every report with status, duration and links to its page, PDF and
notebook); earlier runs of the set follow in a compact table. Times are UTC, written for people.
The page also links the KPI catalog (metrics.html).

One self-contained page: inline CSS, no script, no external resource; links are relative, so the
outputs folder can be copied or served anywhere as it is.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from statex_bi.formatting import duration
from statex_bi.runner import manifest as manifests
from statex_bi.runner.kpi_page import PAGE_NAME, metrics_page
from statex_bi.runner.lineage import model_links
from statex_bi.secrets import redact

INDEX_NAME = "index.html"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2328; margin: 2em auto; max-width: 60em; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.run { border-top: 1px solid #d0d7de; padding: 0.8em 0 1em; }
.run h2 { font-size: 1.15em; margin: 0.2em 0; }
.meta { color: #57606a; font-size: 0.9em; margin: 0.2em 0 0.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3em 0.6em; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-size: 0.85em; color: #57606a; font-weight: 600; }
.status { display: inline-block; padding: 0 0.5em; border-radius: 1em; font-size: 0.85em; font-weight: 600; }
.succeeded { background: #dafbe1; color: #116329; }
.failed, .timed_out, .kernel_died { background: #ffebe9; color: #a40e26; }
.note { color: #57606a; font-size: 0.9em; }
.set { margin-top: 2em; }
.set > h2 { font-size: 1.35em; margin-bottom: 0.2em; }
.earlier h3 { font-size: 1em; margin: 1em 0 0.3em; color: #57606a; }
.earlier td, .earlier th { font-size: 0.9em; }
.leak { color: #a40e26; font-weight: 600; }
"""


def _status(value: str) -> str:
    label = value.replace("_", " ")
    return f'<span class="status {html.escape(value)}">{html.escape(label)}</span>'


def when(value: Any) -> str:
    """An ISO timestamp for people: 'Tue 1 Dec 2026, 10:36 UTC' ('?' when absent or unreadable)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return "?"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M} UTC"


def _period(run: dict[str, Any]) -> str:
    period = run.get("period") or {}
    try:
        start, end = (datetime.fromisoformat(str(period[key])) for key in ("start", "end"))
    except (KeyError, ValueError):
        return "period unknown"
    return f"{start.day} {start:%b %Y} – {end.day} {end:%b %Y}"


def _run_time(run: dict[str, Any]) -> str:
    try:
        seconds = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"]))
    except (KeyError, TypeError, ValueError):
        return ""
    return f" · took {duration(seconds.total_seconds())}"


def _links(run_id: str, entry: dict[str, Any]) -> str:
    kinds = (("html", "page"), ("pdf", "PDF"), ("ipynb", "notebook"))
    return " · ".join(
        f'<a href="{quote(run_id)}/{quote(str(entry[key]))}">{label}</a>' for key, label in kinds if entry.get(key)
    )


def _lineage(run_id: str, run: dict[str, Any]) -> str:
    """The run's dbt docs site and, per report, the models behind its tables ('' when not published)."""
    lineage = run.get("lineage")
    if not lineage:
        return ""
    per_report = "".join(
        f" · {html.escape(stem)}: {links}" for stem in run.get("notebooks", {}) if (links := model_links(run_id, stem))
    )
    return f' · <a href="{quote(run_id)}/{quote(lineage)}">models and lineage (dbt docs)</a>{per_report}'


def _report_row(run_id: str, stem: str, entry: dict[str, Any]) -> str:
    title = html.escape(str(entry.get("title") or stem))
    page = entry.get("html")
    name = f'<a href="{quote(run_id)}/{quote(page)}">{title}</a>' if page else f"{title} <em>(no page)</em>"
    seconds = entry.get("duration_s")
    took = duration(seconds) if isinstance(seconds, (int, float)) else ""
    error = (entry.get("error") or {}).get("message") or ""
    return (
        f"<tr><td>{name}</td><td>{_status(str(entry.get('status', 'failed')))}</td>"
        f'<td>{took}</td><td>{_links(run_id, entry)}</td><td class="note">{html.escape(error)}</td></tr>'
    )


def _latest_run(run: dict[str, Any]) -> str:
    run_id = str(run["run_id"])
    rows = "".join(_report_row(run_id, stem, entry) for stem, entry in run.get("notebooks", {}).items())
    leaks = "".join(
        f'<p class="leak">Secret leak: the value of ${html.escape(str(leak.get("variable")))} appeared in '
        f'{html.escape(str(leak.get("file")))}; the file was {html.escape(str(leak.get("action", "deleted")))}.</p>'
        for leak in run.get("secret_leaks", [])
    )
    errors = "".join(f'<p class="leak">{html.escape(str(e))}</p>' for e in run.get("errors", []))
    sha = run.get("git_sha")
    return f"""<section class="run" id="{html.escape(run_id)}">
<h3>Latest: {html.escape(_period(run))} {_status(str(run.get("status", "failed")))}</h3>
<p class="meta">run {when(run.get("started_at"))}{_run_time(run)} · \
<a href="{quote(run_id)}/manifest.json">{html.escape(run_id)}</a> · version \
{html.escape(str(run.get("package_version", "?")))}{f" · git {html.escape(sha[:12])}" if sha else ""}\
{_lineage(run_id, run)}</p>
{leaks}{errors}
<table><tr><th>Report</th><th>Status</th><th>Took</th><th>Files</th><th>Note</th></tr>
{rows}</table>
</section>"""


def _earlier_row(run: dict[str, Any]) -> str:
    run_id = str(run["run_id"])
    reports = ", ".join(
        (f'<a href="{quote(run_id)}/{quote(str(e["html"]))}">{html.escape(str(e.get("title") or stem))}</a>'
         if e.get("html") else html.escape(str(e.get("title") or stem)))
        + ("" if e.get("status") == "succeeded" else f" ({html.escape(str(e.get('status', 'failed')))})")
        for stem, e in run.get("notebooks", {}).items()
    )
    return (
        f'<tr id="{html.escape(run_id)}"><td>{html.escape(_period(run))}</td><td>{when(run.get("started_at"))}</td>'
        f'<td>{_status(str(run.get("status", "failed")))}</td><td>{reports}</td>'
        f'<td class="note"><a href="{quote(run_id)}/manifest.json">{html.escape(run_id)}</a></td></tr>'
    )


def group_runs(runs: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Runs grouped by parameter set (params file), each group newest first, groups by their newest run.

    Args:
        runs: manifests in any order.

    Returns:
        [(params file, its runs newest first)], the set run most recently first.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[str(run.get("params_file") or run.get("title") or "?")].append(run)

    def newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(items, key=lambda m: (str(m.get("started_at", "")), str(m["run_id"])), reverse=True)

    ordered = [(key, newest_first(items)) for key, items in groups.items()]
    return sorted(ordered, key=lambda g: (str(g[1][0].get("started_at", "")), str(g[1][0]["run_id"])), reverse=True)


def _set_section(params_file: str, runs: list[dict[str, Any]]) -> str:
    latest, earlier = runs[0], runs[1:]
    older = ""
    if earlier:
        rows = "".join(_earlier_row(run) for run in earlier)
        older = (f'<div class="earlier"><h3>Earlier runs ({len(earlier)})</h3><table><tr><th>Period</th>'
                 f"<th>Run</th><th>Status</th><th>Reports</th><th>Run id</th></tr>{rows}</table></div>")
    name = Path(params_file).stem
    return f"""<section class="set">
<h2>{html.escape(str(latest.get("title") or name))} <span class="note">({html.escape(name)})</span></h2>
{_latest_run(latest)}{older}
</section>"""


def render(runs: list[dict[str, Any]]) -> str:
    """The index page for `runs`, grouped by parameter set."""
    generated = when(datetime.now(UTC).isoformat())
    groups = group_runs(runs)
    body = "\n".join(_set_section(key, items) for key, items in groups) or "<p>No runs yet.</p>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Statex reports</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Statex reports</h1>
<p class="meta">{len(runs)} run(s) of {len(groups)} parameter set(s), the latest of each first · \
<a href="metrics.html">every KPI and its latest value</a> · generated {generated}</p>
{body}
</body>
</html>
"""


def write_index(outputs: Path, secrets: dict[str, str], wait: float = 0.0) -> Path:
    """Rewrite outputs/index.html from every run's manifest, and the KPI catalog outputs/metrics.html.

    Both pages are written under hidden names first and renamed only once both are whole: a write that
    fails (a full disk) leaves the earlier pages as they were and no partial file behind.

    Args:
        outputs: the outputs folder.
        secrets: values to redact (manifests written before a secret was set could hold one).
        wait: seconds the KPI catalog waits for a warehouse another process holds (`run --wait`).

    Returns:
        The index path.

    Raises:
        OSError: a page could not be written.
    """
    pages = {
        outputs / INDEX_NAME: redact(render(manifests.read_all(outputs)), secrets),
        outputs / PAGE_NAME: metrics_page(outputs, secrets, wait=wait),
    }
    partials = {path: path.with_name(f".{path.name}.partial") for path in pages}
    try:
        for path, text in pages.items():
            partials[path].write_text(text, encoding="utf-8")
    except OSError:
        for partial in partials.values():
            partial.unlink(missing_ok=True)
        raise
    for path, partial in partials.items():
        partial.replace(path)
    return outputs / INDEX_NAME
