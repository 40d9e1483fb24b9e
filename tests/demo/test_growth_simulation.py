"""The growth simulation: deterministic, internally consistent, realistic in its rates and shapes."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest

from statex_bi.demo.growth import CAMPAIGN_CHANNEL, CHANNEL_NAMES, CHANNELS, campaign_week, simulate_growth
from statex_bi.demo.world import WorldConfig

SIX_WEEKS = WorldConfig(date(2026, 3, 2), date(2026, 4, 12), seed=11)


@pytest.fixture(scope="module")
def growth():
    return simulate_growth(SIX_WEEKS)


@pytest.fixture(scope="module")
def year():
    return simulate_growth(WorldConfig(date(2025, 6, 2), date(2026, 5, 31), seed=3))


def test_same_config_same_data_and_another_seed_other_data(growth):
    again = simulate_growth(SIX_WEEKS)
    assert again == growth
    other = simulate_growth(WorldConfig(SIX_WEEKS.start, SIX_WEEKS.end, seed=12))
    assert other.traffic != growth.traffic


def test_rows_have_the_raw_ga4_columns(growth):
    assert set(growth.traffic[0]) == {"date", "channel", "sessions", "active_users", "screen_page_views",
                                      "average_session_duration", "engaged_sessions"}
    assert set(growth.key_events[0]) == {"date", "channel", "event_name", "event_count", "key_events"}
    assert set(growth.daily_users[0]) == {"date", "active_users", "sessions"}


def test_traffic_is_consistent_per_day_and_channel(growth):
    keys = [(r["date"], r["channel"]) for r in growth.traffic]
    assert len(keys) == len(set(keys))
    assert {r["channel"] for r in growth.traffic} == set(CHANNEL_NAMES)
    assert {r["date"] for r in growth.traffic} == set(SIX_WEEKS.days())
    for row in growth.traffic:
        assert 0 < row["active_users"] <= row["sessions"]
        assert row["engaged_sessions"] <= row["sessions"] <= row["screen_page_views"]
        assert 10 < row["average_session_duration"] < 600


def test_daily_users_are_deduplicated_across_channels(growth):
    by_day_users, by_day_sessions = Counter(), Counter()
    for row in growth.traffic:
        by_day_users[row["date"]] += row["active_users"]
        by_day_sessions[row["date"]] += row["sessions"]
    assert [r["date"] for r in growth.daily_users] == SIX_WEEKS.days()
    for row in growth.daily_users:
        assert row["sessions"] == by_day_sessions[row["date"]]
        assert row["active_users"] < by_day_users[row["date"]]
        assert row["active_users"] <= row["sessions"]


def test_one_customer_per_sign_up_session_and_one_prototype_request_per_session_with_the_event(growth):
    sign_ups = Counter()
    prototypes = Counter()
    for row in growth.event_sessions:
        if row["event_name"] == "sign_up":
            sign_ups[(row["date"], row["channel"])] += row["sessions"]
        else:
            assert row["event_name"] == "prototype_request"
            prototypes[(row["date"], row["channel"])] += row["sessions"]
    assert sign_ups == Counter((c.signed_up_at.date(), c.channel) for c in growth.customers)
    assert prototypes == Counter((p.requested_at.date(), p.channel) for p in growth.prototype_requests)


def test_key_events_count_every_event_so_they_can_exceed_the_sessions_with_it(growth):
    sessions = {(r["date"], r["channel"], r["event_name"]): r["sessions"] for r in growth.event_sessions}
    assert set(sessions) == {(r["date"], r["channel"], r["event_name"]) for r in growth.key_events}
    for row in growth.key_events:
        assert row["event_count"] == row["key_events"] >= sessions[(row["date"], row["channel"], row["event_name"])]
    repeated = [r for r in growth.key_events if r["key_events"] > sessions[(r["date"], r["channel"], r["event_name"])]]
    assert repeated and {r["event_name"] for r in repeated} == {"prototype_request"}


def test_prototype_requests_come_from_people_who_had_signed_up(growth):
    customers = {c.customer_key: c for c in growth.customers}
    assert len(customers) == len(growth.customers)
    assert len({p.prototype_id for p in growth.prototype_requests}) == len(growth.prototype_requests)
    for request in growth.prototype_requests:
        assert customers[request.customer_key].signed_up_at <= request.requested_at
    # Most requests come on the day of the sign-up, some from returning customers.
    same_day = sum(customers[p.customer_key].signed_up_at.date() == p.requested_at.date()
                   for p in growth.prototype_requests)
    assert 0.5 < same_day / len(growth.prototype_requests) < 0.9


def test_customers_look_real(growth):
    for customer in growth.customers:
        assert customer.email.count("@") == 1 and customer.email.isascii()
        assert len(customer.name.split()) >= 2
        assert customer.channel in CHANNEL_NAMES
        assert len(customer.country) == 2 and customer.country.isupper()
        assert SIX_WEEKS.start <= customer.signed_up_at.date() <= SIX_WEEKS.end


def test_rates_are_realistic(year):
    sessions = sum(r["sessions"] for r in year.traffic)
    sign_ups = len(year.customers)
    assert 0.02 <= sign_ups / sessions <= 0.04
    assert 0.25 <= len(year.prototype_requests) / sign_ups <= 0.40
    daily = [r["sessions"] for r in year.daily_users]
    assert 300 <= sum(daily) / len(daily) <= 800


def test_weekdays_are_busier_and_traffic_grows(year):
    by_weekday = defaultdict(list)
    for row in year.daily_users:
        by_weekday[row["date"].weekday() < 5].append(row["sessions"])
    assert sum(by_weekday[True]) / len(by_weekday[True]) > 1.2 * sum(by_weekday[False]) / len(by_weekday[False])
    campaign = campaign_week(WorldConfig(date(2025, 6, 2), date(2026, 5, 31), seed=3))
    assert campaign is not None and campaign[0] >= date(2026, 5, 2)  # the planted flood: not the trend

    def per_day(rows: list[dict]) -> float:
        return sum(r["sessions"] for r in rows) / len(rows)

    first = per_day([r for r in year.daily_users if r["date"] < date(2025, 7, 1)])
    last = per_day([r for r in year.daily_users if r["date"] >= date(2026, 5, 2)
                    and not campaign[0] <= r["date"] <= campaign[1]])
    growth_per_month = (last / first) ** (1 / 11) - 1
    assert 0.03 <= growth_per_month <= 0.06


def test_the_campaign_week_floods_one_low_converting_channel_and_no_channel_converts_differently(year):
    campaign = campaign_week(WorldConfig(date(2025, 6, 2), date(2026, 5, 31), seed=3))
    before = (campaign[0] - timedelta(days=7), campaign[1] - timedelta(days=7))

    def sessions(channel: str, week: tuple[date, date]) -> int:
        return sum(r["sessions"] for r in year.traffic if r["channel"] == channel and week[0] <= r["date"] <= week[1])

    others = [c for c in CHANNEL_NAMES if c != CAMPAIGN_CHANNEL]
    assert sessions(CAMPAIGN_CHANNEL, campaign) > 5 * sessions(CAMPAIGN_CHANNEL, before)
    assert all(0.6 < sessions(c, campaign) / sessions(c, before) < 1.6 for c in others)
    # the flooded channel is the one that converts worst: the mix alone lowers overall conversion
    assert min(CHANNELS, key=lambda c: c.sign_up_rate * c.prototype_rate).name == CAMPAIGN_CHANNEL
    sign_ups = sum(r["sessions"] for r in year.event_sessions if r["channel"] == CAMPAIGN_CHANNEL
                   and r["event_name"] == "sign_up" and campaign[0] <= r["date"] <= campaign[1])
    assert sign_ups / sessions(CAMPAIGN_CHANNEL, campaign) == pytest.approx(
        next(c.sign_up_rate for c in CHANNELS if c.name == CAMPAIGN_CHANNEL), abs=0.008)


def test_scale_multiplies_traffic():
    small = WorldConfig(SIX_WEEKS.start, SIX_WEEKS.start + timedelta(days=27), seed=5, scale=0.25)
    large = WorldConfig(small.start, small.end, seed=5, scale=1.0)
    ratio = sum(r["sessions"] for r in simulate_growth(large).traffic) / sum(
        r["sessions"] for r in simulate_growth(small).traffic)
    assert 3.4 < ratio < 4.6
