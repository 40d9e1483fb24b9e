"""Constants of the FOCUS billing import: the FOCUS columns read, their accepted names, allowed values."""

from __future__ import annotations

SOURCE = "billing"
TABLE = "charges"
FILES_TABLE = "files"
CORRECTIONS_TABLE = "corrections"
MANIFEST_PATTERN = "*anifest.json"  # AWS <export>-Manifest.json, Azure manifest.json
# AWS may still update a billing period during the first two weeks after it ends (Data Exports delivery
# docs); later changes to it are corrections and are listed as such.
PERIOD_CLOSES_AFTER_DAYS = 14
# Cells written as the SQL null (the FinOps Foundation's FOCUS sample writes NULL unquoted) are empty.
NULL_TEXT = "NULL"
FILE_PATTERNS = ("*.csv", "*.csv.gz", "*.parquet")

# raw_billing.charges column -> the FOCUS column names that fill it, first present wins. Names are
# matched case-insensitively. FOCUS 1.3 added ServiceProviderName, which replaces ProviderName (gone in
# 1.4); AWS "FOCUS 1.0 with AWS columns" writes the usage type as x_UsageType, its 1.2 export as
# SkuMeter; Microsoft's 1.0 export calls the meter x_SkuMeterName.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "provider": ("ServiceProviderName", "ProviderName"),
    "invoice_issuer": ("InvoiceIssuerName",),
    "billing_account_id": ("BillingAccountId",),
    "sub_account_id": ("SubAccountId",),
    "billing_currency": ("BillingCurrency",),
    "billing_period_start": ("BillingPeriodStart",),
    "billing_period_end": ("BillingPeriodEnd",),
    "charge_period_start": ("ChargePeriodStart",),
    "charge_period_end": ("ChargePeriodEnd",),
    "charge_category": ("ChargeCategory",),
    "charge_class": ("ChargeClass",),
    "charge_frequency": ("ChargeFrequency",),
    "charge_description": ("ChargeDescription",),
    "service_name": ("ServiceName",),
    "service_category": ("ServiceCategory",),
    "region_id": ("RegionId",),
    "resource_id": ("ResourceId",),
    "sku_id": ("SkuId",),
    "sku_meter": ("SkuMeter", "x_UsageType", "x_SkuMeterName"),
    "service_code": ("x_ServiceCode",),
    "operation": ("x_Operation",),
    "consumed_quantity": ("ConsumedQuantity",),
    "consumed_unit": ("ConsumedUnit",),
    "pricing_quantity": ("PricingQuantity",),
    "pricing_unit": ("PricingUnit",),
    "pricing_block_size": ("x_PricingBlockSize",),
    "list_unit_price": ("ListUnitPrice",),
    "billed_cost": ("BilledCost",),
    "effective_cost": ("EffectiveCost",),
    "list_cost": ("ListCost",),
    "tags": ("Tags",),
}

# A file without one of these columns is rejected whole: nothing in it can be costed.
REQUIRED_COLUMNS = ("provider", "billing_currency", "charge_period_start", "charge_period_end", "charge_category",
                    "service_name", "billed_cost")
# Columns that must hold a value on every row (FOCUS: not nullable).
NOT_NULL = ("provider", "billing_currency", "charge_period_start", "charge_period_end", "charge_category",
            "service_name", "billed_cost")
DECIMALS = ("consumed_quantity", "pricing_quantity", "pricing_block_size", "list_unit_price", "billed_cost",
            "effective_cost", "list_cost")
DATETIMES = ("billing_period_start", "billing_period_end", "charge_period_start", "charge_period_end")

# FOCUS allowed values, compared case-insensitively and stored in the spec's spelling.
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_CLASSES = ("Correction",)
CHARGE_FREQUENCIES = ("One-Time", "Recurring", "Usage-Based")
SERVICE_CATEGORIES = (
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases", "Developer Tools",
    "Multicloud", "Identity", "Integration", "Internet of Things", "Management and Governance", "Media",
    "Migration", "Mobile", "Networking", "Security", "Storage", "Web", "Other",
)
ALLOWED: dict[str, tuple[str, ...]] = {
    "charge_category": CHARGE_CATEGORIES,
    "charge_class": CHARGE_CLASSES,
    "charge_frequency": CHARGE_FREQUENCIES,
    "service_category": SERVICE_CATEGORIES,
}

_MONEY = {"data_type": "decimal", "precision": 38, "scale": 18}
# DECIMAL(38, 18) holds magnitudes below 1E+20: a larger amount is a bad record, not a failed load.
DECIMAL_LIMIT = 10 ** (38 - 18)
# The longest value a FOCUS cell may hold (csv's own default field limit); a longer one is a bad record.
MAX_CELL_CHARS = 131_072
_TIME = {"data_type": "timestamp", "timezone": False}
CHARGE_COLUMNS: dict[str, dict] = {
    "file_hash": {"data_type": "text"},
    "source_line": {"data_type": "bigint"},
    "source_file": {"data_type": "text"},
    "focus_version": {"data_type": "text"},
    "delivery_slot": {"data_type": "text"},
    **{name: (_MONEY if name in DECIMALS else _TIME if name in DATETIMES else {"data_type": "text"})
       for name in COLUMN_NAMES},
}
CHARGE_KEY = ("file_hash", "source_line")
SLOT_KEY = "delivery_slot"  # an export's billing period, or a file's path: what a newer delivery replaces

FILE_COLUMNS: dict[str, dict] = {
    "file_hash": {"data_type": "text"},
    "source_file": {"data_type": "text"},
    "file_format": {"data_type": "text"},
    "focus_version": {"data_type": "text"},
    "delivery_slot": {"data_type": "text"},
    "status": {"data_type": "text"},
    "rows": {"data_type": "bigint"},
    "quarantined_rows": {"data_type": "bigint"},
    "first_charge_period": _TIME,
    "last_charge_period": _TIME,
    "error": {"data_type": "text"},
}
# Staged as JSONL, not dlt's default INSERT statements, which DuckDB loads with gigabytes of memory (an
# 80,000-row export took 3.7 GB and 4 minutes; bench/bench_billing_memory.py). Decimals stay exact text.
FILE_FORMAT = "jsonl"

CORRECTION_COLUMNS: dict[str, dict] = {
    "delivery_slot": {"data_type": "text"},
    "billing_period_start": _TIME,
    "billing_period_end": _TIME,
    "billing_currency": {"data_type": "text"},
    "previous_billed_cost": _MONEY,
    "billed_cost": _MONEY,
    "delivered_at": _TIME,
    "detected_at": _TIME,
}
CORRECTION_KEY = ("delivery_slot", "billing_period_start", "billing_currency", "delivered_at")
