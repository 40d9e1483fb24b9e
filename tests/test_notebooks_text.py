"""Stakeholder text names no source file, folder or table: those belong in "How this is computed"."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
INTERNAL = re.compile(
    r"[\w./-]+\.(py|ya?ml|md|ipynb|sql)\b|statex_bi|params/|\b(raw|core|marts|staging|ops|monitoring)[._]\w+"
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_a_stakeholder_reads_has_no_internal_references(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = INTERNAL.search(cell.source)
            assert not found, f"{path.name}: {found.group(0)!r} in a markdown cell; move it to display.how_computed"


# The executive summary publishes nothing of its own: it reads what the other reports published.
SUMMARY = "executive_summary"
REPORTS = [path for path in NOTEBOOKS if path.stem != SUMMARY]


def _code(path: Path) -> str:
    return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.stem)
def test_every_report_has_contents_a_method_note_kpis_and_history(path):
    source = _code(path)
    for call in ("display.toc()", "display.how_computed(", "display.kpis(", "display.history(", "publish.publish("):
        assert call in source, f"{path.name} does not call {call}"
    assert not re.search(r"\breport\.", source) and "publish.metric(" not in source


def test_the_executive_summary_has_contents_and_a_method_note_and_publishes_nothing():
    source = _code(next(path for path in NOTEBOOKS if path.stem == SUMMARY))
    assert "display.toc()" in source and "display.how_computed(" in source
    assert "publish." not in source
