"""Statistics of rates for verdicts and alerts, on statsmodels and scipy (no hand-written copies).

- `wilson_interval`: the Wilson score interval of a proportion (`proportion_confint(method="wilson")`).
- `exceedance`: an exact one-sided binomial test that a rate is above (or below) a limit, with the
  matching exact (Clopper-Pearson) one-sided confidence bound: the bound clears the limit exactly
  when the p-value is below 1 - confidence.
- `rate_change`: two periods' rates compared by the score test (`test_proportions_2indep`), or by
  Fisher's exact test when an expected cell count is below 5; the score statistic is divided by the
  square root of an over-dispersion factor.
- `rate_dispersion`: that factor, from daily counts by a quasi-binomial GLM (Pearson chi-square over
  residual degrees of freedom, never below 1): sessions are not independent trials, so daily rates
  scatter more than a binomial allows, and a plain test fires on noise.
- `false_discovery`: Benjamini-Hochberg adjusted p-values across the subjects of one rule.

The order-statistic interval of a quantile is in `statex_bi.order_statistics` (the Sentry connector reads
its levels at load time).

Undefined cases return NaN: an interval with no trials, a test with an empty group or with both groups
at 0 % (or both at 100 %).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.genmod.families import Binomial
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, test_proportions_2indep
from statsmodels.tools.tools import add_constant  # the modules themselves: statsmodels.api imports all of it

ALTERNATIVES = ("two-sided", "smaller", "larger")
# Below this expected count in any cell of the 2x2 table the normal approximation is poor: exact test.
MIN_EXPECTED_COUNT = 5


def _check(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of `successes` out of `trials` ((NaN, NaN) without trials)."""
    _check(successes, trials)
    if trials == 0:
        return math.nan, math.nan
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    return max(0.0, float(low)), min(1.0, float(high))


@dataclass(frozen=True)
class Exceedance:
    """An exact one-sided test of a rate against a limit."""

    p_value: float
    bound: float  # the one-sided exact confidence bound on the rate's side of the limit
    direction: str  # "above" or "below"


def exceedance(successes: int, trials: int, limit: float, direction: str = "above",
               confidence: float = 0.95) -> Exceedance:
    """Whether `successes` of `trials` show a rate above (or below) `limit`: exact binomial test.

    Returns:
        The one-sided p-value and the one-sided exact lower bound (direction "above") or upper bound
        ("below") at `confidence`; NaN without trials.
    """
    _check(successes, trials)
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    if trials == 0:
        return Exceedance(math.nan, math.nan, direction)
    limit = min(max(limit, 0.0), 1.0)
    test = stats.binomtest(successes, trials, limit, alternative="greater" if direction == "above" else "less")
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    return Exceedance(float(test.pvalue), float(ci.low if direction == "above" else ci.high), direction)


@dataclass(frozen=True)
class RateChange:
    """Two rates compared: the first (this period) against the second (the previous one)."""

    difference: float  # rate1 - rate0
    statistic: float  # score z, divided by sqrt(dispersion)
    p_value: float
    method: str
    dispersion: float


def rate_change(x1: int, n1: int, x0: int, n0: int, *, dispersion: float = 1.0,
                alternative: str = "two-sided") -> RateChange:
    """Test whether x1/n1 differs from x0/n0 ("smaller": is below it, "larger": above it).

    Args:
        x1, n1: this period's events and trials.
        x0, n0: the previous period's.
        dispersion: the over-dispersion factor (>= 1) of the trials (`rate_dispersion`).
        alternative: "two-sided", "smaller" or "larger".

    Returns:
        A RateChange; NaN statistic and p-value when undefined.
    """
    _check(x1, n1)
    _check(x0, n0)
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    dispersion = max(1.0, float(dispersion)) if math.isfinite(dispersion) else 1.0
    if n1 == 0 or n0 == 0 or x1 + x0 in (0, n1 + n0):
        return RateChange(math.nan, math.nan, math.nan, "undefined", dispersion)
    difference = x1 / n1 - x0 / n0
    pooled = (x1 + x0) / (n1 + n0)
    expected = min(n * share for n in (n1, n0) for share in (pooled, 1 - pooled))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        score = test_proportions_2indep(x1, n1, x0, n0, method="score", compare="diff", alternative="two-sided")
    z = float(score.statistic) / math.sqrt(dispersion)
    if expected < MIN_EXPECTED_COUNT:
        side = {"two-sided": "two-sided", "smaller": "less", "larger": "greater"}[alternative]
        p_value = float(stats.fisher_exact([[x1, n1 - x1], [x0, n0 - x0]], alternative=side).pvalue)
        return RateChange(difference, z, p_value, "Fisher's exact test", dispersion)
    p_value = {"two-sided": 2 * stats.norm.sf(abs(z)), "smaller": stats.norm.cdf(z), "larger": stats.norm.sf(z)}
    method = "score test" + (f" (over-dispersion {dispersion:.2f})" if dispersion > 1 else "")
    return RateChange(difference, z, float(p_value[alternative]), method, dispersion)


def rate_dispersion(successes: Sequence[int], trials: Sequence[int], design: Sequence[Sequence[float]]) -> float:
    """The over-dispersion factor of daily counts: quasi-binomial GLM scale, at least 1.

    Args:
        successes, trials: one entry per day.
        design: one row of explanatory values per day (e.g. a period indicator and weekday dummies,
            without the intercept, which is added).

    Returns:
        Pearson chi-square / residual degrees of freedom of the binomial GLM (weights = trials), or 1
        when there are fewer than 3 residual degrees of freedom or the fit is degenerate.
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    keep = n > 0
    exog = add_constant(np.asarray(design, dtype=float)[keep], has_constant="add")
    x, n = x[keep], n[keep]
    if len(n) - np.linalg.matrix_rank(exog) < 3 or x.sum() in (0, n.sum()):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # var_weights, not a (successes, failures) pair: only this form gives scale = chi2 / df (statsmodels 0.15)
        fit = GLM(x / n, exog, family=Binomial(), var_weights=n).fit(scale="X2")
    scale = float(fit.scale)
    return max(1.0, scale) if math.isfinite(scale) else 1.0


def false_discovery(p_values: Sequence[float], alpha: float) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN): reject where adjusted < alpha."""
    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(values), math.nan)
    finite = np.isfinite(values)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], alpha=alpha, method="fdr_bh")[1]
    return [float(v) for v in adjusted]
