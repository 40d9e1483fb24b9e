"""Why a headline KPI moved: its change since the previous period split over one dimension.

Pure functions on small frames (one row per segment: channel, tier, model, provider, route); the
segments come from SQL (statex_bi.kpis.changes), the arithmetic is here.

- `shift_share`: ratio KPIs (rate R = Σ numerator / Σ denominator, e.g. conversion per session).
  Kitagawa's symmetric decomposition, with w a segment's share of the denominator and r its rate:

      mix_i  = (w1_i − w0_i) · ((r0_i + r1_i) / 2 − R̄)   the segment's weight moved
      rate_i = (r1_i − r0_i) · (w0_i + w1_i) / 2          the segment's own rate moved

  Σ (mix_i + rate_i) = Σ w1 r1 − Σ w0 r0 = R1 − R0 exactly: no interaction term is left over. The
  weights' changes sum to 0, so measuring rates from the overall R̄ = (R0 + R1) / 2 leaves the mix
  total as it is and puts a mix change where it happened: a flood of sessions into a channel that
  converts below average is that channel's (negative) mix, not every other channel's lost share. A
  segment with no denominator in one period takes the other period's rate there (its rate term is 0,
  its whole contribution is mix).
- `contributions`: additive KPIs (a total over segments, optionally divided by a common count, such
  as AI cost per prototype = Σ model costs / prototypes): each segment's change; they sum exactly.
- `percentile_counterfactual`: a percentile (p95, p75) does not decompose exactly. Each segment's
  distribution is approximated as log-normal (through its p50 and p95, or its p75 and the share of its
  samples under a threshold); the percentile of the weighted mixture with last period's mix and this
  period's segments gives the counterfactual "p95 with last period's mix". The change splits into
  mix, the segments' own values, and what the approximation leaves unexplained, shown as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import pandas as pd

from statex_bi import formatting

SHIFT_SHARE, CONTRIBUTIONS, PERCENTILE = "shift-share", "contributions", "percentile"
# The tags statex_bi.kpis.changes adds to a published KPI row: its value over the previous period, and
# the change's top driver in words (which the executive summary and the alert messages quote).
PREVIOUS_TAG, DRIVER_TAG = "previous_value", "driver"
_Z95 = NormalDist().inv_cdf(0.95)
WATERFALL_SEGMENTS = 5  # segments shown as their own bar; the rest are summed into one
FALLBACK_SIGMA = 0.5  # a log-normal's spread where a segment's numbers do not pin one


@dataclass(frozen=True)
class Decomposition:
    """A KPI's change split over the segments of one dimension.

    Attributes:
        kind: shift-share, contributions or percentile.
        before, after: the KPI in the previous period and in this one.
        table: one row per segment, the largest contribution (in absolute value) first; always the
            columns segment, contribution, share_of_change, plus per kind: weight/rate before and after,
            mix and rate (shift-share); before and after (contributions); requests share and p95
            before and after, impact (percentile).
        components: the change by cause, summing to after − before (shift-share: mix, rate;
            percentile: mix, segments, unexplained); empty for contributions.
        exact: whether the contributions sum to the change exactly (False for percentiles).
    """

    kind: str
    before: float
    after: float
    table: pd.DataFrame
    components: dict[str, float] = field(default_factory=dict)
    exact: bool = True
    quantile: str = ""  # a percentile's name for people ("p95", "p75")

    @property
    def change(self) -> float:
        return self.after - self.before


def shift_share(segments: pd.DataFrame) -> Decomposition | None:
    """Kitagawa decomposition of a ratio's change into mix and rate, per segment.

    Args:
        segments: segment, numerator_before, denominator_before, numerator_after, denominator_after
            (a segment missing in a period has 0 there).

    Returns:
        The decomposition, or None when either period has no denominator at all (no rate to compare).
    """
    frame = segments.fillna({c: 0.0 for c in segments.columns if c != "segment"}).copy()
    n0, n1 = frame["denominator_before"].astype(float), frame["denominator_after"].astype(float)
    if n0.sum() <= 0 or n1.sum() <= 0:
        return None
    x0, x1 = frame["numerator_before"].astype(float), frame["numerator_after"].astype(float)
    w0, w1 = n0 / n0.sum(), n1 / n1.sum()
    r0 = (x0 / n0.where(n0 > 0)).to_numpy()
    r1 = (x1 / n1.where(n1 > 0)).to_numpy()
    r0 = np.where(np.isnan(r0), r1, r0)  # a segment new this period: its rate counts as unchanged
    r1 = np.where(np.isnan(r1), r0, r1)  # a segment gone this period: likewise
    r0, r1 = np.nan_to_num(r0), np.nan_to_num(r1)
    before, after = float(x0.sum() / n0.sum()), float(x1.sum() / n1.sum())
    out = pd.DataFrame({
        "segment": frame["segment"].astype(str), "weight_before": w0, "weight_after": w1,
        "rate_before": np.where(n0 > 0, r0, np.nan), "rate_after": np.where(n1 > 0, r1, np.nan),
        "mix": (w1 - w0) * ((r0 + r1) / 2 - (before + after) / 2), "rate": (r1 - r0) * (w0 + w1) / 2,
    })
    out["contribution"] = out["mix"] + out["rate"]
    table = _ranked(out, after - before)
    return Decomposition(SHIFT_SHARE, before, after, table,
                         {"mix": float(out["mix"].sum()), "rate": float(out["rate"].sum())})


def contributions(segments: pd.DataFrame, divisor_before: float = 1.0, divisor_after: float = 1.0
                  ) -> Decomposition | None:
    """Each segment's part in the change of an additive KPI (Σ segments / divisor).

    Args:
        segments: segment, before, after (0 where a segment is missing).
        divisor_before, divisor_after: a common denominator of each period (1 for a plain total).

    Returns:
        The decomposition, or None when a divisor is 0.
    """
    if not divisor_before or not divisor_after:
        return None
    frame = segments.fillna({"before": 0.0, "after": 0.0})
    out = pd.DataFrame({"segment": frame["segment"].astype(str),
                        "before": frame["before"].astype(float) / divisor_before,
                        "after": frame["after"].astype(float) / divisor_after})
    out["contribution"] = out["after"] - out["before"]
    before, after = float(out["before"].sum()), float(out["after"].sum())
    return Decomposition(CONTRIBUTIONS, before, after, _ranked(out, after - before))


def lognormal_from_p50_p95(p50: np.ndarray, p95: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-normal (mu, sigma of the log) through a segment's median and 95th percentile."""
    p50 = np.maximum(np.asarray(p50, dtype=float), 1e-9)
    p95 = np.asarray(p95, dtype=float)
    return np.log(p50), np.maximum(np.log(np.maximum(p95, p50)) - np.log(p50), 1e-9) / _Z95


def lognormal_from_share_below(value: np.ndarray, q: float, threshold: np.ndarray, share: np.ndarray
                               ) -> tuple[np.ndarray, np.ndarray]:
    """The log-normal through a segment's q-quantile `value` and the `share` of its samples at or below
    `threshold` (Web Vitals: the p75 and the share rated good). Where the two do not pin a spread (the
    same quantile, or contradicting each other), the spread is FALLBACK_SIGMA."""
    value = np.maximum(np.asarray(value, dtype=float), 1e-9)
    z_share = np.array([NormalDist().inv_cdf(min(max(float(x), 0.01), 0.99)) for x in np.atleast_1d(share)])
    gap = NormalDist().inv_cdf(q) - z_share
    spread = (np.log(value) - np.log(np.maximum(np.asarray(threshold, dtype=float), 1e-9))) / np.where(gap, gap, 1.0)
    sigma = np.where((np.abs(gap) > 1e-6) & (spread > 1e-6), spread, FALLBACK_SIGMA)
    return np.log(value) - NormalDist().inv_cdf(q) * sigma, sigma


def mixture_quantile(weights: np.ndarray, mu: np.ndarray, sigma: np.ndarray, q: float = 0.95) -> float:
    """The q-quantile of a weighted mixture of log-normals (mu, sigma of the log), by bisection."""
    weights = np.asarray(weights, dtype=float)
    keep = weights > 0
    mu, sigma = np.asarray(mu, dtype=float)[keep], np.asarray(sigma, dtype=float)[keep]
    weights = weights[keep] / weights[keep].sum()
    normal = NormalDist()

    def cdf(x: float) -> float:
        return float(sum(w * normal.cdf((math.log(x) - m) / s) for w, m, s in zip(weights, mu, sigma, strict=True)))

    low, high = float(np.exp((mu - 10 * sigma).min())), float(np.exp((mu + 10 * sigma).max()))
    for _ in range(200):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if cdf(middle) < q else (low, middle)
        if high / low - 1 < 1e-12:
            break
    return math.sqrt(low * high)


def percentile_counterfactual(segments: pd.DataFrame, before: float, after: float, q: float = 0.95,
                              name: str = "p95") -> Decomposition | None:
    """How much of a percentile's change comes from the mix of requests (or page loads), and which
    segments' own distribution moved it.

    Args:
        segments: segment, and for each side (_before, _after): weight (requests; 0 where a segment is
            missing), value (the segment's own percentile), mu and sigma (its log-normal; see
            `lognormal_from_p50_p95`, `lognormal_from_share_below`).
        before, after: the published percentile of each period (what the change is measured on).
        q, name: the quantile (0.95) and its name for people ("p95").

    Returns:
        components mix (modelled percentile with this period's mix minus with last period's), segments
        (with last period's mix: this period's segments minus last period's) and unexplained (the actual
        change minus both); the table ranks segments by impact: how much lower (or higher) the
        counterfactual would be had that segment kept last period's distribution. None without weight
        in either period.
    """
    frame = segments.fillna({"weight_before": 0.0, "weight_after": 0.0})
    n0, n1 = frame["weight_before"].to_numpy(float), frame["weight_after"].to_numpy(float)
    if n0.sum() <= 0 or n1.sum() <= 0:
        return None
    # A segment seen in one period only keeps its distribution in the other (it moves only the mix).
    mu0 = np.where(n0 > 0, frame["mu_before"], frame["mu_after"]).astype(float)
    sd0 = np.where(n0 > 0, frame["sigma_before"], frame["sigma_after"]).astype(float)
    mu1 = np.where(n1 > 0, frame["mu_after"], frame["mu_before"]).astype(float)
    sd1 = np.where(n1 > 0, frame["sigma_after"], frame["sigma_before"]).astype(float)
    modelled_now = mixture_quantile(n1, mu1, sd1, q)
    counterfactual = mixture_quantile(n0, mu1, sd1, q)
    modelled_before = mixture_quantile(n0, mu0, sd0, q)
    impact = []
    for i in range(len(frame)):
        mu, sd = mu1.copy(), sd1.copy()
        mu[i], sd[i] = mu0[i], sd0[i]
        impact.append(counterfactual - mixture_quantile(n0, mu, sd, q))
    out = pd.DataFrame({
        "segment": frame["segment"].astype(str), "share_before": n0 / n0.sum(), "share_after": n1 / n1.sum(),
        "value_before": np.where(n0 > 0, frame["value_before"], np.nan),
        "value_after": np.where(n1 > 0, frame["value_after"], np.nan), "contribution": impact,
    })
    mix, own = modelled_now - counterfactual, counterfactual - modelled_before
    components = {"mix": mix, "segments": own, "unexplained": (after - before) - mix - own}
    table = _ranked(out, own).rename(columns={"contribution": "impact", "share_of_change": "share_of_segments"})
    return Decomposition(PERCENTILE, before, after, table, components | {"counterfactual": counterfactual},
                         exact=False, quantile=name)


def _ranked(frame: pd.DataFrame, change: float) -> pd.DataFrame:
    frame = frame.copy()
    frame["share_of_change"] = frame["contribution"] / change if change else np.nan
    order = frame["contribution"].abs().sort_values(ascending=False, kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def top_driver(decomposition: Decomposition) -> pd.Series | None:
    """The segment that moved the KPI most in the direction it moved (None when nothing moved)."""
    column = "impact" if decomposition.kind == PERCENTILE else "contribution"
    change = decomposition.components.get("segments") if decomposition.kind == PERCENTILE else decomposition.change
    if not change or decomposition.table.empty:
        return None
    along = decomposition.table[column] * math.copysign(1.0, change)
    return decomposition.table.loc[along.idxmax()] if along.max() > 0 else None


def _amount(value: float, unit: str | None) -> str:
    """The size of a change: percentage points for fractions, the unit's format otherwise (small
    durations to a tenth of a millisecond, so a change never reads "0 ms")."""
    if unit == "fraction":
        return f"{abs(value) * 100:.2f} pt"
    if unit == "ms" and abs(value) < 10:
        return f"{abs(value):.1f} ms"
    return formatting.value(abs(value), unit)


def _signed(value: float, unit: str | None) -> str:
    return ("+" if value >= 0 else formatting.MINUS) + _amount(value, unit)


def sentence(decomposition: Decomposition, label: str, unit: str | None, noun: str = "the total",
             dimension: str = "segment") -> str:
    """The change and its top driver in words.

    E.g. "Prototype-request conversion fell 0.93 pt; Paid Search explains 70%: its rate fell from
    1.4% to 0.20%." `noun` names what a segment's weight is a share of ("sessions"), `dimension` what
    a segment is ("channel").
    """
    change = decomposition.change
    verb = "rose" if change > 0 else "fell" if change < 0 else "did not change"
    text = f"{label} {verb}" + (f" {_amount(change, unit)}" if change else "")
    if decomposition.kind == SHIFT_SHARE:
        text += (f" ({dimension}s' own rates {_signed(decomposition.components['rate'], unit)}, "
                 f"mix {_signed(decomposition.components['mix'], unit)})")
    driver = top_driver(decomposition)
    if driver is None:
        return text + "."
    if decomposition.kind == PERCENTILE:
        counterfactual = decomposition.components["counterfactual"]
        return (f"{text}; with last period's mix it would be {formatting.value(counterfactual, unit)}; "
                f"{driver['segment']} moved it most: its own {decomposition.quantile} went from "
                f"{_value(driver['value_before'], unit)} to {_value(driver['value_after'], unit)} "
                f"(a percentile does not split exactly).")
    share = driver["share_of_change"]
    explains = (f"{driver['segment']} explains {share:.0%}" if 0 < share <= 1 else
                f"{driver['segment']} moved it most ({_signed(driver['contribution'], unit)}; others offset part)")
    if decomposition.kind == CONTRIBUTIONS:
        return (f"{text}; {explains}: from {_value(driver['before'], unit)} to {_value(driver['after'], unit)}.")
    if abs(driver["mix"]) >= abs(driver["rate"]):
        moved = "rose" if driver["weight_after"] > driver["weight_before"] else "fell"
        return (f"{text}; {explains}: its share of {noun} {moved} from {driver['weight_before']:.1%} to "
                f"{driver['weight_after']:.1%} (a mix change; its own rate went from "
                f"{_value(driver['rate_before'], unit)} to {_value(driver['rate_after'], unit)}).")
    moved = "rose" if driver["rate_after"] > driver["rate_before"] else "fell"
    return (f"{text}; {explains}: its rate {moved} from {_value(driver['rate_before'], unit)} to "
            f"{_value(driver['rate_after'], unit)}.")


def _value(value: float, unit: str | None) -> str:
    if value is None or pd.isna(value):
        return "none"
    return formatting.value(float(value), unit)


def waterfall_steps(decomposition: Decomposition, unit: str | None) -> pd.DataFrame:
    """Bars from the previous value to this one: the largest segments, the rest summed, then the total.

    Percentiles show their components (mix, segments, unexplained) instead, since their segments do
    not add up. Fractions are in percentage points of the rate (×100).

    Returns:
        step, amount (signed), start, end, kind (total | increase | decrease), label (the amount as text).
    """
    scale = 100.0 if unit == "fraction" else 1.0
    if decomposition.kind == PERCENTILE:
        parts = [("Mix", decomposition.components["mix"]),
                 (f"Segments' own {decomposition.quantile}", decomposition.components["segments"]),
                 ("Not explained (approximation)", decomposition.components["unexplained"])]
    else:
        table = decomposition.table
        parts = list(zip(table["segment"].head(WATERFALL_SEGMENTS), table["contribution"].head(WATERFALL_SEGMENTS),
                         strict=True))
        if len(table) > WATERFALL_SEGMENTS:
            rest = len(table) - WATERFALL_SEGMENTS
            parts.append((f"{rest} other{'s' if rest > 1 else ''}",
                          float(table["contribution"].iloc[WATERFALL_SEGMENTS:].sum())))
    rows = [("Previous period", decomposition.before * scale, 0.0, decomposition.before * scale, "total")]
    level = decomposition.before * scale
    for name, amount in parts:
        rows.append((str(name), amount * scale, level, level + amount * scale,
                     "increase" if amount >= 0 else "decrease"))
        level += amount * scale
    rows.append(("This period", decomposition.after * scale, 0.0, decomposition.after * scale, "total"))
    return pd.DataFrame(rows, columns=["step", "amount", "start", "end", "kind"])
