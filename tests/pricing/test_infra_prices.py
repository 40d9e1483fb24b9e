"""The infrastructure price catalog and the pricing of a month, against hand computations with the
prices the issue states (R2 pricing page; S3 Standard us-east-1)."""

from __future__ import annotations

from datetime import date

import pytest

from statex_bi.exceptions import PricingError
from statex_bi.pricing.infra import (
    GB,
    GIB,
    StorageMonth,
    cheapest_plan,
    load_infra_catalog,
    r2_cost,
    s3_cost,
    s3_like_for_like,
)

NOV = date(2026, 11, 1)  # 30 days


@pytest.fixture(scope="module")
def prices():
    return load_infra_catalog()


def _month(storage_class="standard", gb_months=0.0, unit=GB, class_a=0, class_b=0, egress=0, days=30):
    return StorageMonth(NOV, storage_class, round(gb_months * unit * days), days, class_a, class_b, egress)


def test_an_r2_month_is_billed_after_the_free_tier_rounded_up_to_whole_units(prices):
    # 25.3 GB-months: 15.3 after the 10 free -> 16 GB-months at $0.015; 1,000,001 Class A: 1 over the free
    # million -> one whole million at $4.50; 9,999,999 Class B: inside the 10 million free.
    lines = r2_cost(_month(gb_months=25.3, class_a=1_000_001, class_b=9_999_999), prices).set_index("item")
    assert lines.loc["r2.standard.storage", "billable"] == 16
    assert lines["usd"].to_dict() == pytest.approx({"r2.standard.storage": 16 * 0.015,
                                                    "r2.standard.class_a": 4.50, "r2.standard.class_b": 0.0})


def test_whole_gb_months_are_not_rounded_up_by_float_noise(prices):
    # 13 GB-months exactly (13e9 bytes every day of a 30-day month): 3 billable, not 4.
    lines = r2_cost(_month(gb_months=13), prices).set_index("item")
    assert lines.loc["r2.standard.storage", "billable"] == 3


def test_infrequent_access_has_no_free_tier_and_bills_retrieval(prices):
    month = _month("InfrequentAccess", gb_months=0.5, class_a=10, class_b=10, egress=int(2.5 * GB))
    usd = r2_cost(month, prices).set_index("item")["usd"].to_dict()
    assert usd == pytest.approx({"r2.infrequentaccess.storage": 0.01, "r2.infrequentaccess.class_a": 9.00,
                                 "r2.infrequentaccess.class_b": 0.90, "r2.infrequentaccess.retrieval": 3 * 0.01})


@pytest.mark.parametrize(("egress_gib", "transfer_usd"), [(60, 0.0), (100, 0.0), (350, 250 * 0.09)])
def test_the_s3_counterfactual_of_a_month_below_and_above_the_free_transfer(prices, egress_gib, transfer_usd):
    # 100 GiB-months on binary GB, 20,000 Tier 1 and 1,000,000 Tier 2 requests, no rounding.
    month = _month("all", gb_months=100, unit=GIB, class_a=20_000, class_b=1_000_000, egress=egress_gib * GIB)
    usd = s3_cost(month, prices).set_index("item")["usd"].to_dict()
    assert usd == pytest.approx({"s3.standard.storage": 100 * 0.023, "s3.standard.tier1": 20 * 0.005,
                                 "s3.standard.tier2": 1000 * 0.0004, "s3.data_transfer_out": transfer_usd})


def test_s3_transfer_tiers_after_the_first_10_tb(prices):
    egress = 100 + 10_240 + 1_000  # GiB: 100 free, 10 TB at $0.09, 1,000 GiB at $0.085
    usd = s3_cost(_month("all", egress=egress * GIB), prices).set_index("item")["usd"]
    assert usd["s3.data_transfer_out"] == pytest.approx(10_240 * 0.09 + 1_000 * 0.085)


def test_the_cheapest_fitting_email_plan(prices):
    plan, cost = cheapest_plan(prices, "mailgun", 88_000, NOV)
    assert (plan.plan, cost) == ("Foundation 50K", pytest.approx(35 + 38 * 1.30))
    plan, cost = cheapest_plan(prices, "postmark", 80, NOV)
    assert (plan.plan, cost) == ("Developer", 0)
    plan, cost = cheapest_plan(prices, "postmark", 12_000, NOV)
    assert (plan.plan, cost) == ("Basic 10K", pytest.approx(15 + 2 * 1.80))
    # SendGrid's overage is not confirmed: its plans stop at their volume, and none fits 150K.
    assert cheapest_plan(prices, "sendgrid", 150_000, NOV) is None


def test_ses_2026_plans_exist_only_from_their_launch(prices):
    before = {p.plan for p in prices.plans("ses", date(2026, 7, 20))}
    after = {p.plan for p in prices.plans("ses", date(2026, 7, 21))}
    assert before == {"pay-as-you-go"} and after == {"pay-as-you-go", "Essentials", "Pro", "Enterprise"}


def test_every_row_is_dated_and_sourced_and_the_rules_are_stated(prices):
    assert all(row.source and row.retrieved_at and row.effective_from for row in prices.rows)
    assert any("BilledCost" in rule and "ECB" in rule for rule in prices.rules)
    assert any("rounded up" in rule for rule in prices.rules)


def test_a_malformed_row_names_file_and_row(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("rules: []\nrows:\n  - {id: x, item: r2.standard.storage, usd: 0.015, "
                    "effective_from: 2024-01-01}\n")
    with pytest.raises(PricingError, match=r"catalog.yaml: row 1 \(x\): missing \['retrieved_at', 'source'\]"):
        load_infra_catalog(path)


def test_infrequent_access_is_priced_at_s3_standard_ia_like_for_like(prices):
    """The audit: the R2 Infrequent Access bucket was repriced at S3 Standard (70.3% savings; 67.8% like for like)."""
    month = _month("InfrequentAccess", gb_months=100, unit=GIB, class_a=20_000, class_b=1_000_000, egress=50 * GIB)
    usd = s3_cost(month, prices).set_index("item")["usd"].to_dict()
    assert usd == pytest.approx({"s3.standard_ia.storage": 100 * 0.0125, "s3.standard_ia.tier1": 20 * 0.01,
                                 "s3.standard_ia.tier2": 1000 * 0.001, "s3.standard_ia.retrieval": 50 * 0.01,
                                 "s3.data_transfer_out": 0.0})


def test_every_class_at_its_match_and_the_free_transfer_counted_once(prices):
    standard = _month("standard", gb_months=100, unit=GIB, class_a=10_000, class_b=100_000, egress=80 * GIB)
    rare = _month("infrequentaccess", gb_months=300, unit=GIB, class_a=1_000, class_b=10_000, egress=70 * GIB)
    total = s3_like_for_like([standard, rare], prices)
    by_hand = (100 * 0.023 + 10 * 0.005 + 100 * 0.0004  # S3 Standard
               + 300 * 0.0125 + 1 * 0.01 + 10 * 0.001 + 70 * 0.01  # S3 Standard-IA with its retrieval
               + (80 + 70 - 100) * 0.09)  # one account's transfer out: 100 GB free once
    assert total == pytest.approx(by_hand)
    with pytest.raises(PricingError, match="no S3 match"):
        s3_cost(_month("glacier"), prices)
