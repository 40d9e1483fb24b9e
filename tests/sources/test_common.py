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


# 1 MB lines on which one regex tried from every position (`[\w.+-]+@...`) is quadratic: hours each.
HOSTILE_LINES = {
    "one word": "a" * 1_000_000,
    "dotted words": "a." * 500_000,
    "at signs": "a@" * 500_000,
    "a domain without a dot": "x@" + "b" * 1_000_000,
    "dotted domain never ending": "x@" + "b." * 500_000 + "@",
}


def _seconds_in_child(function, deadline_s: float = 20.0) -> float:
    """How long `function()` takes in a forked child; fails when it is still running after `deadline_s`
    (a quadratic scan of a 1 MB line would hold the test for hours)."""
    import multiprocessing
    import time

    def timed(pipe):
        started = time.perf_counter()
        function()
        pipe.send(time.perf_counter() - started)

    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=timed, args=(sender,))
    child.start()
    child.join(deadline_s)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"still running after {deadline_s:.0f} s")
    assert child.exitcode == 0
    return receiver.recv()


@pytest.mark.parametrize("shape", sorted(HOSTILE_LINES))
def test_scrubbing_a_hostile_megabyte_line_takes_under_a_second(shape):
    from statex_bi.sources.common import scrub

    line = HOSTILE_LINES[shape]
    assert _seconds_in_child(lambda: scrub(line)) < 1.0
    # Linear and still complete: an address after the megabyte is found, however long the line.
    scrubbed = scrub(line + " mail alice@example.com")
    assert "alice@example.com" not in scrubbed and scrubbed.endswith(pseudonymise("alice@example.com"))


def test_scrub_finds_what_the_address_pattern_finds():
    import random
    import re

    from statex_bi.sources.common import scrub

    pattern = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")  # the e-mail pattern, applied naively
    shapes = random.Random(7)
    for _ in range(5_000):
        text = "".join(shapes.choice("ab.@+-_ é") for _ in range(shapes.randint(0, 24)))
        assert scrub(text) == pattern.sub(lambda match: pseudonymise(match.group(0)), text), text


@pytest.mark.parametrize("shape", sorted(HOSTILE_LINES))
def test_quarantining_a_hostile_megabyte_record_takes_under_a_second(shape):
    from statex_bi.sources.common import quarantined

    line = HOSTILE_LINES[shape]
    payload = {"line": line, "note": line + " alice@example.com", "nested": [[[[line]]]]}
    error = f"record line 7: field 'note': not valid: {line!r} from alice@example.com"
    assert _seconds_in_child(lambda: quarantined("ai-calls", "calls.jsonl", "line 7", "note", error, payload)) < 1.0
    row = quarantined("ai-calls", "calls.jsonl", "line 7", "note", error, payload)
    kept = row.data  # the row inside dlt's table hints
    assert len(kept["payload"]) < 12_000 and len(kept["error"]) < 1_200
    assert "alice@example" not in kept["payload"] + kept["error"]


def test_a_cut_never_leaves_part_of_an_address():
    from statex_bi.sources.common import cut, scrub

    text = "x" * 990 + " alice@example.com and more"
    for limit in range(990, 1_010):
        assert "alice@" not in scrub(cut(text, limit)) and "@exa" not in scrub(cut(text, limit))
