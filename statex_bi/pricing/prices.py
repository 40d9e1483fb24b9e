"""What a price is: a catalog row, the price that applies to one call, or the reason nothing prices it.

Its own module so that the catalog (override rows) and the bundled genai-prices data both build
prices without importing each other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase

_PATTERN_SYNTAX = re.compile(r"\[[^\]]*\]|[*?]")


@dataclass(frozen=True)
class PriceRow:
    """One row of an override file: the prices of the matching models over a date range.

    `model` is an exact name or a shell-style pattern (`gpt-4o-mini*`, `*`), matched case-insensitively.
    `effective_to` is the last day the row applies (inclusive); None means open-ended.
    `hardware_usd_per_hour` is charged per call for its duration (self-hosted models).
    """

    row_id: str
    scenario: str
    provider: str
    model: str
    input_usd_per_mtok: float
    cached_input_usd_per_mtok: float
    output_usd_per_mtok: float
    source: str
    effective_from: date
    effective_to: date | None = None
    hardware_usd_per_hour: float = 0.0
    file: str = ""

    def matches(self, provider: str, model: str, day: date) -> bool:
        return (
            provider.lower() == self.provider
            and fnmatchcase(model.lower(), self.model.lower())
            and self.effective_from <= day
            and (self.effective_to is None or day <= self.effective_to)
        )

    @property
    def specificity(self) -> tuple[int, int]:
        """Exact names beat patterns; among patterns, the one with more literal characters wins."""
        literal = _PATTERN_SYNTAX.sub("", self.model)
        return (int(literal == self.model), len(literal))


@dataclass(frozen=True)
class Price:
    """The price that applies to one (provider, model, day), and the catalog row it came from.

    The long-context fields are set when the price is tiered (genai-prices' "cliff" tiers: above
    `long_context_above_tokens` input tokens, every token of the call pays the long-context rate).
    """

    row_id: str
    source: str
    effective_from: date | None
    effective_to: date | None
    input_usd_per_mtok: float
    cached_input_usd_per_mtok: float
    output_usd_per_mtok: float
    hardware_usd_per_hour: float = 0.0
    long_context_above_tokens: int | None = None
    long_context_input_usd_per_mtok: float | None = None
    long_context_cached_input_usd_per_mtok: float | None = None
    long_context_output_usd_per_mtok: float | None = None

    @classmethod
    def from_row(cls, row: PriceRow) -> Price:
        return cls(
            row_id=row.row_id,
            source=row.source,
            effective_from=row.effective_from,
            effective_to=row.effective_to,
            input_usd_per_mtok=row.input_usd_per_mtok,
            cached_input_usd_per_mtok=row.cached_input_usd_per_mtok,
            output_usd_per_mtok=row.output_usd_per_mtok,
            hardware_usd_per_hour=row.hardware_usd_per_hour,
        )


@dataclass(frozen=True)
class Unpriced:
    """Nothing in the catalog prices this (provider, model, day); `reason` says why."""

    reason: str
