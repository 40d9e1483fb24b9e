"""Growth and revenue KPIs over the fixture warehouse, each checked against a plain-Python computation
over the fixture's raw rows (tests/growth_warehouse.py), not against the SQL's own logic."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import growth_warehouse as fx
import pandas as pd
import pytest
from statsmodels.stats import proportion
from statsmodels.stats.proportion import proportion_confint

from statex_bi import publish
from statex_bi.exceptions import MissingDataError, ParamsError
from statex_bi.kpis import growth_revenue
from statex_bi.kpis.growth_revenue import conversion, growth, revenue
from statex_bi.periods import Period
from statex_bi.publish import read_sidecar

PERIOD, PREVIOUS = fx.PERIOD, fx.PREVIOUS
EXPONENT = {"JPY": 0}  # every other fixture currency has 2 decimals


# --- the hand computation ---------------------------------------------------------------------------

def in_period(day: date, period: Period = PERIOD) -> bool:
    return period.start <= day <= period.end


def rate(currency: str, day: date) -> float:
    """Units per EUR on `day`: the ECB rate of that day, else of the last business day before."""
    if currency == "EUR":
        return 1.0
    published = {d: r for d, c, r in fx.FX if c == currency and d <= day}
    return published[max(published)]


def convertible(currency: str) -> bool:
    return currency == "EUR" or any(c == currency for _, c, _ in fx.FX)


def major(amount_minor: int, currency: str) -> float:
    return amount_minor / 10 ** EXPONENT.get(currency, 2)


def convert(amount_minor: int, currency: str, day: date, reporting: str) -> float:
    return major(amount_minor, currency) / rate(currency, day) * rate(reporting, day)


def channel_of(metadata: str | None) -> str:
    try:
        return json.loads(metadata).get("channel") or "(not set)"
    except (TypeError, ValueError):
        return "(not set)"


def payments() -> list[dict]:
    """Every payment attempt, normalised by hand from the raw fixture rows."""
    fees = {b[0]: (b[6], b[8]) for b in fx.BALANCE_TRANSACTIONS}
    rows = []
    for c in fx.CHARGES:
        fee, fee_currency = fees.get(c[11], (None, None))
        rows.append(dict(provider="stripe", id=c[0], customer=c[9], at=c[1], status=c[5], currency=c[4],
                         amount=c[2], fee=fee, fee_currency=fee_currency, metadata=c[12]))
    paypal_status = {"S": "succeeded", "D": "failed", "P": "pending", "V": "reversed"}
    for t in fx.PAYPAL:
        if t[1].startswith("T00") and t[5] > 0:
            rows.append(dict(provider="paypal", id=t[0], customer=t[8], at=t[2], status=paypal_status[t[4]],
                             currency=t[7], amount=t[5], fee=-t[6], fee_currency=t[7], metadata=t[11]))
    coinbase_status = {"COMPLETED": "succeeded", "EXPIRED": "expired", "NEW": "pending"}
    for c in fx.COINBASE:
        rows.append(dict(provider="coinbase", id=c[0], customer=c[7], at=c[2], status=coinbase_status[c[3]],
                         currency=c[6], amount=c[5], fee=None, fee_currency=None, metadata=c[8]))
    return rows


def refunds() -> list[dict]:
    by_payment = {(p["provider"], p["id"]): p for p in payments()}
    fees = {b[1]: (b[6], b[8]) for b in fx.BALANCE_TRANSACTIONS if b[2] == "refund"}
    rows = []
    for r in fx.REFUNDS:
        fee, fee_currency = fees.get(r[0], (None, None))
        rows.append(dict(provider="stripe", at=r[2], status=r[5], currency=r[4], amount=r[3], fee=fee,
                         fee_currency=fee_currency, metadata=by_payment[("stripe", r[1])]["metadata"]))
    for t in fx.PAYPAL:
        if t[1] == "T1107":
            rows.append(dict(provider="paypal", at=t[2], status="succeeded" if t[4] == "S" else t[4], currency=t[7],
                             amount=-t[5], fee=-t[6], fee_currency=t[7],
                             metadata=by_payment[("paypal", t[10])]["metadata"]))
    return rows


def local_day(moment: datetime) -> date:
    """The day of a naive UTC moment in the GA4 property's time zone (the fixture's Europe/Berlin)."""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(fx.PROPERTY[0][1])).date()


def first_payers(period: Period) -> set[str]:
    """Customers whose first ever successful payment (any provider) falls in `period`."""
    first: dict[str, object] = {}
    for p in payments():
        if p["status"] == "succeeded" and (p["customer"] not in first or p["at"] < first[p["customer"]]):
            first[p["customer"]] = p["at"]
    return {customer for customer, at in first.items() if in_period(local_day(at), period)}


def cohort(period: Period, window_days: int = 30) -> tuple[set[str], set[str]]:
    """(prototypes first requested in `period`, those with a successful payment linked to them within
    `window_days` of their first AI call)."""
    first: dict[str, object] = {}
    for call in fx.AI_CALLS:
        first[call[2]] = min(first.get(call[2], call[1]), call[1])
    requested = {p for p, at in first.items() if in_period(local_day(at), period)}
    paid = set()
    for payment in payments():
        try:
            prototype = json.loads(payment["metadata"] or "{}").get("prototype_id")
        except ValueError:
            prototype = None
        if payment["status"] == "succeeded" and prototype in requested \
                and first[prototype] <= payment["at"] < first[prototype] + timedelta(days=window_days):
            paid.add(prototype)
    return requested, paid


def expected_money(reporting: str, key: str, keep=lambda row: True) -> dict[str, float]:
    """Gross, refunds, fees, net and successful payments of the period for the rows `keep` selects."""
    paid = [p for p in payments() if p["status"] == "succeeded" and in_period(p["at"].date()) and keep(p)
            and convertible(p["currency"])]
    back = [r for r in refunds() if r["status"] in ("succeeded", "pending") and in_period(r["at"].date())
            and keep(r)]
    gross = sum(convert(p["amount"], p["currency"], p["at"].date(), reporting) for p in paid)
    refunded = sum(convert(r["amount"], r["currency"], r["at"].date(), reporting) for r in back)
    fees = sum(convert(x["fee"], x["fee_currency"], x["at"].date(), reporting) for x in paid + back
               if x["fee"] is not None)
    return {"gross": gross, "refunds": refunded, "fees": fees, "net": gross - refunded - fees,
            "successful_payments": len(paid)}


def counts(period: Period) -> dict[str, int]:
    return {
        "sessions": sum(r[2] for r in fx.TRAFFIC if in_period(r[0], period)),
        # sessions in which the event happened, not key events (GA4 may count those several times a session)
        "sign_up": sum(r[3] for r in fx.EVENT_SESSIONS if in_period(r[0], period) and r[2] == "sign_up"),
        "prototype_request": sum(r[3] for r in fx.EVENT_SESSIONS if in_period(r[0], period)
                                 and r[2] == "prototype_request"),
        "prototype_cohort": len(cohort(period)[0]),
        "first_payment": len(cohort(period)[1]),
    }


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path, _ = fx.built(tmp_path_factory)
    connection = duckdb.connect(str(path), read_only=True)
    yield connection
    connection.close()


def _partial(tmp_path_factory, sources) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(fx.without(tmp_path_factory, sources)), read_only=True)


# --- traffic ----------------------------------------------------------------------------------------

def test_traffic_summary_weights_duration_by_sessions_and_averages_daily_users(con):
    rows = [r for r in fx.TRAFFIC if in_period(r[0])]
    users = [r[1] for r in fx.DAILY_USERS if in_period(r[0])]

    summary = growth.traffic_summary(con, PERIOD).iloc[0]

    assert summary["sessions"] == sum(r[2] for r in rows)
    assert summary["engaged_sessions"] == sum(r[6] for r in rows)
    weighted = sum(r[2] * r[5] for r in rows) / sum(r[2] for r in rows)
    assert summary["avg_session_duration_s"] == pytest.approx(weighted, rel=1e-12)
    assert summary["avg_session_duration_s"] != pytest.approx(sum(r[5] for r in rows) / len(rows))
    assert summary["daily_active_users"] == pytest.approx(sum(users) / len(users), rel=1e-12)
    assert summary["days_with_users"] == len(users)


def test_daily_traffic_has_one_row_per_day_and_channel_of_the_period(con):
    frame = growth.daily_traffic(con, PERIOD)

    expected = {(r[0], r[1]): r[2] for r in fx.TRAFFIC if in_period(r[0])}
    got = {(d.date() if hasattr(d, "date") else d, c): s for d, c, s in
           zip(frame["date_day"], frame["channel"], frame["sessions"], strict=True)}
    assert got == expected


# --- funnel -----------------------------------------------------------------------------------------

def test_funnel_counts_and_wilson_rates(con):
    expected = counts(PERIOD)
    frame = conversion.funnel(con, PERIOD).set_index("step")

    for step, value in expected.items():
        if step != "prototype_cohort":
            assert frame.loc[step, "count"] == value, step
    for step, denominator in [("sign_up", "sessions"), ("prototype_request", "sessions"),
                              ("first_payment", "prototype_cohort")]:
        assert frame.loc[step, "denominator"] == expected[denominator]
        k, n = expected[step], expected[denominator]
        assert frame.loc[step, "rate"] == pytest.approx(k / n, rel=1e-12)
        low, high = proportion_confint(k, n, method="wilson")
        assert (frame.loc[step, "ci_low"], frame.loc[step, "ci_high"]) == pytest.approx((low, high), rel=1e-9)


def test_first_payment_is_a_customers_first_ever_success_across_providers(con):
    payers = first_payers(PERIOD)

    # cus_A paid before the period (repeat payments in it), cus_E and cus_L paid first in the previous
    # period; cus_B paid by Stripe then PayPal: first once. cus_K paid at 23:59:59 UTC on Sunday 16 March,
    # which is Monday in Berlin, the GA4 property's zone: after the period, as GA4 counts its sessions.
    assert payers == {"cus_B", "cus_C", "cus_F", "cus_H", "cus_N"}
    firsts = con.execute(
        "select customer_id, provider, payment_id from core.payments where is_first_successful "
        "and cast(created_at as date) between ? and ?", [PERIOD.start, PERIOD.end]
    ).fetchall()
    assert {row[0] for row in firsts} == payers | {"cus_K"}  # by UTC day, as before
    assert ("cus_B", "stripe", "ch_3") in firsts
    assert growth.ga4_time_zone(con) == "Europe/Berlin"
    assert growth.new_paying_customers(con, PERIOD) == len(payers)
    assert growth.new_paying_customers(con, PREVIOUS) == len(first_payers(PREVIOUS))


def test_first_payment_rate_is_a_cohort_of_prototypes_paid_within_the_window(con):
    """Before: first payments of the period / prototype-request key events: the numerator was not a subset
    of the denominator (a payment for a prototype requested weeks earlier counted)."""
    requested, paid = cohort(PERIOD)
    # p1 (PayPal) and p2 (Stripe) paid; p3's only linked payment was declined; p4 paid after 37 days;
    # p7 was first requested in the previous period, so its payment in this one belongs to that cohort.
    assert (requested, paid) == ({"p1", "p2", "p3", "p4"}, {"p1", "p2"})
    row = growth.first_payment_cohort(con, PERIOD).iloc[0]
    assert (row["prototypes"], row["paid"]) == (4, 2)
    low, high = proportion_confint(2, 4, method="wilson")
    assert (row["rate"], row["ci_low"], row["ci_high"]) == pytest.approx((0.5, low, high))
    assert row["data_as_of"] == date(2025, 4, 20) and row["window_closes"] == date(2025, 4, 15)
    assert row["window_closed"]
    assert "the rate is final" in growth.maturity_note(growth.first_payment_cohort(con, PERIOD))
    assert cohort(PREVIOUS) == ({"p5", "p6", "p7"}, {"p5", "p7"})

    longer = growth.first_payment_cohort(con, PERIOD, payment_window_days=45)
    assert (longer.iloc[0]["paid"], bool(longer.iloc[0]["window_closed"])) == (3, False)  # p4 now counts
    assert longer.iloc[0]["days_observed"] == (date(2025, 4, 20) - PERIOD.end).days
    note = growth.maturity_note(longer)
    assert "Not mature" in note and "2025-04-30" in note
    with pytest.raises(ParamsError, match="payment_window_days"):
        growth.first_payment_cohort(con, PERIOD, payment_window_days=0)


def hand_dispersion(step: str) -> float:
    """Quasi-binomial scale of the daily counts of PREVIOUS and PERIOD (period + weekday terms), at least 1."""
    import numpy as np
    import statsmodels.api as sm

    days = sorted({r[0] for r in fx.TRAFFIC if in_period(r[0]) or in_period(r[0], PREVIOUS)})
    n = np.array([sum(r[2] for r in fx.TRAFFIC if r[0] == d) for d in days], dtype=float)
    x = np.array([sum(r[3] for r in fx.EVENT_SESSIONS if r[0] == d and r[2] == step) for d in days], dtype=float)
    weekdays = sorted({d.weekday() for d in days})[1:]
    design = sm.add_constant(np.array([[in_period(d)] + [d.weekday() == w for w in weekdays] for d in days], float))
    if len(days) - np.linalg.matrix_rank(design) < 3:
        return 1.0
    fit = sm.GLM(x / n, design, family=sm.families.Binomial(), var_weights=n).fit()
    return max(1.0, float(fit.pearson_chi2 / fit.df_resid))


def test_comparison_with_previous_period_uses_a_score_or_exact_test_allowing_for_over_dispersion(con):
    from scipy.stats import fisher_exact, norm

    now, before = counts(PERIOD), counts(PREVIOUS)
    frame = conversion.conversion_comparison(con, PERIOD).set_index("metric")

    for metric, step, denominator in [
        ("conversion.signup_rate", "sign_up", "sessions"),
        ("conversion.prototype_request_rate", "prototype_request", "sessions"),
        ("conversion.first_payment_rate", "first_payment", "prototype_cohort"),
    ]:
        row = frame.loc[metric]
        assert (row["period_start"], row["period_end"]) == (PERIOD.start, PERIOD.end)
        assert (row["previous_start"], row["previous_end"]) == (PREVIOUS.start, PREVIOUS.end)
        x1, n1, x0, n0 = now[step], now[denominator], before[step], before[denominator]
        assert (row["numerator"], row["denominator"]) == (x1, n1)
        assert (row["previous_numerator"], row["previous_denominator"]) == (x0, n0)
        assert row["previous_rate"] == pytest.approx(x0 / n0)
        assert row["change_pt"] == pytest.approx((x1 / n1 - x0 / n0) * 100)
        dispersion = hand_dispersion(step) if denominator == "sessions" else 1.0
        assert row["dispersion"] == pytest.approx(dispersion, rel=1e-6)
        pooled = (x1 + x0) / (n1 + n0)
        small = min(n * q for n in (n1, n0) for q in (pooled, 1 - pooled)) < 5
        if small:
            p = fisher_exact([[x1, n1 - x1], [x0, n0 - x0]]).pvalue
        else:
            z = proportion.test_proportions_2indep(x1, n1, x0, n0, method="score", compare="diff").statistic
            p = 2 * norm.sf(abs(z) / dispersion ** 0.5)
        assert (row["test"] == "Fisher's exact test") is small
        assert row["p_value"] == pytest.approx(float(p), rel=1e-9)
        assert row["significant"] == (p < 0.05)


def test_conversion_trend_per_day_and_channel(con):
    frame = conversion.conversion_trend(con, PERIOD, key_event="prototype_request")

    assert frame["bucket_start"].nunique() == len({r[0] for r in fx.TRAFFIC if in_period(r[0])})
    row = frame[(frame["channel"] == "Organic Search") & (pd.to_datetime(frame["bucket_start"]) == "2025-03-10")]
    # 6 key events but 5 sessions with the event: the rate is a proportion of sessions
    assert row["key_events"].item() == 5 and row["sessions"].item() == 500
    assert row["rate"].item() == pytest.approx(5 / 500)
    weekly = conversion.conversion_trend(con, Period(date(2025, 3, 3), date(2025, 3, 16)), grain="week")
    organic = weekly[weekly["channel"] == "Organic Search"].sort_values("bucket_start")
    assert organic["sessions"].tolist() == [780, 1010]
    assert organic["key_events"].tolist() == [3, 7]


# --- revenue ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("reporting", ["EUR", "GBP", "JPY"])
def test_revenue_by_provider_matches_a_hand_conversion(con, reporting):
    frame = revenue.revenue(con, PERIOD, reporting_currency=reporting).set_index("provider")

    assert list(frame.index) == ["stripe", "paypal", "coinbase", "all"]
    for provider in ("stripe", "paypal", "coinbase", "all"):
        expected = expected_money(reporting, provider, lambda r, p=provider: p in ("all", r["provider"]))
        for column, value in expected.items():
            assert frame.loc[provider, column] == pytest.approx(value, rel=1e-12, abs=1e-12), (provider, column)
        assert frame.loc[provider, "aov"] == pytest.approx(expected["gross"] / expected["successful_payments"])
    assert (frame["currency"] == reporting).all()
    assert frame.loc["coinbase", "fees_reported"] == False  # noqa: E712 (numpy bool)


def test_weekend_payments_use_fridays_rate_and_yen_has_no_decimals(con):
    saturday = date(2025, 3, 15)
    friday = saturday - timedelta(days=1)
    rows = dict(con.execute(
        "select payment_id, amount_eur from marts.payments_eur where payment_id in ('ch_3', 'cb-1')"
    ).fetchall())

    gbp = next(r for d, c, r in fx.FX if d == friday and c == "GBP")
    jpy = next(r for d, c, r in fx.FX if d == friday and c == "JPY")
    assert rows["ch_3"] == pytest.approx(49.99 / gbp, rel=1e-12)
    assert rows["cb-1"] == pytest.approx(3000 / jpy, rel=1e-12)


def test_refunds_count_when_they_happen_and_only_if_not_failed(con):
    frame = revenue.revenue(con, PERIOD).set_index("provider")

    # re_1 refunds a payment from before the period, on 12 March; re_2 is after it; re_3 failed
    stripe_refunds = major(2000, "EUR")
    assert frame.loc["stripe", "refunds"] == pytest.approx(stripe_refunds)
    paypal_refund = convert(1000, "USD", date(2025, 3, 13), "EUR")
    assert frame.loc["paypal", "refunds"] == pytest.approx(paypal_refund)


def test_revenue_by_channel_attributes_refunds_to_the_payments_channel(con):
    frame = revenue.revenue(con, PERIOD, reporting_currency="GBP", by="channel").set_index("channel")

    for channel in ("Organic Search", "Direct", "(not set)"):
        expected = expected_money("GBP", channel, lambda r, c=channel: channel_of(r["metadata"]) == c)
        for column, value in expected.items():
            assert frame.loc[channel, column] == pytest.approx(value, rel=1e-12, abs=1e-12), (channel, column)
    assert set(frame.index) == {"Organic Search", "Direct", "(not set)", "all"}
    assert frame.loc["all", "net"] == pytest.approx(expected_money("GBP", "all")["net"], rel=1e-12)


def test_revenue_channel_key_is_a_parameter(con):
    frame = revenue.revenue(con, PERIOD, by="channel", channel_metadata_field="prototype_id").set_index("channel")

    assert frame.loc["p1", "gross"] == pytest.approx(convert(2500, "USD", date(2025, 3, 10), "EUR"))
    tagged = expected_money("EUR", "all", lambda r: "prototype_id" in (r["metadata"] or ""))["successful_payments"]
    assert tagged == 3  # p1, p2, p7
    assert frame.loc["(not set)", "successful_payments"] == expected_money("EUR", "all")["successful_payments"] - tagged


def test_a_currency_without_an_ecb_rate_is_listed_unconverted_with_its_amount(con):
    """Before: only counted in `unconverted`, its amount was nowhere in the report."""
    frame = revenue.revenue(con, PERIOD).set_index("provider")
    assert frame.loc["coinbase", "unconverted"] == frame.loc["all", "unconverted"] == 1
    missing = revenue.unconverted_amounts(con, PERIOD)
    assert missing.to_dict("records") == [
        {"provider": "coinbase", "kind": "payment", "currency": "CHF", "items": 1, "amount": 45.0}]
    assert revenue.unconverted_amounts(con, PREVIOUS).empty


def test_payment_failure_rate_counts_expired_charges_as_failed(con):
    frame = revenue.payment_failures(con, PERIOD).set_index("provider")

    attempts = [p for p in payments() if in_period(p["at"].date())]
    for provider in ("stripe", "paypal", "coinbase", "all"):
        mine = [p for p in attempts if provider in ("all", p["provider"])]
        failed = sum(p["status"] in ("failed", "expired", "canceled") for p in mine)
        assert frame.loc[provider, "attempts"] == len(mine)
        assert frame.loc[provider, "failure_rate"] == pytest.approx(failed / len(mine))
        low, high = proportion_confint(failed, len(mine), method="wilson")
        assert frame.loc[provider, "ci_low"] == pytest.approx(low, rel=1e-9)
        assert frame.loc[provider, "ci_high"] == pytest.approx(high, rel=1e-9)
    assert frame.loc["coinbase", "expired"] == 1


def test_waterfall_steps_add_up(con):
    steps = revenue.waterfall(revenue.revenue(con, PERIOD)).set_index("step")
    expected = expected_money("EUR", "all")

    assert steps.loc["Gross", "end"] == pytest.approx(expected["gross"])
    assert steps.loc["Refunds", "end"] == pytest.approx(expected["gross"] - expected["refunds"])
    assert steps.loc["Fees", "end"] == pytest.approx(expected["net"])
    assert steps.loc["Net", "end"] == pytest.approx(expected["net"])


def test_unknown_reporting_currency_is_a_params_error(con):
    with pytest.raises(ParamsError, match="XYZ"):
        revenue.revenue(con, PERIOD, reporting_currency="XYZ")


# --- empty periods and missing sources -------------------------------------------------------------

def test_an_empty_period_gives_zeros_and_undefined_rates(con):
    empty = Period(date(2024, 1, 1), date(2024, 1, 7))

    funnel = conversion.funnel(con, empty).set_index("step")
    money = revenue.revenue(con, empty).set_index("provider")
    failures = revenue.payment_failures(con, empty).set_index("provider")

    assert funnel["count"].tolist() == [0, 0, 0, 0]
    assert funnel["rate"].isna().all()
    assert money.loc["all", ["gross", "refunds", "fees", "net"]].tolist() == [0, 0, 0, 0]
    assert math.isnan(money.loc["all", "aov"])
    assert failures.loc["all", "attempts"] == 0 and math.isnan(failures.loc["all", "failure_rate"])
    assert conversion.headline_text(conversion.conversion_comparison(con, empty)) == (
        "Prototype-request conversion: no data in the period to compute it."
    )


SOME_PROVIDERS = ("ga4", "fx", "stripe", "ai_calls")


def test_only_some_providers_loaded(tmp_path_factory):
    partial = _partial(tmp_path_factory, SOME_PROVIDERS)

    available = growth.availability(partial)
    frame = revenue.revenue(partial, PERIOD).set_index("provider")

    assert available.ga4 and available.payments and available.revenue
    assert available.providers == ["stripe"]
    assert any("paypal, coinbase" in note for note in available.notes)
    assert list(frame.index) == ["stripe", "all"]
    expected = expected_money("EUR", "stripe", lambda r: r["provider"] == "stripe")
    assert frame.loc["all", "gross"] == pytest.approx(expected["gross"])
    stripe_first = {p["customer"] for p in payments() if p["provider"] == "stripe"} & first_payers(PERIOD)
    assert growth.new_paying_customers(partial, PERIOD) == len(stripe_first)
    assert conversion.funnel(partial, PERIOD).set_index("step").loc["first_payment", "count"] == 1  # p2 only


def test_without_payments_the_first_payment_step_is_unknown_not_zero(tmp_path_factory):
    partial = _partial(tmp_path_factory, ("ga4", "ai_calls"))

    available = growth.availability(partial)
    funnel = conversion.funnel(partial, PERIOD).set_index("step")

    assert not available.payments and not available.revenue
    assert pd.isna(funnel.loc["first_payment", "count"])
    with pytest.raises(MissingDataError, match="marts.payments_eur"):
        revenue.revenue(partial, PERIOD)


def test_without_ga4_the_funnel_says_what_to_load(tmp_path_factory):
    partial = _partial(tmp_path_factory, ("fx", "paypal"))

    with pytest.raises(MissingDataError, match="ingest ga4"):
        conversion.funnel(partial, PERIOD)
    assert not growth.availability(partial).ga4


# --- headline ---------------------------------------------------------------------------------------

def _comparison(rate, low, high, previous_rate, p_value, significant):
    return pd.DataFrame([{
        "metric": "conversion.prototype_request_rate", "label": "Prototype-request conversion", "rate": rate,
        "ci_low": low, "ci_high": high, "previous_rate": previous_rate, "change_pt": (rate - previous_rate) * 100,
        "p_value": p_value, "significant": significant, "period_start": date(2025, 3, 1),
        "period_end": date(2025, 3, 31), "previous_start": date(2025, 2, 1), "previous_end": date(2025, 2, 28),
    }])


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (_comparison(0.031, 0.028, 0.034, 0.027, 0.004, True),
         "Prototype-request conversion was 3.1% (2.8-3.4%), up 0.4 pt on the previous period, "
         "significant (p = 0.004) (2025-03-01 to 2025-03-31 against 2025-02-01 to 2025-02-28)."),
        (_comparison(0.020, 0.015, 0.026, 0.0231, 0.31, False),
         "Prototype-request conversion was 2.0% (1.5-2.6%), down 0.3 pt on the previous period, "
         "not significant (p = 0.310) (2025-03-01 to 2025-03-31 against 2025-02-01 to 2025-02-28)."),
        (_comparison(0.020, 0.015, 0.026, 0.02001, 0.99, False),
         "Prototype-request conversion was 2.0% (1.5-2.6%), unchanged on the previous period, "
         "not significant (p = 0.990) (2025-03-01 to 2025-03-31 against 2025-02-01 to 2025-02-28)."),
        (_comparison(0.020, 0.015, 0.026, math.nan, math.nan, False),
         "Prototype-request conversion was 2.0% (1.5-2.6%), with no previous-period data to compare."),
        (_comparison(0.0, 0.0, 0.026, 0.0, math.nan, False),
         "Prototype-request conversion was 0.0% (0.0-2.6%), unchanged on the previous period, "
         "no significance test possible (2025-03-01 to 2025-03-31 against 2025-02-01 to 2025-02-28)."),
    ],
    ids=["up-significant", "down", "unchanged", "no-previous", "untestable"],
)
def test_headline_text(frame, text):
    assert conversion.headline_text(frame) == text


# --- publishing -------------------------------------------------------------------------------------

def test_published_metrics_are_the_documented_ones_with_hand_computed_values(con, tmp_path, monkeypatch):
    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("STATEX_BI_SIDECAR", str(sidecar))

    frame = publish.publish(growth_revenue.metrics(con, PERIOD, reporting_currency="GBP"))

    records = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert len(records) == frame["published"].sum() == len(frame)
    by_key = {(r["metric_name"], r["tags"].get("provider")): r for r in records}
    now = counts(PERIOD)
    assert by_key[("ga4.sessions", None)]["value"] == now["sessions"]
    rate = by_key[("conversion.first_payment_rate", None)]
    assert rate["value"] == pytest.approx(now["first_payment"] / now["prototype_cohort"])
    assert rate["unit"] == "fraction"
    assert (rate["tags"]["ci_low"], rate["tags"]["ci_high"]) == pytest.approx(
        proportion_confint(now["first_payment"], now["prototype_cohort"], method="wilson"))
    assert (rate["tags"]["payment_window_days"], rate["tags"]["window_closed"]) == (30, True)
    assert by_key[("customers.new_paying", None)]["value"] == len(first_payers(PERIOD))
    assert {r["metric_type"] for r in records} == {"GAUGE"}
    for provider in ("stripe", "paypal", "coinbase", "all"):
        expected = expected_money("GBP", provider, lambda r, p=provider: p in ("all", r["provider"]))
        for kpi in ("gross", "refunds", "fees", "net"):
            record = by_key[(f"revenue.{kpi}", provider)]
            assert record["value"] == pytest.approx(expected[kpi], rel=1e-12, abs=1e-12)
            assert record["unit"] == "GBP"
        assert ("payments.failure_rate", provider) in by_key
    total = expected_money("GBP", "all")
    assert by_key[("revenue.aov", "all")]["value"] == pytest.approx(total["gross"] / total["successful_payments"])
    assert {r["metric_name"] for r in records} == {
        "ga4.sessions", "ga4.daily_active_users", "conversion.signup_rate", "conversion.prototype_request_rate",
        "conversion.first_payment_rate", "revenue.gross", "revenue.refunds", "revenue.fees", "revenue.net",
        "payments.failure_rate", "revenue.aov", "ga4.avg_session_duration_s", "customers.new_paying",
    }


def test_undefined_values_are_not_published(con, tmp_path, monkeypatch):
    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("STATEX_BI_SIDECAR", str(sidecar))

    frame = publish.publish(growth_revenue.metrics(con, Period(date(2024, 1, 1), date(2024, 1, 7))))
    frame = frame.set_index("metric_name")

    lines = sidecar.read_text().splitlines() if sidecar.exists() else []
    published = {json.loads(line)["metric_name"] for line in lines}
    assert "conversion.signup_rate" not in published and "revenue.aov" not in published
    # No payment is loaded for January 2024: no made-up 0 revenue, and the reason says what is loaded.
    assert not published & {"revenue.gross", "revenue.net", "revenue.aov", "customers.new_paying",
                             "payments.failure_rate"}
    assert frame.loc["revenue.net", "reason"].startswith("the payments loaded cover ")
    assert frame.loc["revenue.net", "reason"].endswith(", not this period")
    # GA4 holds no day of January 2024: no made-up 0 sessions.
    assert "ga4.sessions" not in published
    assert frame.loc["ga4.sessions", "reason"] == "GA4 holds no data for the period"


# --- the notebook -----------------------------------------------------------------------------------

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "growth_revenue.ipynb"
PUBLISHED = {
    "ga4.sessions", "ga4.daily_active_users", "conversion.signup_rate", "conversion.prototype_request_rate",
    "conversion.first_payment_rate", "revenue.gross", "revenue.refunds", "revenue.fees", "revenue.net",
    "payments.failure_rate", "revenue.aov", "ga4.avg_session_duration_s", "customers.new_paying",
}


def _run_notebook(tmp_path: Path, monkeypatch, db: Path, period: Period) -> tuple[list[dict], str]:
    """Execute the notebook with papermill; returns the published records and the outputs' HTML text."""
    import nbformat
    import papermill

    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("STATEX_BI_DB", str(db))
    monkeypatch.setenv("STATEX_BI_SIDECAR", str(sidecar))
    out = tmp_path / "growth_revenue.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
        parameters={"period_start": str(period.start), "period_end": str(period.end), "run_id": "test",
                    "reporting_currency": "GBP"},
    )
    html = "".join(
        output.get("data", {}).get("text/html", "")
        for cell in nbformat.read(out, as_version=4).cells if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    return read_sidecar(sidecar), html


def test_notebook_publishes_every_kpi_on_the_fixture(tmp_path, tmp_path_factory, monkeypatch):
    db, _ = fx.built(tmp_path_factory)

    records, html = _run_notebook(tmp_path, monkeypatch, db, PERIOD)

    assert {r["metric_name"] for r in records} == PUBLISHED
    net = next(r for r in records if r["metric_name"] == "revenue.net" and r["tags"]["provider"] == "all")
    assert net["value"] == pytest.approx(expected_money("GBP", "all")["net"], rel=1e-12)
    assert "Prototype-request conversion was" in html
    assert "By provider" in html and "Gross (GBP)" in html and "e+0" not in html


def test_notebook_with_some_sources_missing_and_an_empty_period(tmp_path, tmp_path_factory, monkeypatch):
    db = fx.without(tmp_path_factory, SOME_PROVIDERS)  # the warehouse test_only_some_providers_loaded reads

    records, html = _run_notebook(tmp_path, monkeypatch, db, Period(date(2024, 1, 1), date(2024, 1, 7)))

    names = {r["metric_name"] for r in records}
    # No GA4 day and no payment in the period: neither sessions nor revenue are published as 0.
    assert not names & {"ga4.sessions", "conversion.signup_rate", "revenue.gross", "revenue.net", "revenue.aov",
                        "payments.failure_rate"}
    assert "Not loaded: paypal, coinbase" in html
    assert "no data in the period" in html


def test_notebook_with_nothing_loaded(tmp_path, monkeypatch):
    records, html = _run_notebook(tmp_path, monkeypatch, tmp_path / "missing.duckdb", PERIOD)

    assert records == []
    assert "GA4 is not loaded" in html and "No payment provider is loaded" in html
