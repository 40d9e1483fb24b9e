"""The price catalog: override files, dated rows, genai-prices fallback, the shipped params/prices."""

from __future__ import annotations

from datetime import date

import pytest

from statex_bi.exceptions import PricingError
from statex_bi.pricing import ACTUAL, SEED, Price, Unpriced, load_catalog

ROW = """  - id: {id}
    provider: {provider}
    model: "{model}"
    input_usd_per_mtok: {input}
    cached_input_usd_per_mtok: {cached}
    output_usd_per_mtok: {output}
    source: test
    effective_from: {start}
"""


def _row(**values) -> str:
    defaults = {"id": "r1", "provider": "openai", "model": "gpt-4o-mini", "input": 1, "cached": 0.5, "output": 2,
                "start": "2026-01-01"}
    return ROW.format(**{**defaults, **values})


def _write(tmp_path, text: str, name: str = "prices.yaml"):
    (tmp_path / name).write_text(text)
    return tmp_path


def test_override_starting_mid_month_prices_days_before_and_after_differently(tmp_path):
    text = "no_bundled_prices: [openai]\nrows:\n" + _row(id="old", input=0.15, output=0.6) + (
        "    effective_to: 2026-03-11\n") + _row(id="new", input=0.30, output=1.2, start="2026-03-12")
    catalog = load_catalog(_write(tmp_path, text))
    before = catalog.price("openai", "gpt-4o-mini", date(2026, 3, 11))
    after = catalog.price("openai", "gpt-4o-mini", date(2026, 3, 12))
    assert (before.row_id, before.input_usd_per_mtok, before.output_usd_per_mtok) == ("old", 0.15, 0.6)
    assert (after.row_id, after.input_usd_per_mtok, after.output_usd_per_mtok) == ("new", 0.30, 1.2)
    assert isinstance(catalog.price("openai", "gpt-4o-mini", date(2025, 12, 31)), Unpriced)


def test_exact_name_beats_pattern_and_longer_pattern_beats_shorter(tmp_path):
    text = "no_bundled_prices: [azure]\nrows:\n" + "".join([
        _row(id="any", provider="azure", model="*", input=9),
        _row(id="four-o", provider="azure", model="gpt-4o*", input=2.75),
        _row(id="mini", provider="azure", model="gpt-4o-mini*", input=0.165),
        _row(id="exact", provider="azure", model="gpt-4o-mini-2024-07-18", input=0.2),
    ])
    catalog = load_catalog(_write(tmp_path, text))
    day = date(2026, 5, 1)
    assert catalog.price("azure", "GPT-4o-mini", day).row_id == "mini"
    assert catalog.price("azure", "gpt-4o-mini-2024-07-18", day).row_id == "exact"
    assert catalog.price("azure", "gpt-4o-2024-08-06", day).row_id == "four-o"
    assert catalog.price("azure", "gpt-4.1", day).row_id == "any"


def test_unknown_model_is_unpriced_with_a_reason(tmp_path):
    catalog = load_catalog(_write(tmp_path, "rows: []\n"))
    result = catalog.price("openai", "no-such-model-xyz", date(2026, 5, 1))
    assert isinstance(result, Unpriced) and "genai-prices" in result.reason
    assert isinstance(catalog.price("ollama", "llama3.1:8b", date(2026, 5, 1)), Unpriced)


def test_genai_prices_fallback_uses_the_price_in_effect_on_the_day(tmp_path):
    # genai-prices' data: o3 went from 10/0.5/40 to 2/0.5/8 USD per 1M tokens on 2025-06-10.
    catalog = load_catalog(_write(tmp_path, "rows: []\n"))
    before = catalog.price("openai", "o3", date(2025, 6, 9))
    after = catalog.price("openai", "o3", date(2025, 6, 10))
    assert (before.input_usd_per_mtok, before.output_usd_per_mtok, before.effective_to) == (10, 40, date(2025, 6, 9))
    assert (after.input_usd_per_mtok, after.output_usd_per_mtok, after.effective_from) == (2, 8, date(2025, 6, 10))
    assert after.row_id == "genai-prices:openai/o3@2025-06-10"
    mini = catalog.price("openai", "gpt-4o-mini-2024-07-18", date(2026, 5, 1))
    assert (mini.input_usd_per_mtok, mini.cached_input_usd_per_mtok, mini.output_usd_per_mtok) == (0.15, 0.075, 0.6)


def test_shipped_catalog_prices_azure_at_eu_data_zone_rates():
    catalog = load_catalog()
    day = date(2026, 6, 1)
    for model, rates in {"gpt-4o": (2.75, 1.375, 11.00), "gpt-4o-mini": (0.165, 0.083, 0.66),
                         "gpt-4o-2024-08-06": (2.75, 1.375, 11.00)}.items():
        price = catalog.price("azure", model, day)
        assert isinstance(price, Price), model
        assert (price.input_usd_per_mtok, price.cached_input_usd_per_mtok, price.output_usd_per_mtok) == rates
        assert price.source and price.effective_from
    # genai-prices would price Azure gpt-4.1 at the global rate: an EU call without an EU row stays unpriced.
    assert isinstance(catalog.price("azure", "gpt-4.1", day), Unpriced)
    assert catalog.price("ollama", "qwen2.5-coder:7b", day).input_usd_per_mtok == 0


def test_shipped_seed_scenario_is_flat_per_token():
    catalog = load_catalog()
    assert SEED in catalog.scenarios and ACTUAL in catalog.scenarios
    openai = catalog.price("openai", "gpt-4o-mini", date(2026, 6, 1), SEED)
    azure = catalog.price("azure", "gpt-4o", date(2026, 6, 1), SEED)
    assert (openai.input_usd_per_mtok, openai.output_usd_per_mtok) == (30, 30)  # $0.03 per 1K
    assert (azure.input_usd_per_mtok, azure.output_usd_per_mtok) == (60, 60)  # $0.06 per 1K


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rows:\n  - {id: x, provider: openai}\n", "missing"),
        ("rows:\n" + _row() + "    colour: red\n", "unknown keys"),
        ("rows:\n" + _row(input=-1), ">= 0"),
        ("rows:\n" + _row(start="next week"), "not a date"),
        ("rows:\n" + _row() + _row(start="2026-02-01"), "appears in"),
        ("rows:\n" + _row() + _row(id="r2", start="2026-02-01"), "both price"),
        ("scenario: seed\nno_bundled_prices: [openai]\nrows: []\n", "only applies"),
        ("rows:\n" + _row() + "    effective_to: 2025-12-31\n", "before effective_from"),
    ],
    ids=["missing-key", "unknown-key", "negative", "bad-date", "duplicate-id", "overlap", "bundled-in-scenario",
         "ends-before-start"],
)
def test_malformed_files_name_file_and_row(tmp_path, text, message):
    with pytest.raises(PricingError, match=message) as error:
        load_catalog(_write(tmp_path, text))
    assert "prices.yaml" in str(error.value)


def test_missing_override_path_is_an_error(tmp_path):
    with pytest.raises(PricingError, match="do not exist"):
        load_catalog(tmp_path / "nope")


def test_equally_specific_rows_are_refused(tmp_path):
    text = "rows:\n" + _row(id="a", model="gpt-4o-mini*") + _row(id="b", model="gpt-4o-*-2024*")
    catalog = load_catalog(_write(tmp_path, text))
    assert catalog.price("openai", "gpt-4o-mini-2024-07-18", date(2026, 5, 1)).row_id == "b"
    text = "rows:\n" + _row(id="a", model="gpt-4o-mini*") + _row(id="b", model="*gpt-4o-mini")
    catalog = load_catalog(_write(tmp_path, text))
    with pytest.raises(PricingError, match="equally"):
        catalog.price("openai", "gpt-4o-mini", date(2026, 5, 1))
