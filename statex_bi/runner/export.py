"""Executed notebook -> one self-contained HTML page for stakeholders, exported in the runner's process.

The page has no code, no prompts, no stderr, no papermill error banners and no parameters cell; a notebook that
did not succeed gets a failure box at the top instead, and each error output becomes a one-line note.
The `statex` template (templates/statex) empties every CDN script block of nbconvert's `lab`
template and, when a chart needs it, inlines the Vega bundle once in <head>.
"""

from __future__ import annotations

import copy
import functools
import html
import os
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from statex_bi.config import cache_dir

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "statex"
# Papermill's banner/anchor cells, the injected values and the defaults they override.
HIDDEN_TAGS = frozenset({"papermill-error-cell-tag", "injected-parameters", "parameters"})
_VEGA_MIMETYPE_PREFIX = "application/vnd.vega"


@functools.cache
def _exporter():
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name=TEMPLATE_NAME, extra_template_basedirs=[str(TEMPLATES_DIR)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    return exporter


@functools.cache
def vega_bundle() -> str:
    """statex_bi.charts.javascript_bundle(), kept on disk per Altair and vl-convert version.

    Building it takes vl-convert several seconds of CPU (and importing Altair two more) in every run; the
    file in the cache folder (statex_bi.config.cache_dir: $STATEX_BI_CACHE_DIR, else ~/.cache/statex-bi) is
    read in milliseconds. It is written whole (a temporary name, then renamed), so a reader never sees half of it.
    """
    versions = "-".join(metadata.version(package) for package in ("altair", "vl-convert-python"))
    cached = cache_dir() / f"vega-bundle-{versions}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    from statex_bi.charts import javascript_bundle  # altair (about 1 s) only when the cache misses

    bundle = javascript_bundle()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
        partial.write_text(bundle, encoding="utf-8")
        partial.replace(cached)
    except OSError:  # a read-only home: built again next run, nothing else changes
        pass
    return bundle


def warm_up_exporter() -> None:
    """Import nbconvert, load the template and read the Vega bundle ahead of the first export."""
    _exporter()
    vega_bundle()


def notebook_title(nb: Any, fallback: str) -> str:
    """The notebook's title: its metadata title, else its first '# ' heading, else `fallback`."""
    title = nb.metadata.get("title")
    if title:
        return str(title)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def has_charts(nb: Any) -> bool:
    """Whether any output is a Vega/Vega-Lite chart (statex_bi.charts renderer or a vega mimetype)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if any(mimetype.startswith(_VEGA_MIMETYPE_PREFIX) for mimetype in data):
                return True
            if "vegaEmbed" in str(data.get("application/javascript", "")):
                return True
    return False


def _section_error(output: Any) -> Any:
    """An error output as a one-line note (the traceback stays in the executed .ipynb)."""
    text = f"This section stopped with an error ({output.get('ename', 'Error')}); see the note at the top."
    return nbformat.v4.new_output(
        "display_data", data={"text/html": f'<p class="statex-section-error">{html.escape(text)}</p>'}
    )


def _is_stderr(output: Any) -> bool:
    return output.get("output_type") == "stream" and output.get("name") == "stderr"


def for_stakeholders(nb: Any, title: str) -> Any:
    """A copy of `nb` without the hidden cells, with error outputs replaced, stderr left out (a library's
    warning names files and lines of code) and the page title set.

    `nb` is left as it was, stderr included; what is unchanged is shared, not copied (nbconvert copies it all again).
    """
    shown = copy.copy(nb)
    shown.metadata = copy.copy(nb.metadata)
    shown.metadata["title"] = title
    shown.cells = []
    for cell in nb.cells:
        if HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code" and any(o.get("output_type") == "error" or _is_stderr(o) for o in cell.outputs):
            cell = copy.copy(cell)
            cell.outputs = [_section_error(o) if o.get("output_type") == "error" else o
                            for o in cell.outputs if not _is_stderr(o)]
        shown.cells.append(cell)
    return shown


def export_html(nb: Any, target: Path, title: str, failure: str | None = None) -> Path:
    """Write the stakeholder HTML of an executed notebook.

    Args:
        nb: the executed notebook (nbformat node).
        target: the .html file to write.
        title: the page <title> (report title and period).
        failure: error summary shown in a failure box at the top, or None when the notebook succeeded.

    Returns:
        `target`.
    """
    shown = for_stakeholders(nb, title)
    # The Vega bundle (0.9 MB) goes in after rendering, in place of a marker: nbconvert then neither
    # templates nor re-parses it (its HTML post-processing reads the whole page), once per report.
    marker = f"/* statex vega bundle {uuid.uuid4().hex} */" if has_charts(shown) else None
    resources = {"statex": {"failure": failure, "vega_bundle": marker}}
    body, _ = _exporter().from_notebook_node(shown, resources=resources)
    if marker:
        head, found, tail = body.partition(marker)
        if not found:
            raise RuntimeError("the report template did not place the Vega bundle")
        body = head + vega_bundle() + tail
    target.write_text(body, encoding="utf-8")
    return target
