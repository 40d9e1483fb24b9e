"""One KPI value a report's `metrics()` returns, before `statex_bi.publish` checks and publishes it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One KPI value a report considered publishing.

    Attributes:
        name: the registry name, e.g. "ai.cost".
        value: the value at full precision, or None when it is undefined for the period.
        unit: as in the registry (a currency code for money).
        source: where the data came from, e.g. "ga4".
        tags: breakdowns and context, e.g. {"tier": "openai", "unpriced_calls": 0}.
        metric_type: COUNTER, GAUGE, HISTOGRAM or SUMMARY.
        reason: why `value` is None (shown in the report instead of a number).
    """

    name: str
    value: float | None
    unit: str
    source: str
    tags: dict[str, Any] = field(default_factory=dict)
    metric_type: str = "GAUGE"
    reason: str = ""

    @property
    def defined(self) -> bool:
        return self.value is not None and not undefined(self.value)


def undefined(value: Any) -> bool:
    """NaN, infinities, pd.NA and anything that is not a number."""
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True
