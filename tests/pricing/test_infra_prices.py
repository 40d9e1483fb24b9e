"""The infrastructure price catalog and the pricing of a month, against hand computations with the
prices the issue states (R2 pricing page; S3 Standard us-east-1)."""

from __future__ import annotations

from datetime import date

import pytest

from statex_bi.exceptions import PricingError
from statex_bi.pricing.infra import (
    CDN,
    DIRECT,
    GB,
    GIB,
    HIGH,
    LOW,
    StorageMonth,
    cheapest_plan,
    load_infra_catalog,
    plan_cost,
    plan_options,
    r2_cost,
    s3_cost,
    s3_like_for_like,
    s3_paths,
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
    plan, cost = cheapest_plan(prices, "mailgun", 88_000, NOV)  # the base: the midpoint of the quoted $1.00-1.30
    assert (plan.plan, cost) == ("Foundation 50K", pytest.approx(35 + 38 * 1.15))
    plan, cost = cheapest_plan(prices, "postmark", 80, NOV)
    assert (plan.plan, cost) == ("Developer", 0)
    plan, cost = cheapest_plan(prices, "postmark", 12_000, NOV)
    assert (plan.plan, cost) == ("Basic 10K", pytest.approx(15 + 2 * 1.80))
    # SendGrid's overage is not confirmed: its plans stop at their volume; only the unverified Pro 300K fits 150K.
    plan, cost = cheapest_plan(prices, "sendgrid", 150_000, NOV)
    assert (plan.plan, plan.unverified is not None) == ("Pro 300K", True)
    assert cheapest_plan(prices, "sendgrid", 150_000, NOV, only=[p for p in prices.plans("sendgrid", NOV)
                                                                if not p.unverified]) is None


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


def test_every_plan_tier_the_reference_lists_is_in_the_catalog_and_the_others_are_flagged(prices):
    """The audit: the e-mail catalog lacked SendGrid's Essentials 100K tier. Every tier the reference lists
    (kpi-facts.md section 2) is checked; tiers it does not list are in, marked unverified."""
    plans = {(p.provider, p.plan): p for p in prices.effective("email.plan", NOV)}
    listed = {("sendgrid", "Essentials 50K"), ("sendgrid", "Pro 100K"), ("mailgun", "Basic 10K"),
              ("mailgun", "Foundation 50K"), ("mailgun", "Scale 100K"), ("mailgun", "Flex"),
              ("postmark", "Developer"), ("postmark", "Basic 10K")}
    assert listed <= set(plans) and all(plans[key].unverified is None for key in listed)
    assert plans[("sendgrid", "Essentials 100K")].unverified
    assert plans[("sendgrid", "Essentials 100K")].monthly_usd < plans[("sendgrid", "Pro 100K")].monthly_usd
    assert all(plans[key].unverified for key in set(plans) - listed if key[0] != "ses")
    # The S3 Standard-IA prices are not in the reference: flagged, not "to verify" in a comment.
    assert {r.row_id for r in prices.rows if r.item.startswith("s3.standard_ia.") and r.unverified} == {
        "s3-ia-storage", "s3-ia-tier1", "s3-ia-tier2", "s3-ia-retrieval"}
    frame = prices.frame().set_index("id")
    assert frame.loc["s3-ia-storage", "status"].startswith("unverified")
    assert frame.loc["s3-storage-t1", "status"] == "checked against the reference"


def test_both_ends_of_a_quoted_overage_range_are_priced(prices):
    """The audit: the catalog used the top of Mailgun's own $1.00-1.30 overage range as if it were the price."""
    foundation = next(p for p in prices.plans("mailgun", NOV) if p.plan == "Foundation 50K")
    assert plan_cost(foundation, 60_000, LOW) == pytest.approx(35 + 10 * 1.00)
    assert plan_cost(foundation, 60_000, HIGH) == pytest.approx(35 + 10 * 1.30)
    scale = next(p for p in prices.plans("mailgun", NOV) if p.plan == "Scale 100K")
    assert plan_cost(scale, 200_000, LOW) == pytest.approx(90 + 100 * 0.35)
    # Each end where the range applies; a plan the volume does not take past its included e-mails has one price.
    ends = {(plan.plan, end) for plan, end, _ in plan_options(prices, "mailgun", 60_000, NOV)}
    assert ends == {("Foundation 50K", "low"), ("Foundation 50K", "base"), ("Foundation 50K", "high"),
                    ("Scale 100K", "base"), ("Flex", "base")}


def test_a_quoted_range_must_hold_its_base_price(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("rules: []\nrows:\n  - {id: x, item: email.plan, provider: p, plan: P, monthly_usd: 1, "
                    "included: 1, "
                    "overage_per_1000: 2, overage_range_per_1000: [0.5, 1.5], effective_from: 2024-01-01, source: s, "
                    "retrieved_at: 2024-01-01}\n")
    with pytest.raises(PricingError, match=r"row 1 \(x\): overage_range_per_1000 must be \[low, high\]"):
        load_infra_catalog(path)


def test_the_cdn_path_prices_cloudfront_and_not_s3_s_internet_egress(prices):
    """The audit: direct internet egress is an upper bound; a CDN in front has other prices."""
    month = _month("standard", gb_months=100, unit=GIB, class_a=20_000, class_b=12_000_000, egress=1_500 * GIB)
    paths = s3_paths([month], prices).set_index("path")
    storage = 100 * 0.023 + 20 * 0.005 + 12_000 * 0.0004
    assert paths.loc[DIRECT, "usd"] == pytest.approx(storage + (1_500 - 100) * 0.09)
    # S3 to CloudFront free; CloudFront: 1 TB free then $0.085 per GB; 10M requests free then $0.01 per 10,000.
    assert paths.loc[CDN, "usd"] == pytest.approx(storage + (1_500 - 1_024) * 0.085 + 200 * 0.01)
    assert "cloudfront-dto-t1" in paths.loc[CDN, "row_ids"] and "s3-dto-t1" not in paths.loc[CDN, "row_ids"]
    # The unverified rows named are those that priced it: CloudFront's first transfer tier and its requests.
    assert prices.unverified(paths.loc[CDN, "row_ids"]) == ["cloudfront-dto-t1", "cloudfront-https-requests"]
    beyond = _month("standard", egress=(1_024 + 10_240 + 5) * GIB)
    assert "cloudfront-dto-t2" in s3_paths([beyond], prices).set_index("path").loc[CDN, "row_ids"]


def test_a_week_of_constant_usage_costs_its_share_of_the_month(prices):
    """A week is its usage projected to the month, billed as a month, counted for 7 of 30 days: the free
    allowances and the rounding to whole units are prorated, not spent by whichever week comes first."""
    daily_bytes, daily_a, daily_b, daily_egress = 25_300_000_000, 50_000, 400_000, 20 * GIB
    week = StorageMonth(NOV, "standard", 7 * daily_bytes, 30, 7 * daily_a, 7 * daily_b, 7 * daily_egress, 7)
    month = StorageMonth(NOV, "standard", 30 * daily_bytes, 30, 30 * daily_a, 30 * daily_b, 30 * daily_egress)
    assert r2_cost(week, prices)["usd"].sum() == pytest.approx(r2_cost(month, prices)["usd"].sum() * 7 / 30)
    assert s3_like_for_like([week], prices) == pytest.approx(s3_like_for_like([month], prices) * 7 / 30)
    assert r2_cost(week, prices)["usd"].sum() == pytest.approx((16 * 0.015 + 1 * 4.50 + 2 * 0.36) * 7 / 30)
