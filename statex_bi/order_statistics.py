"""The distribution-free (order-statistic) confidence interval of a quantile from n observations.

[x_(l), x_(u)] with l, u from binomial(n, q) quantiles (scipy), and the quantile levels to read off a
coarser set of levels so that the interval only widens. A base module: the Sentry connector picks the
levels when it loads, the web report flags the samples too small to bound a p95.
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy import stats


def quantile_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """The 1-based ranks (l, u) of the order statistics bounding the `q` quantile of `n` observations.

    P(x_(l) <= quantile <= x_(u)) = B(u - 1) - B(l - 1) >= `confidence` (B: the binomial(n, q) CDF), for any
    continuous distribution: l = B^-1(a / 2), u = B^-1(1 - a / 2) + 1. None for a side no order statistic
    reaches at that confidence (l < 1, or u > n: e.g. fewer than 72 observations bound a p95 from above).
    """
    tail = (1 - confidence) / 2
    low = int(stats.binom.ppf(tail, n, q)) if n else 0
    high = int(stats.binom.ppf(1 - tail, n, q)) + 1 if n else 1
    return (low if low >= 1 else None), (high if high <= n else None)


def bracketing_levels(n: int, q: float, levels: Sequence[float],
                      confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Of `levels` (quantile levels in [0, 1]), the highest at or below the lower order statistic's and the
    lowest at or above the upper one's, for `n` observations (None where no order statistic bounds a side).

    The k-th of n order statistics is the empirical quantile at level (k - 1) / (n - 1) under linear
    interpolation (numpy's default, Hyndman-Fan type 7); as quantiles grow with their level, the values at
    the returned levels bound [x_(l), x_(u)] from outside: a confidence interval at least as wide.
    """
    lower, upper = quantile_ranks(n, q, confidence)
    if n < 2:
        return None, None
    low = max((v for v in levels if v <= (lower - 1) / (n - 1)), default=None) if lower else None
    high = min((v for v in levels if v >= (upper - 1) / (n - 1)), default=None) if upper else None
    return low, high
