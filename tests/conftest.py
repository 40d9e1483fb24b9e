"""Shared fixtures: every test gets its own warehouse file and outputs folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    """Connectors refuse to load customer identifiers without a pseudonymisation key."""
    monkeypatch.setenv("STATEX_BI_PSEUDONYM_KEY", "test-pseudonym-key")


@pytest.fixture
def db_file(tmp_path, monkeypatch):
    """A fresh warehouse path for this test, also set as $STATEX_BI_DB for code that reads it."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("STATEX_BI_DB", str(path))
    monkeypatch.setenv("STATEX_BI_OUTPUTS", str(tmp_path / "outputs"))
    return path
