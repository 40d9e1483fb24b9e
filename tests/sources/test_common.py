from __future__ import annotations

import pytest

from statex_bi.exceptions import ConfigError
from statex_bi.sources.common import pseudonymise


def test_pseudonyms_are_keyed_stable_and_case_insensitive(monkeypatch):
    first = pseudonymise("Ada@Example.com ")
    assert first == pseudonymise("ada@example.com")
    assert "ada" not in first and first.startswith("cus_")
    monkeypatch.setenv("STATEX_BI_PSEUDONYM_KEY", "another-key")
    assert pseudonymise("ada@example.com") != first
    assert pseudonymise(None) is None and pseudonymise("") is None


def test_without_a_key_identifiers_are_refused(monkeypatch):
    monkeypatch.delenv("STATEX_BI_PSEUDONYM_KEY")
    with pytest.raises(ConfigError, match="STATEX_BI_PSEUDONYM_KEY"):
        pseudonymise("ada@example.com")
