"""Prices from genai-prices' bundled data (offline), dated at the call's day.

Only the public API is used: `calc_price` with an empty usage at noon UTC of the day returns the model
price in effect then (`model_price`), the model and provider it matched, and the model's dated price
list, from which the row's effective dates are read. Standard-tier prices are used: the spans do
not say whether a call ran as batch, flex or priority.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache

from genai_prices import Usage, calc_price
from genai_prices import __version__ as GENAI_PRICES_VERSION
from genai_prices import types as gp

from statex_bi.pricing.prices import Price, Unpriced


@cache
def bundled_price(provider: str, model: str, day: date) -> Price | Unpriced:
    """genai-prices' price for `model` from `provider` on `day`.

    Args:
        provider: a genai-prices provider id (openai, azure, ...).
        model: the requested model name; genai-prices matches dated snapshots to their model.
        day: the call's UTC day.

    Returns:
        The Price (row id `genai-prices:<provider>/<model>@<effective_from>`), or Unpriced.
    """
    when = datetime.combine(day, time(12), tzinfo=UTC)
    try:
        result = calc_price(Usage(input_tokens=0, output_tokens=0), model, provider_id=provider,
                            genai_request_timestamp=when)
    except LookupError as exc:
        return Unpriced(f"not in genai-prices {GENAI_PRICES_VERSION} ({exc})")
    dated = result.model.prices if isinstance(result.model.prices, list) else []
    if any(isinstance(p.constraint, gp.TimeOfDateConstraint) for p in dated):
        return Unpriced(f"genai-prices prices {result.model.id} by time of day, which daily pricing cannot apply")
    prices = result.model_price
    base = {key: getattr(prices, key) for key in ("input_mtok", "cache_read_mtok", "output_mtok")}
    if base["input_mtok"] is None or base["output_mtok"] is None:
        return Unpriced(f"genai-prices has no token prices for {result.provider.id}/{result.model.id}")
    if base["cache_read_mtok"] is None:
        # No cache discount listed: cached input tokens are billed as input tokens.
        base["cache_read_mtok"] = base["input_mtok"]
    tiers = {key: value.tiers for key, value in base.items() if isinstance(value, gp.TieredPrices)}
    starts = {tier.start for tier_list in tiers.values() for tier in tier_list}
    if any(len(tier_list) > 1 for tier_list in tiers.values()) or len(starts) > 1:
        return Unpriced(f"genai-prices prices {result.model.id} in several long-context tiers; add an override row")
    effective_from, effective_to = _validity(dated, day)
    long_above = starts.pop() if starts else None
    return Price(
        row_id=f"genai-prices:{result.provider.id}/{result.model.id}@{effective_from or 'undated'}",
        source=f"genai-prices {GENAI_PRICES_VERSION} bundled data ({result.provider.id} {result.model.id})",
        effective_from=effective_from,
        effective_to=effective_to,
        input_usd_per_mtok=_base(base["input_mtok"]),
        cached_input_usd_per_mtok=_base(base["cache_read_mtok"]),
        output_usd_per_mtok=_base(base["output_mtok"]),
        long_context_above_tokens=long_above,
        long_context_input_usd_per_mtok=_long(base["input_mtok"]) if long_above is not None else None,
        long_context_cached_input_usd_per_mtok=_long(base["cache_read_mtok"]) if long_above is not None else None,
        long_context_output_usd_per_mtok=_long(base["output_mtok"]) if long_above is not None else None,
    )


def _base(value: Decimal | gp.TieredPrices) -> float:
    return float(value.base if isinstance(value, gp.TieredPrices) else value)


def _long(value: Decimal | gp.TieredPrices) -> float:
    """The long-context rate; a price key without tiers pays its base rate there too."""
    return float(value.tiers[0].price if isinstance(value, gp.TieredPrices) else value)


def _validity(dated: list[gp.ConditionalPrice], day: date) -> tuple[date | None, date | None]:
    """First and last day of the dated price in effect on `day` (None: undated / open-ended)."""
    starts = sorted(
        p.constraint.start_date for p in dated if isinstance(p.constraint, gp.StartDateConstraint)
    )
    begun = [s for s in starts if s <= day]
    upcoming = [s for s in starts if s > day]
    return (begun[-1] if begun else None), (upcoming[0] - timedelta(days=1) if upcoming else None)
