"""The decomposition of a KPI's change: exact sums on random data, the planted segment named as top driver."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from statex_bi.kpis import drivers

CHANNELS = ["Organic Search", "Direct", "Paid Search", "Referral", "Organic Social", "Email"]


def _ratio_segments(rng: np.random.Generator, count: int) -> pd.DataFrame:
    n0 = rng.integers(0, 5000, count).astype(float)
    n1 = rng.integers(0, 5000, count).astype(float)
    n0[0], n1[-1] = 0.0, 0.0  # one segment new this period, one gone
    return pd.DataFrame({
        "segment": [f"s{i}" for i in range(count)],
        "numerator_before": np.floor(n0 * rng.uniform(0, 0.2, count)), "denominator_before": n0,
        "numerator_after": np.floor(n1 * rng.uniform(0, 0.2, count)), "denominator_after": n1,
    })


@pytest.mark.parametrize("seed", range(25))
def test_shift_share_sums_exactly_to_the_change_on_random_data(seed):
    rng = np.random.default_rng(seed)
    segments = _ratio_segments(rng, int(rng.integers(2, 12)))
    result = drivers.shift_share(segments)
    truth_before = segments["numerator_before"].sum() / segments["denominator_before"].sum()
    truth_after = segments["numerator_after"].sum() / segments["denominator_after"].sum()
    assert result.before == pytest.approx(truth_before, abs=1e-12)
    assert result.after == pytest.approx(truth_after, abs=1e-12)
    assert abs(result.table["contribution"].sum() - (truth_after - truth_before)) < 1e-9
    assert abs(result.components["mix"] + result.components["rate"] - (truth_after - truth_before)) < 1e-9
    assert abs((result.table["mix"] + result.table["rate"] - result.table["contribution"]).abs().max()) < 1e-12


@pytest.mark.parametrize("seed", range(10))
def test_contributions_sum_exactly_with_a_common_divisor(seed):
    rng = np.random.default_rng(100 + seed)
    count = int(rng.integers(1, 9))
    segments = pd.DataFrame({"segment": [f"m{i}" for i in range(count)],
                             "before": rng.uniform(0, 50, count), "after": rng.uniform(0, 50, count)})
    d0, d1 = float(rng.integers(1, 40)), float(rng.integers(1, 40))
    result = drivers.contributions(segments, d0, d1)
    change = segments["after"].sum() / d1 - segments["before"].sum() / d0
    assert abs(result.table["contribution"].sum() - change) < 1e-9
    assert abs(result.change - change) < 1e-9


def _channels(rates_after: dict[str, float] | None = None, sessions_after: dict[str, float] | None = None):
    sessions = dict(zip(CHANNELS, [3800, 2400, 1400, 900, 1000, 500], strict=True))
    rates = dict(zip(CHANNELS, [0.0095, 0.0136, 0.0067, 0.0137, 0.0050, 0.0144], strict=True))
    after_sessions = {**sessions, **(sessions_after or {})}
    after_rates = {**rates, **(rates_after or {})}
    return pd.DataFrame({
        "segment": CHANNELS,
        "numerator_before": [sessions[c] * rates[c] for c in CHANNELS],
        "denominator_before": [sessions[c] for c in CHANNELS],
        "numerator_after": [after_sessions[c] * after_rates[c] for c in CHANNELS],
        "denominator_after": [after_sessions[c] for c in CHANNELS],
    })


def test_a_rate_planted_in_one_segment_is_named_as_a_rate_change():
    result = drivers.shift_share(_channels(rates_after={"Direct": 0.002}))
    top = drivers.top_driver(result)
    assert top["segment"] == "Direct"
    assert abs(top["rate"]) > abs(top["mix"])
    text = drivers.sentence(result, "Prototype-request conversion", "fraction", "sessions")
    assert text.startswith("Prototype-request conversion fell ")
    assert "Direct explains" in text and "its rate fell from 1.4% to 0.20%" in text


def test_a_flood_of_sessions_in_a_low_converting_channel_is_named_as_a_mix_change():
    result = drivers.shift_share(_channels(sessions_after={"Organic Social": 9000}))
    top = drivers.top_driver(result)
    assert top["segment"] == "Organic Social"
    assert result.change < 0 and abs(result.components["mix"]) > abs(result.components["rate"])
    assert abs(result.components["rate"]) < 1e-12  # no channel's own rate moved
    assert "its share of sessions rose" in drivers.sentence(result, "Conversion", "fraction", "sessions")


def test_contributions_name_the_segment_that_grew():
    segments = pd.DataFrame({"segment": ["gpt-4o-mini", "gpt-4o", "llama3"], "before": [1.0, 0.2, 0.0],
                             "after": [1.1, 3.0, 0.0]})
    result = drivers.contributions(segments, 20, 22)
    assert drivers.top_driver(result)["segment"] == "gpt-4o"
    assert "gpt-4o explains" in drivers.sentence(result, "AI cost per prototype", "USD")


def test_no_denominator_gives_no_decomposition():
    segments = _channels()
    segments["denominator_before"] = 0.0
    assert drivers.shift_share(segments) is None
    assert drivers.contributions(pd.DataFrame({"segment": ["a"], "before": [1.0], "after": [2.0]}), 0, 1) is None


def _routes(p95_after: dict[str, float] | None = None, requests_after: dict[str, float] | None = None):
    routes = {"GET /a": (5000, 20.0, 40.0), "POST /b": (1000, 60.0, 90.0), "GET /c": (500, 100.0, 300.0)}
    rows = []
    for route, (requests, p50, p95) in routes.items():
        after = (p95_after or {}).get(route, p95)
        (mu0,), (sd0,) = drivers.lognormal_from_p50_p95([p50], [p95])
        (mu1,), (sd1,) = drivers.lognormal_from_p50_p95([p50], [after])
        rows.append({"segment": route, "weight_before": requests, "value_before": p95, "mu_before": mu0,
                     "sigma_before": sd0, "weight_after": (requests_after or {}).get(route, requests),
                     "value_after": after, "mu_after": mu1, "sigma_after": sd1})
    return pd.DataFrame(rows)


def _p95(segments: pd.DataFrame, side: str) -> float:
    return drivers.mixture_quantile(segments[f"weight_{side}"], segments[f"mu_{side}"], segments[f"sigma_{side}"])


def test_percentile_counterfactual_names_the_regressed_route_and_does_not_claim_exactness():
    segments = _routes(p95_after={"POST /b": 400.0})
    before, after = _p95(segments, "before"), _p95(segments, "after")
    result = drivers.percentile_counterfactual(segments, before, after)
    assert not result.exact
    assert drivers.top_driver(result)["segment"] == "POST /b"
    assert abs(result.components["mix"]) < 1e-6  # the mix did not move
    assert sum(result.components[k] for k in ("mix", "segments", "unexplained")) == pytest.approx(after - before)
    assert "its own p95 went from 90 ms to 400 ms" in drivers.sentence(result, "API p95", "ms")
    assert "does not split exactly" in drivers.sentence(result, "API p95", "ms")


def test_percentile_counterfactual_with_last_periods_mix_undoes_a_mix_shift():
    segments = _routes(requests_after={"GET /c": 5000})
    before, after = _p95(segments, "before"), _p95(segments, "after")
    result = drivers.percentile_counterfactual(segments, before, after)
    assert after > before
    assert result.components["counterfactual"] == pytest.approx(before, rel=1e-9)
    assert result.components["mix"] == pytest.approx(after - before, rel=1e-9)


def test_a_lognormal_through_a_p75_and_the_share_under_a_threshold_gives_both_back():
    (mu,), (sigma,) = drivers.lognormal_from_share_below([2600.0], 0.75, [2500.0], [0.7])
    normal = NormalDist(mu, sigma)
    assert normal.cdf(math.log(2600.0)) == pytest.approx(0.75)
    assert normal.cdf(math.log(2500.0)) == pytest.approx(0.7)
    # contradicting numbers (a p75 over the threshold with more than 75% under it) pin no spread
    assert drivers.lognormal_from_share_below([2600.0], 0.75, [2500.0], [0.9])[1][0] == drivers.FALLBACK_SIGMA


def test_waterfall_steps_walk_from_the_previous_value_to_this_one():
    result = drivers.shift_share(_channels(rates_after={"Direct": 0.002}, sessions_after={"Email": 100}))
    steps = drivers.waterfall_steps(result, "fraction")
    assert steps["step"].iloc[0] == "Previous period" and steps["step"].iloc[-1] == "This period"
    assert steps["end"].iloc[-2] == pytest.approx(result.after * 100, abs=1e-9)
    assert "1 other" in set(steps["step"])  # six channels: five bars and the rest summed
