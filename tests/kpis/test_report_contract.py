"""Every report has one KPI module, named like its notebook, with one contract: headline, notes, metrics."""

from __future__ import annotations

import importlib
import inspect
import json

import pytest

from statex_bi.config import NOTEBOOKS_DIR
from statex_bi.metrics import registry

NOTEBOOKS = sorted(path.stem for path in NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_each_notebook_has_a_kpi_module_of_its_name_with_the_report_contract(stem):
    module = importlib.import_module(f"statex_bi.kpis.{stem}")
    for name in ("headline", "notes", "metrics"):
        function = getattr(module, name, None)
        assert callable(function), f"statex_bi.kpis.{stem}.{name} is missing"
        parameters = list(inspect.signature(function).parameters.values())
        assert [p.name for p in parameters[:2]] == ["con", "period"], f"{stem}.{name}{inspect.signature(function)}"
        assert parameters[-1].kind is inspect.Parameter.VAR_KEYWORD, f"{stem}.{name} must take **params"


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_each_notebook_declares_the_title_of_its_report(stem):
    notebook = json.loads((NOTEBOOKS_DIR / f"{stem}.ipynb").read_text(encoding="utf-8"))
    titles = {report.report: report.title for report in registry.reports()}
    assert notebook["metadata"].get("title"), f"{stem}.ipynb has no metadata title"
    if stem in titles:
        assert notebook["metadata"]["title"] == titles[stem]
