"""Small-sample statistics for conversion rates, in plain Python (statsmodels is a dev dependency only).

- `wilson_interval`: the Wilson score interval of a proportion, as
  `statsmodels.stats.proportion.proportion_confint(count, nobs, method="wilson")`.
- `two_proportion_ztest`: the pooled two-sided z test of two proportions, as
  `statsmodels.stats.proportion.proportions_ztest([x1, x2], [n1, n2])`.

Undefined cases return NaN, as statsmodels does: an interval with no trials, a test with an empty
group or with both groups at 0 % (or both at 100 %), where the pooled variance is zero.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()


def z_critical(confidence: float = 0.95) -> float:
    """The two-sided standard normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return _NORMAL.inv_cdf(1 - (1 - confidence) / 2)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of `successes` out of `trials`.

    Args:
        successes: 0 <= successes <= trials.
        trials: number of trials; 0 gives (NaN, NaN).
        confidence: e.g. 0.95.

    Returns:
        (low, high) as fractions within [0, 1].
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return math.nan, math.nan
    z = z_critical(confidence)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(p * (1 - p) / trials + z2n / (4 * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_ztest(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> tuple[float, float]:
    """Two-sided z test that two proportions are equal, with the pooled proportion's variance.

    Args:
        successes_a, trials_a: the first group (e.g. this period).
        successes_b, trials_b: the second group (e.g. the previous period).

    Returns:
        (z, p_value); z > 0 when the first proportion is the larger. NaN when undefined.
    """
    if trials_a <= 0 or trials_b <= 0:
        return math.nan, math.nan
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return math.nan, math.nan
    z = (successes_a / trials_a - successes_b / trials_b) / math.sqrt(variance)
    return z, math.erfc(abs(z) / math.sqrt(2))
