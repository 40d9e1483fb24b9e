"""The rate statistics behind verdicts and alerts: exact bounds, score/exact change tests, over-dispersion, FDR."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import beta
from statsmodels.stats.proportion import proportion_confint

from statex_bi.kpis.stats import exceedance, false_discovery, rate_change, rate_dispersion, wilson_interval

WILSON_CASES = [(0, 10), (10, 10), (1, 1), (3, 7), (31, 1000), (15, 1460), (1, 250_000)]


@pytest.mark.parametrize(("successes", "trials"), WILSON_CASES, ids=[f"{k}of{n}" for k, n in WILSON_CASES])
def test_wilson_interval_is_statsmodels_within_zero_and_one(successes, trials):
    expected = proportion_confint(successes, trials, alpha=0.1, method="wilson")

    low, high = wilson_interval(successes, trials, 0.9)

    assert (low, high) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_wilson_interval_without_trials_is_undefined_and_impossible_counts_are_refused():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    for successes, trials in [(-1, 5), (6, 5), (1, -1)]:
        with pytest.raises(ValueError, match="successes <= trials"):
            wilson_interval(successes, trials)


@pytest.mark.parametrize(("failed", "attempts"), [(1, 2), (2, 14), (3, 10), (9, 40), (30, 100), (0, 50)])
def test_the_exact_lower_bound_clears_the_limit_exactly_when_the_test_rejects(failed, attempts):
    limit, confidence = 0.10, 0.95
    result = exceedance(failed, attempts, limit, "above", confidence)
    # Clopper-Pearson one-sided lower bound: the alpha quantile of Beta(k, n - k + 1)
    expected_bound = 0.0 if failed == 0 else beta.ppf(1 - confidence, failed, attempts - failed + 1)
    assert result.bound == pytest.approx(expected_bound, rel=1e-9, abs=1e-12)
    assert (result.bound > limit) is (result.p_value < 1 - confidence)


def test_one_failure_in_two_attempts_is_no_evidence_of_a_ten_percent_failure_rate():
    """The audit: HIGH alerts opened for 1 failure in 2 attempts (Wilson 9-91 %) and 2 of 14."""
    assert exceedance(1, 2, 0.10).p_value > 0.05
    assert exceedance(2, 14, 0.10).p_value > 0.05
    assert exceedance(40, 200, 0.10).p_value < 0.001
    upper = exceedance(0, 60, 0.10, "below")
    assert upper.bound < 0.10 and upper.p_value < 0.05


def test_rate_change_reproduces_the_audited_drop_with_a_one_sided_score_test():
    drop = rate_change(19, 4761, 49, 4785, alternative="smaller")
    assert drop.method == "score test" and drop.difference < 0
    assert drop.p_value == pytest.approx(0.00014, abs=0.00002)  # half the growth page's two-sided 0.00028
    assert rate_change(19, 4761, 49, 4785).p_value == pytest.approx(2 * drop.p_value)
    assert rate_change(19, 4761, 49, 4785, alternative="larger").p_value > 0.99


def test_over_dispersion_widens_the_change_test():
    plain = rate_change(19, 4761, 49, 4785, alternative="smaller")
    wide = rate_change(19, 4761, 49, 4785, alternative="smaller", dispersion=4.0)
    assert wide.statistic == pytest.approx(plain.statistic / 2)
    assert wide.p_value > 100 * plain.p_value and "over-dispersion 4.00" in wide.method
    assert rate_change(19, 4761, 49, 4785, dispersion=0.5).p_value == pytest.approx(plain.p_value * 2)


def test_small_counts_use_fishers_exact_test():
    from scipy.stats import fisher_exact

    small = rate_change(1, 20, 6, 20, alternative="smaller")
    assert small.method == "Fisher's exact test"
    assert small.p_value == pytest.approx(fisher_exact([[1, 19], [6, 14]], alternative="less").pvalue)


@pytest.mark.parametrize(("x1", "n1", "x0", "n0"), [(0, 100, 0, 100), (50, 50, 100, 100), (0, 0, 5, 100)])
def test_rate_change_is_undefined_without_variation_or_trials(x1, n1, x0, n0):
    result = rate_change(x1, n1, x0, n0)
    assert math.isnan(result.p_value) and result.method == "undefined"


def _weeks(rng: np.random.Generator, rates: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    n = rng.integers(300, 500, len(rates))
    x = rng.binomial(n, rates)
    design = [[float(i >= 7)] + [float(i % 7 == w) for w in range(1, 7)] for i in range(len(rates))]
    return x, n, design


def test_dispersion_is_the_quasi_binomial_scale_and_about_one_for_binomial_days():
    rng = np.random.default_rng(7)
    scattered = 0.02 * rng.lognormal(0.0, 0.5, 28)
    x, n, design = _weeks(rng, scattered)
    factor = rate_dispersion(x, n, design)
    # Pearson chi-square over residual degrees of freedom, by hand from the same fit's means
    import statsmodels.api as sm

    exog = sm.add_constant(np.asarray(design))
    mu = sm.GLM(x / n, exog, family=sm.families.Binomial(), var_weights=n).fit().mu
    by_hand = float(np.sum(n * (x / n - mu) ** 2 / (mu * (1 - mu))) / (len(n) - exog.shape[1]))
    assert factor == pytest.approx(by_hand, rel=1e-6) and factor > 1.5
    binomial = [rate_dispersion(*_weeks(rng, np.full(28, 0.02))) for _ in range(20)]
    assert 0.9 <= float(np.median(binomial)) <= 1.3 and min(binomial) >= 1.0


def test_dispersion_needs_residual_degrees_of_freedom():
    assert rate_dispersion([1, 5], [100, 100], [[0.0], [1.0]]) == 1.0


def test_false_discovery_is_benjamini_hochberg_and_keeps_missing_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adjusted = false_discovery([0.01, 0.04, math.nan, 0.03, 0.5], alpha=0.05)
    # BH by hand over the four finite values: sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.0533, 0.0533, 0.5
    assert adjusted[0] == pytest.approx(0.04) and adjusted[1] == pytest.approx(0.04 * 4 / 3)
    assert adjusted[3] == pytest.approx(0.04 * 4 / 3) and adjusted[4] == pytest.approx(0.5)
    assert math.isnan(adjusted[2])
