"""The OpenAI bill of the simulated AI calls: completions usage and costs by day (see ai.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from genai_prices import Usage, calc_price

from statex_bi.demo.entities import WorldConfig

OPENAI_PROJECT_ID = "proj_Stx4fQ9mWb2LkR7uVe3pYc0Z"  # the OpenAI project of Statex's API keys
BILLING_ADJUSTMENT_SD = 0.012  # relative; clipped to +/-3 %
WEB_SEARCH_DAY_SHARE = 0.05
WEB_SEARCH_PRICE_USD = 0.01  # per tool call


@dataclass(frozen=True)
class UsageBucket:
    """One row of the OpenAI completions usage: a UTC day and a model snapshot."""

    day: date
    model: str
    input_tokens: int
    input_cached_tokens: int
    output_tokens: int
    num_model_requests: int
    project_id: str = OPENAI_PROJECT_ID
    batch: bool = False
    service_tier: str = "default"


@dataclass(frozen=True)
class CostLine:
    """One row of the OpenAI costs: a UTC day and a line item, in USD."""

    day: date
    line_item: str
    amount_usd: float
    quantity: float | None
    quantity_unit: str | None
    project_id: str = OPENAI_PROJECT_ID


def list_price_usd(model: str, day: date, input_tokens: int, cached_tokens: int, output_tokens: int
                   ) -> tuple[float, float]:
    """OpenAI list price of a day's tokens of one model (genai-prices, at that date).

    Returns:
        (input cost including cached input, output cost) in USD.
    """
    price = calc_price(
        Usage(input_tokens=input_tokens, cache_read_tokens=cached_tokens, output_tokens=output_tokens),
        model_ref=model, provider_id="openai",
        genai_request_timestamp=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
    )
    return float(price.input_price), float(price.output_price)


def costs_of(config: WorldConfig, usage: list[UsageBucket]) -> list[CostLine]:
    """The day's line items, each day's billing adjustments and web searches from a generator of its own."""
    lines: list[CostLine] = []
    by_day: dict[date, list[UsageBucket]] = defaultdict(list)
    for bucket in usage:
        by_day[bucket.day].append(bucket)
    for day, buckets in sorted(by_day.items()):
        rng = config.rng(f"ai/costs/{day.isoformat()}")
        for bucket in buckets:
            input_usd, output_usd = list_price_usd(bucket.model, bucket.day, bucket.input_tokens,
                                                   bucket.input_cached_tokens, bucket.output_tokens)
            adjustment = 1 + float(np.clip(rng.normal(0, BILLING_ADJUSTMENT_SD), -0.03, 0.03))
            lines.append(CostLine(bucket.day, f"{bucket.model}, input", round(input_usd * adjustment, 8),
                                  float(bucket.input_tokens), "tokens"))
            lines.append(CostLine(bucket.day, f"{bucket.model}, output", round(output_usd * adjustment, 8),
                                  float(bucket.output_tokens), "tokens"))
        if rng.random() < WEB_SEARCH_DAY_SHARE:
            searches = int(rng.integers(1, 4))
            lines.append(CostLine(day, "web search tool calls", round(searches * WEB_SEARCH_PRICE_USD, 8),
                                  float(searches), None))
    lines.sort(key=lambda line: (line.day, line.line_item))
    return lines
