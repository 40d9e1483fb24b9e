"""The dbt docs site a run publishes (lineage/index.html) works offline: nothing is loaded from another
host, and a headless Chromium with every network request failing renders the overview and the models."""

from __future__ import annotations

import re

import growth_warehouse as fx
import pytest
from test_offline_report import _chromium

from statex_bi.transform import build as project

pytestmark = pytest.mark.browser

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""")


def test_published_docs_site_is_offline_and_lists_every_model(tmp_path, tmp_path_factory):
    db, _ = fx.built(tmp_path_factory)

    page = project.publish_docs(db, tmp_path / "lineage")

    text = page.read_text()
    assert REMOTE.findall(text) == []
    dom, console = _chromium(page, tmp_path / "profile")
    assert "Statex BI models" in dom
    for model in ("payments_eur", "stg_stripe__charges", "fx_daily_eur_rates"):
        assert model in dom, model
    # Angular's hash routes on a file:// page log "Unsafe attempt to load URL file://..."; a request that
    # tried to leave the machine would log net::ERR_... or name an http(s) URL.
    remote = [line for line in console if "net::ERR" in line or "http://" in line or "https://" in line]
    assert remote == [], remote


def test_nothing_is_published_for_a_warehouse_never_built(tmp_path):
    assert project.publish_docs(tmp_path / "never.duckdb", tmp_path / "lineage") is None
