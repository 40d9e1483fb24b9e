"""The infrastructure price catalog (params/prices/infra/) and the pricing of a month's usage.

R2 has no billing export, so its cost is its usage priced here, as R2 bills it: each quantity after its
free allowance, rounded up to its billing unit. The S3 counterfactual prices the same usage like for
like at us-east-1 list prices, tiered, without rounding: R2 Standard at S3 Standard, R2 Infrequent
Access at S3 Standard-IA, the bytes served either straight from S3 to the internet or through a
CloudFront distribution (the CDN path). E-mail counterfactuals take the cheapest plan of each named
provider that can send the month's e-mails. The catalog file states these rules (`rules`); the
savings report prints them.

Part of a month (a week): the usage of the days covered is projected to the whole month, priced as a
month (free allowances, billing increments, tiers and plan fees as billed), and the cost counted for
the covered share of the month. With usage constant, a week costs the same wherever it falls in the
month, and the full month is priced exactly as billed.

Quantities: R2 storage in decimal GB-months (10^9 bytes), S3 storage and transfer in binary GB
(2^30 bytes), as each provider bills them.

Rows not checked against the reference material carry `unverified` (why): the report lists them, and
any figure they price names them.
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
             "overage_per_1000", "overage_range_per_1000", "unverified", "notes"}
BASE, LOW, HIGH = "base", "low", "high"  # the ends of a quoted price range, and the price used for the base case


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
    overage_range_per_1000: tuple[float, float] | None = None
    unverified: str | None = None

    def quotes_range_for(self, emails: float) -> bool:
        """The plan's quoted overage range matters for `emails`: it has one, and they go past the plan."""
        return self.overage_range_per_1000 is not None and emails > self.included

    def overage(self, end: str = BASE) -> float | None:
        """The overage per 1,000 e-mails at `end` of its quoted range (BASE: the row's own price)."""
        if end == BASE or self.overage_range_per_1000 is None:
            return self.overage_per_1000
        return self.overage_range_per_1000[0 if end == LOW else 1]


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
            "overage_range": (f"{r.overage_range_per_1000[0]:.2f} to {r.overage_range_per_1000[1]:.2f}"
                              if r.overage_range_per_1000 else None),
            "effective_from": r.effective_from, "source": r.source, "retrieved_at": r.retrieved_at,
            "status": f"unverified: {r.unverified}" if r.unverified else "checked against the reference",
        } for r in self.rows])

    def unverified(self, row_ids: set[str] | list[str]) -> list[str]:
        """The ids among `row_ids` of rows not checked against the reference, sorted."""
        flagged = {r.row_id for r in self.rows if r.unverified}
        return sorted(flagged & set(row_ids))


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
    if "overage_range_per_1000" in values:
        values["overage_range_per_1000"] = _quoted_range(values, where)
    if "unverified" in values:
        values["unverified"] = str(values["unverified"]).strip() or None
    return PriceRow(**values)


def _quoted_range(values: dict[str, Any], where: str) -> tuple[float, float]:
    """[low, high], both numbers, holding the row's own overage price."""
    quoted, base = values["overage_range_per_1000"], values.get("overage_per_1000")
    if (not isinstance(quoted, list) or len(quoted) != 2 or base is None
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in quoted)
            or not quoted[0] <= base <= quoted[1]):
        raise PricingError(f"{where} ({values['row_id']}): overage_range_per_1000 must be [low, high] around "
                           f"overage_per_1000 ({base!r}), not {quoted!r}")
    return float(quoted[0]), float(quoted[1])


@dataclass(frozen=True)
class StorageMonth:
    """A month of object-storage usage of one storage class, in bytes and operations, or the part of
    it a period covers.

    Attributes:
        month: the first day of the month.
        storage_class: "standard" or "infrequentaccess".
        byte_days: sum over the covered days of each day's peak bytes (payload + metadata).
        days: days in the month (the divisor of the GB-month mean).
        class_a, class_b: billable operations (401/403 excluded).
        egress_bytes: GetObject responseBytes (estimate of bytes served).
        covered_days: the days of the month the usage covers (0: all of them). Part of a month is
            priced as its projection to the whole month, counted for the covered share.
    """

    month: date
    storage_class: str
    byte_days: int
    days: int
    class_a: int
    class_b: int
    egress_bytes: int
    covered_days: int = 0

    def gb_months(self, unit: int) -> Fraction:
        return Fraction(int(self.byte_days), self.days * unit)

    @property
    def share(self) -> Fraction:
        """The covered share of the month (1 for a whole month)."""
        return Fraction(self.covered_days or self.days, self.days)


def _billable(quantity: Fraction, row: PriceRow) -> Fraction:
    """Exact: a float would turn 3 GB-months into 3.0000000000000004 and round it up to 4."""
    after_free = max(Fraction(0), quantity - Fraction(row.free))
    if not row.round_up:
        return after_free
    step = Fraction(row.round_up)
    return math.ceil(after_free / step) * step


def _tiered(quantity: float, rows: list[PriceRow], share: Fraction = Fraction(1)) -> float:
    """Price of `quantity` across tiers [from, to), after the first tier's free allowance; for part of a
    month (`share` < 1), the quantity projected to the month, priced, and counted for the share."""
    billable = max(0.0, quantity / float(share) - (rows[0].free if rows else 0.0))
    total = 0.0
    for row in rows:
        upper = row.tier_to if row.tier_to is not None else math.inf
        in_tier = max(0.0, min(billable, upper) - row.tier_from)
        total += in_tier * row.usd / row.per
    return total * float(share)


def r2_cost(month: StorageMonth, catalog: InfraCatalog) -> pd.DataFrame:
    """What R2 bills for a month of one storage class: storage, Class A, Class B (and IA retrieval); for
    part of a month, its share of the projected month's bill.

    Returns:
        One row per line: item, quantity (GB-months or operations), billable (after the free
        allowance, rounded up; for part of a month the covered share of the projected month's),
        usd, row_id.
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
        billable = _billable(quantity / month.share, row) * month.share
        lines.append({"item": f"r2.{klass}.{name}", "quantity": float(quantity), "billable": float(billable),
                      "usd": float(billable) * row.usd / row.per, "row_id": row.row_id})
    return pd.DataFrame(lines)


def _priced(catalog: InfraCatalog, item: str, quantity: float, day: date, share: Fraction) -> dict[str, Any]:
    rows = catalog.effective(item, day)
    if not rows:
        raise PricingError(f"{catalog.file}: no {item} price in effect on {day}")
    # The rows that priced it: the first tier (its free allowance applies) and every tier the quantity reaches.
    billable = quantity / float(share) - rows[0].free
    used = [r for r in rows if r is rows[0] or billable > r.tier_from]
    return {"item": item, "quantity": quantity, "usd": _tiered(quantity, rows, share),
            "row_ids": tuple(r.row_id for r in used)}


def s3_cost(month: StorageMonth, catalog: InfraCatalog, transfer: bool = True) -> pd.DataFrame:
    """The same usage at the matching S3 class, us-east-1: binary GB, tiers, no rounding.

    R2 Standard (and "all") is priced at S3 Standard; R2 Infrequent Access at S3 Standard-IA, whose
    retrieval is the R2 class's bytes served. Data transfer out to the internet (100 GB a month free
    per account) is included unless `transfer` is False (`s3_paths` prices it once over the classes'
    total).

    Returns:
        One row per line: item, quantity (GB-months, requests, GB), usd, row_ids (the rows that price it).
    """
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
    return pd.DataFrame([_priced(catalog, item, quantity, month.month, month.share) for item, quantity in lines])


# How the bytes served reach the internet in the S3 counterfactual, and the catalog items each path adds.
DIRECT, CDN = "direct egress", "CloudFront path"
DELIVERY = {
    DIRECT: (("s3.data_transfer_out", "egress"),),
    CDN: (("s3.data_transfer_to_cloudfront", "egress"), ("cloudfront.data_transfer_out", "egress"),
          ("cloudfront.requests", "requests")),
}


def s3_paths(classes: list[StorageMonth], catalog: InfraCatalog) -> pd.DataFrame:
    """A month (or part) of every R2 storage class at its matching S3 class, by delivery path.

    Direct egress: S3's data transfer out to the internet. CloudFront path: S3 to CloudFront is free,
    CloudFront's own transfer out and requests are charged (its requests counted as the Class B
    operations that reached R2: requests Cloudflare's cache answered are not counted, as with the
    bytes). Free allowances are per account, so each is applied once, to the classes' total.

    Returns:
        One row per path: path, usd, row_ids (every catalog row that priced it).
    """
    if not classes:
        return pd.DataFrame(columns=["path", "usd", "row_ids"])
    storage = pd.concat([s3_cost(part, catalog, transfer=False) for part in classes], ignore_index=True)
    quantities = {"egress": sum(part.egress_bytes for part in classes) / GIB,
                  "requests": sum(part.class_b for part in classes)}
    first = classes[0]
    out = []
    for path, items in DELIVERY.items():
        lines = [_priced(catalog, item, quantities[what], first.month, first.share) for item, what in items]
        ids = {row_id for ids in [*storage["row_ids"], *(line["row_ids"] for line in lines)] for row_id in ids}
        out.append({"path": path, "usd": float(storage["usd"].sum()) + sum(line["usd"] for line in lines),
                    "row_ids": tuple(sorted(ids))})
    return pd.DataFrame(out)


def s3_like_for_like(classes: list[StorageMonth], catalog: InfraCatalog, path: str = DIRECT) -> float:
    """A month of every R2 storage class at its matching S3 class, served by `path` (`s3_paths`)."""
    if not classes:
        return 0.0
    paths = s3_paths(classes, catalog).set_index("path")
    return float(paths.loc[path, "usd"])


def plan_cost(plan: PriceRow, emails: float, end: str = BASE) -> float | None:
    """A plan's monthly cost for `emails`, its overage at `end` of a quoted range; None when the plan cannot
    send that many (no overage)."""
    extra = max(0.0, emails - plan.included)
    overage = plan.overage(end)
    if extra > 0 and overage is None:
        return None
    return plan.monthly_usd + extra * (overage or 0.0) / 1000


def cheapest_plan(catalog: InfraCatalog, provider: str, emails: float, day: date,
                  only: list[PriceRow] | None = None, end: str = BASE) -> tuple[PriceRow, float] | None:
    """The provider's cheapest plan (among `only`, if given) that can send `emails` in the month of `day`,
    and its cost (overage at `end` of a quoted range); None when no plan can."""
    plans = catalog.plans(provider, day) if only is None else only
    priced = [(plan, cost) for plan in plans if (cost := plan_cost(plan, emails, end)) is not None]
    return min(priced, key=lambda pc: (pc[1], pc[0].row_id)) if priced else None


def plan_options(catalog: InfraCatalog, provider: str, emails: float, day: date) -> list[tuple[PriceRow, str, float]]:
    """Every plan of `provider` that can send `emails` in the month of `day`: (plan, end, monthly cost) at
    its one price (BASE), or where a quoted overage range applies at its base price and at both ends
    (BASE, LOW, HIGH); cheapest first."""
    options = []
    for plan in catalog.plans(provider, day):
        for end in ((LOW, BASE, HIGH) if plan.quotes_range_for(emails) else (BASE,)):
            cost = plan_cost(plan, emails, end)
            if cost is not None:
                options.append((plan, end, cost))
    return sorted(options, key=lambda option: (option[2], option[0].row_id, option[1]))
