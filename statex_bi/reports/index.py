"""outputs/index.html: every run (read from the manifests), newest first, each report with its status.

One self-contained page: inline CSS, no script, no external resource; links are relative, so the
outputs folder can be copied or served anywhere as it is.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from statex_bi.reports import manifest as manifests
from statex_bi.reports.lineage import model_links
from statex_bi.reports.secrets import redact

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
.leak { color: #a40e26; font-weight: 600; }
"""


def _status(value: str) -> str:
    label = value.replace("_", " ")
    return f'<span class="status {html.escape(value)}">{html.escape(label)}</span>'


def _report_row(run_id: str, stem: str, entry: dict[str, Any], lineage: bool) -> str:
    title = html.escape(str(entry.get("title") or stem))
    page = entry.get("html")
    name = f'<a href="{quote(run_id)}/{quote(page)}">{title}</a>' if page else f"{title} <em>(no page)</em>"
    seconds = entry.get("duration_s")
    duration = f"{seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    error = (entry.get("error") or {}).get("message") or ""
    models = model_links(run_id, stem) if lineage else ""
    return (
        f"<tr><td>{name}</td><td>{_status(str(entry.get('status', 'failed')))}</td>"
        f'<td>{duration}</td><td class="note">{html.escape(error)}</td><td class="note">{models}</td></tr>'
    )


def _run_section(run: dict[str, Any]) -> str:
    run_id = str(run["run_id"])
    period = run.get("period") or {}
    lineage = run.get("lineage")
    rows = "".join(_report_row(run_id, stem, entry, bool(lineage)) for stem, entry in run.get("notebooks", {}).items())
    leaks = "".join(
        f'<p class="leak">Secret leak: the value of ${html.escape(str(leak.get("variable")))} appeared in '
        f'{html.escape(str(leak.get("file")))}; the file was {html.escape(str(leak.get("action", "deleted")))}.</p>'
        for leak in run.get("secret_leaks", [])
    )
    errors = "".join(f'<p class="leak">{html.escape(str(e))}</p>' for e in run.get("errors", []))
    sha = run.get("git_sha")
    return f"""<section class="run" id="{html.escape(run_id)}">
<h2>{html.escape(str(run.get("title", run_id)))} · {html.escape(str(period.get("start", "?")))} to \
{html.escape(str(period.get("end", "?")))} {_status(str(run.get("status", "failed")))}</h2>
<p class="meta">run <a href="{quote(run_id)}/manifest.json">{html.escape(run_id)}</a> · started \
{html.escape(str(run.get("started_at", "?")))} · version {html.escape(str(run.get("package_version", "?")))}\
{f" · git {html.escape(sha[:12])}" if sha else ""}\
{f' · <a href="{quote(run_id)}/{quote(lineage)}">models and lineage (dbt docs)</a>' if lineage else ""}</p>
{leaks}{errors}
<table><tr><th>Report</th><th>Status</th><th>Duration</th><th>Note</th><th>Models</th></tr>
{rows}</table>
</section>"""


def render(runs: list[dict[str, Any]]) -> str:
    """The index page for `runs` (already ordered newest first)."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(_run_section(run) for run in runs) or "<p>No runs yet.</p>"
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
<p class="meta">{len(runs)} run(s), newest first · generated {generated}</p>
{body}
</body>
</html>
"""


def write_index(outputs: Path, secrets: dict[str, str]) -> Path:
    """Rewrite outputs/index.html from every run's manifest.

    Args:
        outputs: the outputs folder.
        secrets: values to redact (manifests written before a secret was set could hold one).

    Returns:
        The index path.
    """
    path = outputs / INDEX_NAME
    partial = path.with_suffix(".html.partial")
    partial.write_text(redact(render(manifests.read_all(outputs)), secrets), encoding="utf-8")
    partial.replace(path)
    return path
