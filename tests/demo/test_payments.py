"""The simulated payments: who pays, through which provider, what fails, what it costs."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from statex_bi.demo.payments import (
    PACKAGES,
    PaymentsData,
    currency_for,
    simulate_payments,
)
from statex_bi.demo.world import World, WorldConfig

CONFIG = WorldConfig(date(2025, 1, 1), date(2025, 6, 30), seed=11)


def percent(amount: int, rate: str) -> int:
    """`rate` percent of `amount` minor units, rounded half up as the providers do."""
    return int((Decimal(amount) * Decimal(rate) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def world() -> World:
    return World(CONFIG)


@pytest.fixture(scope="module")
def payments(world) -> PaymentsData:
    return world.payments


def test_the_same_config_gives_the_same_payments_and_another_seed_others(world, payments):
    assert simulate_payments(CONFIG, world.growth) == payments
    other = WorldConfig(CONFIG.start, CONFIG.end, seed=12)
    assert simulate_payments(other, World(other).growth).stripe_charges != payments.stripe_charges


def test_about_forty_percent_of_prototype_requests_lead_to_an_order(world, payments):
    requests = {r.prototype_id: r for r in world.growth.prototype_requests}
    first_orders = {o.prototype_id for o in payments.orders}
    # Orders of requests made in the last days may fall after the period; compare over the first months.
    early = [p for p, r in requests.items() if r.requested_at < datetime(2025, 5, 1)]
    share = sum(p in first_orders for p in early) / len(early)
    assert 0.33 < share < 0.47
    for order in payments.orders:
        assert order.ordered_at > requests[order.prototype_id].requested_at


def test_customers_stick_to_a_provider_in_the_expected_mix(payments):
    providers = {}
    for order in payments.orders:
        assert providers.setdefault(order.customer_key, order.provider) == order.provider
    mix = Counter(providers.values())
    total = sum(mix.values())
    assert 0.55 < mix["stripe"] / total < 0.75
    assert 0.17 < mix["paypal"] / total < 0.33
    assert 0.04 < mix["coinbase"] / total < 0.17


def test_currency_follows_the_country_and_amounts_are_package_prices(world, payments):
    countries = {c.customer_key: c.country for c in world.growth.customers}
    assert {currency_for("DE"), currency_for("GB"), currency_for("US")} == {"EUR", "GBP", "USD"}
    prices = {(currency, major * 100) for package in PACKAGES.values() for currency, major in package.items()}
    for order in payments.orders:
        assert order.currency == currency_for(countries[order.customer_key])
        assert (order.currency, order.amount) in prices
    assert {o.currency for o in payments.orders} == {"EUR", "GBP", "USD"}


def test_some_customers_pay_again_so_first_payments_differ_from_payments(payments):
    paid = Counter(o.customer_key for o in payments.orders if o.paid_at is not None)
    repeaters = [customer for customer, count in paid.items() if count > 1]
    assert len(repeaters) >= 0.05 * len(paid)


def test_everything_happens_inside_the_period(payments):
    start, now = datetime.combine(CONFIG.start, datetime.min.time()), payments.now
    assert now == datetime(2025, 7, 1)
    moments = [c.created for c in payments.stripe_charges] + [r.created for r in payments.stripe_refunds]
    moments += [t.created for t in payments.stripe_balance_transactions]
    moments += [moment for t in payments.paypal_transactions for moment in (t.initiated_at, t.updated_at)]
    moments += [moment for c in payments.coinbase_charges for _, moment in c.timeline]
    assert all(start <= moment < now for moment in moments)
    assert all(moment.microsecond == 0 for moment in moments)


def test_stripe_declines_retries_fees_and_refunds(payments):
    charges = payments.stripe_charges
    statuses = Counter(c.status for c in charges)
    assert statuses["failed"] > 0 and statuses["succeeded"] > 5 * statuses["failed"]
    failed = [c for c in charges if c.status == "failed"]
    assert all(c.failure_code and c.balance_transaction is None and c.amount_refunded == 0 for c in failed)
    # A declined customer usually retries within the same PaymentIntent and succeeds.
    by_intent = defaultdict(list)
    for charge in charges:
        by_intent[charge.payment_intent].append(charge.status)
    assert any(s[0] == "failed" and s[-1] == "succeeded" for s in by_intent.values())
    assert all(s.count("succeeded") <= 1 for s in by_intent.values())

    txns = {t.id: t for t in payments.stripe_balance_transactions}
    refunds = defaultdict(int)
    for refund in payments.stripe_refunds:
        refunds[refund.charge] += refund.amount
        txn = txns[refund.balance_transaction]
        assert (txn.type, txn.amount, txn.fee, txn.source) == ("refund", -refund.amount, 0, refund.id)
    assert any(r.amount < next(c.amount for c in charges if c.id == r.charge) for r in payments.stripe_refunds)
    expected_fee = {"EUR": lambda a: percent(a, "1.5") + 25, "GBP": lambda a: percent(a, "1.5") + 20,
                    "USD": lambda a: percent(a, "2.9") + 30}
    for charge in charges:
        if charge.status != "succeeded":
            continue
        txn = txns[charge.balance_transaction]
        assert (txn.source, txn.amount, txn.currency) == (charge.id, charge.amount, charge.currency)
        assert txn.fee == expected_fee[charge.currency](charge.amount)
        assert txn.net == charge.amount - txn.fee
        assert charge.amount_refunded == refunds[charge.id]
    assert len(payments.stripe_balance_transactions) == statuses["succeeded"] + len(payments.stripe_refunds)
    assert all(set(c.metadata) == {"channel", "prototype_id", "order_id"} for c in charges)


def test_paypal_denials_fees_and_refunds(payments):
    txns = payments.paypal_transactions
    kinds = Counter((t.event_code, t.status) for t in txns)
    assert kinds[("T0006", "S")] > 0 and kinds[("T0006", "D")] > 0 and kinds[("T1107", "S")] > 0
    payments_by_id = {t.transaction_id: t for t in txns if t.event_code == "T0006"}
    for txn in txns:
        if txn.event_code == "T0006" and txn.status == "S":
            assert txn.fee == -(percent(txn.amount, "3.49") + {"EUR": 39, "GBP": 30, "USD": 49}[txn.currency])
        elif txn.event_code == "T0006":
            assert txn.fee == 0
        else:
            original = payments_by_id[txn.reference_id]
            assert txn.amount < 0 and -txn.amount <= original.amount and txn.currency == original.currency
            assert txn.initiated_at > original.initiated_at
    assert all(set(t.custom) == {"channel", "prototype_id"} for t in txns)


def test_coinbase_charges_complete_or_expire_after_an_hour(payments):
    charges = payments.coinbase_charges
    assert {c.status for c in charges} >= {"COMPLETED", "EXPIRED"}
    for charge in charges:
        steps = [status for status, _ in charge.timeline]
        times = [moment for _, moment in charge.timeline]
        assert steps in (["NEW"], ["NEW", "PENDING"], ["NEW", "PENDING", "COMPLETED"], ["NEW", "EXPIRED"])
        assert times == sorted(times)
        if charge.status == "EXPIRED":
            assert times[-1] - times[0] >= timedelta(hours=1)
            assert charge.fee == 0
        if charge.status == "COMPLETED":
            assert charge.fee == percent(charge.amount, "1")


def test_metadata_names_the_channel_and_prototype_but_stripe_and_paypal_carry_no_identity(world, payments):
    customers = {c.customer_key: c for c in world.growth.customers}
    requests = {r.prototype_id for r in world.growth.prototype_requests}
    for charge in payments.stripe_charges:
        assert charge.metadata["channel"] == customers[charge.customer_key].channel
        assert charge.metadata["prototype_id"] in requests
    identities = {value for c in customers.values() for value in (c.customer_key, c.email, c.name)}
    for metadata in [c.metadata for c in payments.stripe_charges] + [t.custom for t in payments.paypal_transactions]:
        assert not identities & set(metadata.values())


def test_orders_point_at_their_successful_payment(payments):
    ids = {c.id for c in payments.stripe_charges if c.status == "succeeded"}
    ids |= {t.transaction_id for t in payments.paypal_transactions if t.status == "S" and t.event_code == "T0006"}
    ids |= {c.id for c in payments.coinbase_charges if c.status == "COMPLETED"}
    paid = [o for o in payments.orders if o.paid_at is not None]
    assert {o.payment_id for o in paid} == ids
    assert any(o.paid_at is None for o in payments.orders)
