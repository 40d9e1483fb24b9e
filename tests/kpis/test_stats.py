"""The plain-Python Wilson interval and z test agree with statsmodels (a dev dependency only)."""

from __future__ import annotations

import math
import warnings

import pytest
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from statex_bi.kpis.stats import two_proportion_ztest, wilson_interval, z_critical

WILSON_CASES = [(0, 10), (10, 10), (1, 1), (0, 1), (3, 7), (31, 1000), (499, 1000), (15, 1460), (1, 250_000)]


@pytest.mark.parametrize(("successes", "trials"), WILSON_CASES, ids=[f"{k}of{n}" for k, n in WILSON_CASES])
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_wilson_interval_matches_statsmodels(successes, trials, confidence):
    expected = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")

    assert wilson_interval(successes, trials, confidence) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_wilson_interval_without_trials_is_undefined_like_statsmodels():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = proportion_confint(0, 0, method="wilson")

    low, high = wilson_interval(0, 0)

    assert all(math.isnan(v) for v in expected)
    assert math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize(("successes", "trials"), [(-1, 5), (6, 5), (1, -1)])
def test_wilson_interval_rejects_impossible_counts(successes, trials):
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(successes, trials)


ZTEST_CASES = [
    (31, 1000, 20, 900),
    (15, 1460, 7, 1200),
    (0, 100, 5, 100),
    (5, 100, 0, 100),
    (100, 100, 99, 100),
    (1, 3, 2, 3),
    (400, 1000, 300, 1000),
]


ZTEST_IDS = [f"{a}of{b}-vs-{c}of{d}" for a, b, c, d in ZTEST_CASES]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), ZTEST_CASES, ids=ZTEST_IDS)
def test_two_proportion_ztest_matches_statsmodels(x1, n1, x2, n2):
    z_expected, p_expected = proportions_ztest([x1, x2], [n1, n2])

    z, p = two_proportion_ztest(x1, n1, x2, n2)

    assert z == pytest.approx(float(z_expected), rel=1e-10)
    assert p == pytest.approx(float(p_expected), rel=1e-9)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(0, 100, 0, 100), (100, 100, 50, 50), (0, 0, 5, 100), (3, 10, 0, 0)],
    ids=["both-zero", "both-all", "first-empty", "second-empty"],
)
def test_two_proportion_ztest_is_undefined_where_statsmodels_is(x1, n1, x2, n2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, p_expected = proportions_ztest([x1, x2], [n1, n2])

    z, p = two_proportion_ztest(x1, n1, x2, n2)

    assert math.isnan(float(p_expected))
    assert math.isnan(z) and math.isnan(p)


def test_z_critical_is_the_two_sided_normal_quantile():
    assert z_critical(0.95) == pytest.approx(1.959963984540054, rel=1e-12)
    with pytest.raises(ValueError):
        z_critical(1.0)
