"""Three-way verdicts of a value and its interval against a target, shared by every report with a target.

*holds* when the whole interval meets the target, *fails* when none of it does, *inconclusive* otherwise;
a target's edge counts as met (one convention for every target: at least 66% is met by 66.0%).
"""

from __future__ import annotations

from statex_bi.exceptions import ParamsError

HOLDS, FAILS, INCONCLUSIVE = "holds", "fails", "inconclusive"


def judge(kind: str, target: float, value: float, bounds: tuple[float, float, str] | None = None,
          within: float = 0.0) -> str:
    """Three-way verdict of a value (and its interval) against a target: HOLDS, FAILS or INCONCLUSIVE.

    kind: "at_least", "at_most" or "near" (target +- within x |target|); edges count as met.
    """
    low, high = (bounds[0], bounds[1]) if bounds else (value, value)
    if kind == "near":
        lower, upper = target - within * abs(target), target + within * abs(target)
        if lower <= low and high <= upper:
            return HOLDS
        return FAILS if high < lower or low > upper else INCONCLUSIVE
    if kind == "at_least":
        return HOLDS if low >= target else FAILS if high < target else INCONCLUSIVE
    if kind == "at_most":
        return HOLDS if high <= target else FAILS if low > target else INCONCLUSIVE
    raise ParamsError(f"unknown target kind {kind!r}: at_least, at_most or near")
