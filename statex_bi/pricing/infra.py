"""The infrastructure price catalog (params/prices/infra/) and the pricing of a month's usage.

R2 has no billing export, so its cost is its usage priced here, as R2 bills it: each quantity after its
free allowance, rounded up to its billing unit. The S3 counterfactual prices the same usage like for
like at us-east-1 list prices, tiered, without rounding: R2 Standard at S3 Standard, R2 Infrequent
Access at S3 Standard-IA. E-mail counterfactuals take the cheapest
plan of each named provider that can send the month's e-mails. The catalog file states these rules
(`rules`); the savings report prints them.

Quantities: R2 storage in decimal GB-months (10^9 bytes), S3 storage and transfer in binary GB
(2^30 bytes), as each provider bills them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd

from statex_bi.config import PARAMS_DIR, PROJECT_ROOT, read_yaml
from statex_bi.exceptions import PricingError

DEFAULT_PATH = PARAMS_DIR / "prices" / "infra" / "catalog.yaml"
GB = 10**9  # R2's GB
GIB = 2**30  # AWS's GB
R2_CLASSES = ("standard", "infrequentaccess")
# Like for like: each R2 storage class against the S3 class made for the same access pattern.
S3_CLASS_OF_R2 = {"standard": "standard", "all": "standard", "infrequentaccess": "standard_ia"}

_REQUIRED = {"id", "item", "effective_from", "source", "retrieved_at"}
_OPTIONAL = {"usd", "per", "unit", "free", "round_up", "from", "to", "provider", "plan", "monthly_usd", "included",
             "overage_per_1000", "notes"}


@dataclass(frozen=True)
class PriceRow:
    """One catalog row. `usd` is the price of `per` units; tiers cover [tier_from, tier_to) units."""

    row_id: str
    item: str
    effective_from: date
    source: str
    retrieved_at: date
    usd: float = 0.0
    per: float = 1.0
    unit: str = ""
    free: float = 0.0
    round_up: float | None = None
    tier_from: float = 0.0
    tier_to: float | None = None
    provider: str | None = None
    plan: str | None = None
    monthly_usd: float = 0.0
    included: float = 0.0
    overage_per_1000: float | None = None


@dataclass(frozen=True)
class InfraCatalog:
    rows: tuple[PriceRow, ...]
    rules: tuple[str, ...]
    file: str

    def effective(self, item: str, day: date) -> list[PriceRow]:
        """The rows of `item` in effect on `day` (per tier / plan, the latest effective_from), by tier."""
        latest: dict[tuple, PriceRow] = {}
        for row in self.rows:
            if row.item != item or row.effective_from > day:
                continue
            key = (row.tier_from, row.provider, row.plan)
            if key not in latest or latest[key].effective_from < row.effective_from:
                latest[key] = row
        return sorted(latest.values(), key=lambda r: (r.tier_from, r.provider or "", r.plan or ""))

    def one(self, item: str, day: date) -> PriceRow:
        rows = self.effective(item, day)
        if not rows:
            raise PricingError(f"{self.file}: no {item} price in effect on {day}")
        return rows[0]

    def plans(self, provider: str, day: date) -> list[PriceRow]:
        return [r for r in self.effective("email.plan", day) if r.provider == provider]

    def providers(self, day: date) -> list[str]:
        return sorted({r.provider for r in self.effective("email.plan", day) if r.provider})

    def frame(self) -> pd.DataFrame:
        """Every row, for the report's catalog table."""
        return pd.DataFrame([{
            "id": r.row_id, "item": r.item, "plan": r.plan, "usd": r.usd if r.plan is None else None,
            "per": r.per if r.plan is None else None, "unit": r.unit, "free": r.free or None,
            "round_up": r.round_up, "tier_from": r.tier_from if r.tier_to or r.tier_from else None,
            "tier_to": r.tier_to, "monthly_usd": r.monthly_usd if r.plan else None,
            "included": r.included if r.plan else None, "overage_per_1000": r.overage_per_1000,
            "effective_from": r.effective_from, "source": r.source, "retrieved_at": r.retrieved_at,
        } for r in self.rows])


def load_infra_catalog(path: str | Path | None = None) -> InfraCatalog:
    """Read the catalog file (default params/prices/infra/catalog.yaml; relative paths from the project root).

    Raises:
        PricingError: the file is missing or a row is malformed (names the file and row).
    """
    target = Path(path).expanduser() if path else DEFAULT_PATH
    target = target if target.is_absolute() else PROJECT_ROOT / target
    doc = read_yaml(target, error=PricingError) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise PricingError(f"{target}: expected a mapping with `rules` and `rows`")
    rows = tuple(_row(raw, target, n) for n, raw in enumerate(doc["rows"], start=1))
    ids = [r.row_id for r in rows]
    if len(set(ids)) != len(ids):
        raise PricingError(f"{target}: duplicate row ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return InfraCatalog(rows, tuple(str(rule) for rule in doc.get("rules") or []), str(target))


def _row(raw: Any, file: Path, number: int) -> PriceRow:
    where = f"{file}: row {number}"
    if not isinstance(raw, dict):
        raise PricingError(f"{where}: expected a mapping")
    missing, unknown = _REQUIRED - set(raw), set(raw) - _REQUIRED - _OPTIONAL
    if missing or unknown:
        raise PricingError(f"{where} ({raw.get('id')}): missing {sorted(missing)}, unknown {sorted(unknown)}")
    names = {f.name for f in fields(PriceRow)}
    values: dict[str, Any] = {"row_id": str(raw["id"]), "tier_from": raw.get("from", 0), "tier_to": raw.get("to")}
    values.update({k: v for k, v in raw.items() if k in names})
    for key in ("effective_from", "retrieved_at"):
        if not isinstance(values[key], date):
            raise PricingError(f"{where} ({raw['id']}): {key} must be a date (YYYY-MM-DD), not {values[key]!r}")
    for key in ("usd", "per", "free", "round_up", "tier_from", "tier_to", "monthly_usd", "included",
                "overage_per_1000"):
        value = values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise PricingError(f"{where} ({raw['id']}): {key} must be a number >= 0, not {value!r}")
    if values["item"] == "email.plan" and not (values.get("provider") and values.get("plan")):
        raise PricingError(f"{where} ({raw['id']}): an email.plan row needs provider and plan")
    return PriceRow(**values)


@dataclass(frozen=True)
class StorageMonth:
    """A month of object-storage usage of one storage class, in bytes and operations.

    Attributes:
        month: the first day of the month.
        storage_class: "standard" or "infrequentaccess".
        byte_days: sum over the month's days of each day's peak bytes (payload + metadata).
        days: days in the month (the divisor of the GB-month mean).
        class_a, class_b: billable operations (401/403 excluded).
        egress_bytes: GetObject responseBytes (estimate of bytes served).
    """

    month: date
    storage_class: str
    byte_days: int
    days: int
    class_a: int
    class_b: int
    egress_bytes: int

    def gb_months(self, unit: int) -> Fraction:
        return Fraction(int(self.byte_days), self.days * unit)


def _billable(quantity: Fraction, row: PriceRow) -> Fraction:
    """Exact: a float would turn 3 GB-months into 3.0000000000000004 and round it up to 4."""
    after_free = max(Fraction(0), quantity - Fraction(row.free))
    if not row.round_up:
        return after_free
    step = Fraction(row.round_up)
    return math.ceil(after_free / step) * step


def _tiered(quantity: float, rows: list[PriceRow]) -> float:
    """Price of `quantity` across tiers [from, to), after the first tier's free allowance."""
    billable = max(0.0, quantity - (rows[0].free if rows else 0.0))
    total = 0.0
    for row in rows:
        upper = row.tier_to if row.tier_to is not None else math.inf
        in_tier = max(0.0, min(billable, upper) - row.tier_from)
        total += in_tier * row.usd / row.per
    return total


def r2_cost(month: StorageMonth, catalog: InfraCatalog) -> pd.DataFrame:
    """What R2 bills for a month of one storage class: storage, Class A, Class B (and IA retrieval).

    Returns:
        One row per line: item, quantity (GB-months or operations), billable (after the free
        allowance, rounded up), usd, row_id.
    """
    klass = month.storage_class.lower()
    if klass not in R2_CLASSES:
        raise PricingError(f"R2 storage class {month.storage_class!r} has no price (known: {', '.join(R2_CLASSES)})")
    quantities = {"storage": month.gb_months(GB), "class_a": Fraction(int(month.class_a)),
                  "class_b": Fraction(int(month.class_b))}
    if klass == "infrequentaccess":
        quantities["retrieval"] = Fraction(int(month.egress_bytes), GB)
    lines = []
    for name, quantity in quantities.items():
        row = catalog.one(f"r2.{klass}.{name}", month.month)
        billable = _billable(quantity, row)
        lines.append({"item": f"r2.{klass}.{name}", "quantity": float(quantity), "billable": float(billable),
                      "usd": float(billable) * row.usd / row.per, "row_id": row.row_id})
    return pd.DataFrame(lines)


def s3_cost(month: StorageMonth, catalog: InfraCatalog, transfer: bool = True) -> pd.DataFrame:
    """The same usage at the matching S3 class, us-east-1: binary GB, tiers, no rounding.

    R2 Standard (and "all") is priced at S3 Standard; R2 Infrequent Access at S3 Standard-IA, whose
    retrieval is the R2 class's bytes served. Data transfer out to the internet (100 GB a month free
    per account) is included unless `transfer` is False (`s3_like_for_like` prices it once over the
    classes' total).

    Returns:
        One row per line: item, quantity (GB-months, requests, GB), usd.
    """
    day = month.month
    klass = S3_CLASS_OF_R2.get(month.storage_class.lower())
    if klass is None:
        raise PricingError(f"R2 storage class {month.storage_class!r} has no S3 match "
                           f"(known: {', '.join(S3_CLASS_OF_R2)})")
    lines = [
        (f"s3.{klass}.storage", float(month.gb_months(GIB))),
        (f"s3.{klass}.tier1", month.class_a),
        (f"s3.{klass}.tier2", month.class_b),
    ]
    if klass == "standard_ia":
        lines.append(("s3.standard_ia.retrieval", month.egress_bytes / GIB))
    if transfer:
        lines.append(("s3.data_transfer_out", month.egress_bytes / GIB))
    out = []
    for item, quantity in lines:
        rows = catalog.effective(item, day)
        if not rows:
            raise PricingError(f"{catalog.file}: no {item} price in effect on {day}")
        out.append({"item": item, "quantity": quantity, "usd": _tiered(quantity, rows)})
    return pd.DataFrame(out)


def s3_like_for_like(classes: list[StorageMonth], catalog: InfraCatalog) -> float:
    """A month of every R2 storage class at its matching S3 class, plus the transfer out of all of them
    (the free 100 GB a month is per account, so it is applied once, to the total)."""
    if not classes:
        return 0.0
    usd = sum(float(s3_cost(part, catalog, transfer=False)["usd"].sum()) for part in classes)
    egress = sum(part.egress_bytes for part in classes) / GIB
    rows = catalog.effective("s3.data_transfer_out", classes[0].month)
    if not rows:
        raise PricingError(f"{catalog.file}: no s3.data_transfer_out price in effect on {classes[0].month}")
    return usd + _tiered(egress, rows)


def plan_cost(plan: PriceRow, emails: float) -> float | None:
    """A plan's monthly cost for `emails`; None when the plan cannot send that many (no overage)."""
    extra = max(0.0, emails - plan.included)
    if extra > 0 and plan.overage_per_1000 is None:
        return None
    return plan.monthly_usd + extra * (plan.overage_per_1000 or 0.0) / 1000


def cheapest_plan(catalog: InfraCatalog, provider: str, emails: float, day: date,
                  only: list[PriceRow] | None = None) -> tuple[PriceRow, float] | None:
    """The provider's cheapest plan (among `only`, if given) that can send `emails` in the month of `day`,
    and its cost; None when no plan can."""
    plans = catalog.plans(provider, day) if only is None else only
    priced = [(plan, cost) for plan in plans if (cost := plan_cost(plan, emails)) is not None]
    return min(priced, key=lambda pc: (pc[1], pc[0].row_id)) if priced else None
