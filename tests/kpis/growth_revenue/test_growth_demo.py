"""End to end: the simulated company, served by the sandbox APIs, loaded by the real connectors, built
by the models: the growth and revenue KPIs equal what the simulation generated."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest
from warehouse_copies import copy_with_state

from statex_bi.demo.apis.ga4 import TIME_ZONE
from statex_bi.demo.runner import served
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import ingest
from statex_bi.kpis.growth_revenue import conversion, growth, revenue
from statex_bi.periods import Period
from statex_bi.sources.contract import IngestRequest

SOURCES = ("ga4", "stripe", "paypal", "coinbase", "fx", "sentry")
CONFIG = WorldConfig(date(2026, 7, 1), date(2026, 9, 30), seed=11)
PERIOD = Period(date(2026, 9, 1), date(2026, 9, 30))


@pytest.fixture(scope="module")
def demo(tmp_path_factory, built_empty):
    world = World(CONFIG)
    db = copy_with_state(built_empty[0], tmp_path_factory.mktemp("growth_demo"))
    with served(world, list(SOURCES), progress=lambda _: None):
        results = ingest(list(SOURCES), IngestRequest(CONFIG.start, CONFIG.end, progress=lambda _: None), db=db)
    assert [r.status for r in results] == ["succeeded"] * len(SOURCES), [r.error for r in results]
    con = duckdb.connect(str(db), read_only=True)
    yield world, con
    con.close()


def in_period(moment) -> bool:
    return PERIOD.start <= moment.date() <= PERIOD.end


def eur(world: World, amount_minor: int, currency: str, day: date) -> float:
    """Minor units to euros at the simulated ECB rate of `day` or of the last business day before it."""
    if currency == "EUR":
        return amount_minor / 100
    published = max(d for d in world.fx.dates if d <= day and (d, currency) in world.fx.rates)
    return amount_minor / 100 / world.fx.rates[(published, currency)]


def test_funnel_counts_are_the_simulated_ones(demo):
    world, con = demo
    traffic = [r for r in world.growth.traffic if PERIOD.start <= r["date"] <= PERIOD.end]
    # The funnel's steps are sessions with the event (GA4 counts a double submit twice as key events).
    event_sessions = [r for r in world.growth.event_sessions if PERIOD.start <= r["date"] <= PERIOD.end]
    key_events = [r for r in world.growth.key_events if PERIOD.start <= r["date"] <= PERIOD.end]
    first_paid: dict[str, object] = {}
    for order in world.payments.orders:
        if order.paid_at and (order.customer_key not in first_paid or order.paid_at < first_paid[order.customer_key]):
            first_paid[order.customer_key] = order.paid_at

    funnel = conversion.funnel(con, PERIOD).set_index("step")

    assert funnel.loc["sessions", "count"] == sum(r["sessions"] for r in traffic)
    def sessions_with(event: str) -> int:
        return sum(r["sessions"] for r in event_sessions if r["event_name"] == event)

    assert funnel.loc["sign_up", "count"] == sessions_with("sign_up")
    assert funnel.loc["prototype_request", "count"] == sessions_with("prototype_request")
    assert funnel.loc["prototype_request", "count"] < sum(
        r["key_events"] for r in key_events if r["event_name"] == "prototype_request")
    assert growth.new_paying_customers(con, PERIOD) == sum(1 for at in first_paid.values() if in_period(at))

    # The cohort: prototypes whose first AI call is in the period, paid for within 30 days of it.
    first_call: dict[str, object] = {}
    for call in world.ai.calls:
        first_call[call.prototype_id] = min(first_call.get(call.prototype_id, call.started_at), call.started_at)
    # Cohorts are dated in the GA4 property's time zone, like the funnel's sessions.
    local = ZoneInfo(TIME_ZONE)
    cohort = {p for p, at in first_call.items()
              if PERIOD.start <= at.replace(tzinfo=UTC).astimezone(local).date() <= PERIOD.end}
    paid = {o.prototype_id for o in world.payments.orders if o.prototype_id in cohort and o.paid_at
            and first_call[o.prototype_id] <= o.paid_at < first_call[o.prototype_id] + timedelta(days=30)}
    assert 0 < len(paid) < len(cohort)
    step = funnel.loc["first_payment"]
    assert (step["count"], step["denominator"]) == (len(paid), len(cohort))


def test_revenue_and_failures_are_the_simulated_ones(demo):
    world, con = demo
    sim = world.payments
    stripe_fees = {t.source: t for t in sim.stripe_balance_transactions}
    expected = {
        "stripe": sum(eur(world, c.amount, c.currency, c.created.date()) for c in sim.stripe_charges
                      if c.status == "succeeded" and in_period(c.created)),
        "paypal": sum(eur(world, t.amount, t.currency, t.initiated_at.date()) for t in sim.paypal_transactions
                      if t.event_code == "T0006" and t.status == "S" and in_period(t.initiated_at)),
        "coinbase": sum(eur(world, c.amount, c.currency, c.created_at.date()) for c in sim.coinbase_charges
                        if c.status == "COMPLETED" and in_period(c.created_at)),
    }
    refunds = sum(eur(world, r.amount, r.currency, r.created.date())
                  for r in sim.stripe_refunds if in_period(r.created))
    refunds += sum(eur(world, -t.amount, t.currency, t.initiated_at.date()) for t in sim.paypal_transactions
                   if t.event_code == "T1107" and in_period(t.initiated_at))
    fees = sum(eur(world, stripe_fees[c.id].fee, stripe_fees[c.id].currency, c.created.date())
               for c in sim.stripe_charges if c.status == "succeeded" and in_period(c.created))
    fees += sum(eur(world, -t.fee, t.currency, t.initiated_at.date()) for t in sim.paypal_transactions
                if t.event_code in ("T0006", "T1107") and in_period(t.initiated_at) and (t.status == "S"))

    money = revenue.revenue(con, PERIOD).set_index("provider")
    failures = revenue.payment_failures(con, PERIOD).set_index("provider")

    for provider, gross in expected.items():
        assert money.loc[provider, "gross"] == pytest.approx(gross, rel=1e-9), provider
    assert money.loc["all", "refunds"] == pytest.approx(refunds, rel=1e-9)
    assert money.loc["all", "fees"] == pytest.approx(fees, rel=1e-9)
    assert money.loc["all", "unconverted"] == 0
    stripe = [c for c in sim.stripe_charges if in_period(c.created)]
    coinbase = [c for c in sim.coinbase_charges if in_period(c.created_at)]
    assert failures.loc["stripe", "failure_rate"] == pytest.approx(
        sum(c.status == "failed" for c in stripe) / len(stripe))
    assert failures.loc["coinbase", "failure_rate"] == pytest.approx(
        sum(c.status == "EXPIRED" for c in coinbase) / len(coinbase))
