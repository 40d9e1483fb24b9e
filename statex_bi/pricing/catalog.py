"""The price catalog: USD per 1M tokens by provider, model and day, and the row that set each price.

Rows come from the override files in `params/prices/*.yaml` (see docs/configuration.md, "Price catalog"). In the
`actual` scenario anything the files do not cover falls back to genai-prices' bundled data, dated at
the call's day; other scenarios (e.g. `seed`, the seed's 2023 planning prices) are priced only from
their own rows. A (provider, model, day) that nothing prices is *unpriced*: the reports list it with
its token counts, it is never priced at 0.

Prices resolve per UTC day: an override starting on a date applies to every call of that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from statex_bi.config import PARAMS_DIR, PROJECT_ROOT, read_yaml
from statex_bi.exceptions import PricingError
from statex_bi.pricing.bundled import bundled_price
from statex_bi.pricing.prices import Price, PriceRow, Unpriced

ACTUAL = "actual"  # list prices in effect on each call's day
SEED = "seed"  # the seed's planning prices ($0.03/1K tokens OpenAI, $0.06/1K Azure)
DEFAULT_PATH = PARAMS_DIR / "prices"

_ROW_KEYS = {
    "id", "provider", "model", "input_usd_per_mtok", "cached_input_usd_per_mtok", "output_usd_per_mtok",
    "source", "effective_from", "effective_to", "hardware_usd_per_hour", "notes",
}
_REQUIRED_ROW_KEYS = {
    "id", "provider", "model", "input_usd_per_mtok", "cached_input_usd_per_mtok", "output_usd_per_mtok",
    "source", "effective_from",
}
_FILE_KEYS = {"scenario", "no_bundled_prices", "rows"}


@dataclass(frozen=True)
class Catalog:
    """Override rows by scenario, plus the providers genai-prices must not price.

    Attributes:
        rows: every row of every file read.
        no_bundled_prices: providers the `actual` scenario prices only from rows (e.g. azure:
            genai-prices prices Azure at the global OpenAI rate, our deployment is EU Data Zone).
        files: the files read, for the report's catalog table.
    """

    rows: tuple[PriceRow, ...]
    no_bundled_prices: frozenset[str] = frozenset()
    files: tuple[str, ...] = ()

    @property
    def scenarios(self) -> list[str]:
        return sorted({ACTUAL} | {row.scenario for row in self.rows})

    def price(self, provider: str, model: str, day: date, scenario: str = ACTUAL) -> Price | Unpriced:
        """The price of `model` from `provider` on `day` in `scenario`.

        Args:
            provider: the pricing provider (the AI tier: ollama, openai, azure).
            model: the requested model name.
            day: the call's UTC day.
            scenario: `actual` (overrides, then genai-prices) or another scenario's own rows.

        Returns:
            The Price and its row, or Unpriced with the reason.

        Raises:
            PricingError: two equally specific rows price the same call.
        """
        provider = provider.lower()
        matching = [r for r in self.rows if r.scenario == scenario and r.matches(provider, model, day)]
        if matching:
            best = max(r.specificity for r in matching)
            winners = [r for r in matching if r.specificity == best]
            if len(winners) > 1:
                ids = ", ".join(r.row_id for r in winners)
                raise PricingError(f"rows {ids} price {provider}/{model} on {day} equally; make one more specific")
            return Price.from_row(winners[0])
        if scenario != ACTUAL:
            return Unpriced(f"no {scenario!r} scenario row for {provider}/{model}")
        if provider in self.no_bundled_prices:
            return Unpriced(f"no override row for {provider}/{model} on {day} (genai-prices is off for {provider})")
        return bundled_price(provider, model, day)


def resolve_path(path: str | Path | None) -> Path:
    """The override path: the default `params/prices`, or `path`; relative paths start at the project root."""
    if path is None or str(path).strip() == "":
        return DEFAULT_PATH
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read the override files.

    Args:
        path: a directory (every *.yaml / *.yml in it) or one file; default `params/prices`.

    Returns:
        The catalog.

    Raises:
        PricingError: the path does not exist or a file is malformed (names file and row).
    """
    target = resolve_path(path)
    if target.is_dir():
        files = sorted([*target.glob("*.yaml"), *target.glob("*.yml")])
    elif target.is_file():
        files = [target]
    else:
        raise PricingError(f"price overrides {target} do not exist (parameter price_overrides)")
    rows: list[PriceRow] = []
    unbundled: set[str] = set()
    for file in files:
        file_rows, file_unbundled = _read_file(file)
        rows.extend(file_rows)
        unbundled |= file_unbundled
    _check_unique(rows)
    return Catalog(tuple(rows), frozenset(unbundled), tuple(str(f) for f in files))


def _read_file(file: Path) -> tuple[list[PriceRow], set[str]]:
    doc = read_yaml(file, error=PricingError) or {}
    if not isinstance(doc, dict):
        raise PricingError(f"{file}: expected a mapping with `rows`")
    unknown = set(doc) - _FILE_KEYS
    if unknown:
        raise PricingError(f"{file}: unknown keys {sorted(unknown)}; allowed: {sorted(_FILE_KEYS)}")
    scenario = str(doc.get("scenario", ACTUAL)).strip()
    unbundled = {str(p).lower() for p in doc.get("no_bundled_prices") or []}
    if unbundled and scenario != ACTUAL:
        raise PricingError(f"{file}: no_bundled_prices only applies to the {ACTUAL!r} scenario")
    raw_rows = doc.get("rows") or []
    if not isinstance(raw_rows, list):
        raise PricingError(f"{file}: `rows` must be a list")
    return [_parse_row(raw, scenario, file, n) for n, raw in enumerate(raw_rows, start=1)], unbundled


def _parse_row(raw: Any, scenario: str, file: Path, number: int) -> PriceRow:
    where = f"{file}: row {number}"
    if not isinstance(raw, dict):
        raise PricingError(f"{where}: expected a mapping")
    if raw.get("id"):
        where += f" ({raw['id']})"
    missing = _REQUIRED_ROW_KEYS - set(raw)
    if missing:
        raise PricingError(f"{where}: missing {sorted(missing)}")
    unknown = set(raw) - _ROW_KEYS
    if unknown:
        raise PricingError(f"{where}: unknown keys {sorted(unknown)}")
    row = PriceRow(
        row_id=str(raw["id"]),
        scenario=scenario,
        provider=str(raw["provider"]).strip().lower(),
        model=str(raw["model"]).strip(),
        input_usd_per_mtok=_money(raw, "input_usd_per_mtok", where),
        cached_input_usd_per_mtok=_money(raw, "cached_input_usd_per_mtok", where),
        output_usd_per_mtok=_money(raw, "output_usd_per_mtok", where),
        source=str(raw["source"]).strip(),
        effective_from=_day(raw["effective_from"], "effective_from", where),
        effective_to=_day(raw["effective_to"], "effective_to", where) if raw.get("effective_to") else None,
        hardware_usd_per_hour=_money(raw, "hardware_usd_per_hour", where) if "hardware_usd_per_hour" in raw else 0.0,
        file=file.name,
    )
    if not row.source:
        raise PricingError(f"{where}: `source` must say where the prices come from")
    if row.effective_to is not None and row.effective_to < row.effective_from:
        raise PricingError(f"{where}: effective_to {row.effective_to} is before effective_from {row.effective_from}")
    return row


def _money(raw: dict[str, Any], key: str, where: str) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PricingError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def _day(value: Any, key: str, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise PricingError(f"{where}: {key} {value!r} is not a date (YYYY-MM-DD)") from None


def _check_unique(rows: list[PriceRow]) -> None:
    """Row ids are unique, and rows for the same model pattern do not overlap in time."""
    seen: dict[str, PriceRow] = {}
    for row in rows:
        if row.row_id in seen:
            raise PricingError(f"row id {row.row_id!r} appears in {seen[row.row_id].file} and {row.file}")
        seen[row.row_id] = row
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            same_key = (a.scenario, a.provider, a.model.lower()) == (b.scenario, b.provider, b.model.lower())
            if same_key and _overlap(a, b):
                raise PricingError(
                    f"rows {a.row_id} ({a.file}) and {b.row_id} ({b.file}) both price {a.provider}/{a.model} "
                    f"from {max(a.effective_from, b.effective_from)}; end one with effective_to"
                )


def _overlap(a: PriceRow, b: PriceRow) -> bool:
    a_end = a.effective_to or date.max
    b_end = b.effective_to or date.max
    return a.effective_from <= b_end and b.effective_from <= a_end
