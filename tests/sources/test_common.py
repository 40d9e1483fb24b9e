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


def test_redact_pseudonymises_identifiers_and_drops_personal_details():
    from statex_bi.sources.common import redact

    payload = {
        "transaction_info": {"transaction_id": "8B9", "paypal_account_id": "PAYER123"},
        "payer_info": {"email_address": "ada@example.com", "payer_name": {"given_name": "Ada"},
                       "phone_number": {"national_number": "5551234"}, "address": {"line1": "1 Main St"}},
        "card": {"fingerprint": "Fp123", "last4": "4242", "brand": "visa"},
        "note": "mail me at ada@example.com",
        "line": '{"customer_email": "ada@example.com", "op": "gen_ai.chat"}',
    }
    cleaned = redact(payload)
    text = str(cleaned)
    for secret in ("ada@example.com", "PAYER123", "Ada", "5551234", "Main St", "Fp123", "4242"):
        assert secret not in text
    assert cleaned["payer_info"]["email_address"] == pseudonymise("ada@example.com")
    assert cleaned["transaction_info"]["transaction_id"] == "8B9" and cleaned["card"]["brand"] == "visa"
    assert pseudonymise("ada@example.com") in cleaned["line"] and "gen_ai.chat" in cleaned["line"]
