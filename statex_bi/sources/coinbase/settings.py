"""Constants of the Coinbase Commerce source."""

from __future__ import annotations

from datetime import timedelta

SOURCE = "coinbase"
API_KEY_ENV = "COINBASE_COMMERCE_API_KEY"
API_BASE_ENV = "COINBASE_COMMERCE_API_BASE"
DEFAULT_API_BASE = "https://api.commerce.coinbase.com"
API_VERSION = "2018-03-22"  # the X-CC-Version the field names below follow
CHARGES_PATH = "/charges"

PAGE_SIZE = 100  # Coinbase's maximum
# A charge expires an hour after creation unless paid, and a detected payment can take hours to
# confirm; each run re-reads this much before the newest created_at and merges on id.
LOOKBACK = timedelta(days=3)
COMPLETED = "COMPLETED"

REQUEST_TIMEOUT_SECONDS = 60.0
RETRY_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = 0.5
RETRY_MAX_DELAY_SECONDS = 30.0

# Metadata keys in which a shop puts who paid (Coinbase has no customer object): the first present
# becomes the pseudonymised customer_id, and no personal key reaches metadata_json.
IDENTITY_KEYS = ("customer_email", "email", "customer_id")
PERSONAL_KEYS = frozenset({"customer_email", "email", "customer_name", "name", "customer_id", "phone"})

# Decimal places of the local (fiat) currencies a charge may be priced in.
CURRENCY_EXPONENTS = {
    "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "INR": 2, "JPY": 0,
    "KRW": 0, "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2, "SEK": 2, "SGD": 2, "USD": 2,
}

# The raw_coinbase contract (docs/raw_tables.md), declared in the source schema (common.declared_schema).
COLUMNS: dict[str, dict[str, dict]] = {"charges": {
    name: {"data_type": data_type, "nullable": name != "id",
           **({"timezone": False} if data_type == "timestamp" else {})}
    for name, data_type in (
        ("id", "text"), ("code", "text"), ("created_at", "timestamp"), ("status", "text"),
        ("completed_at", "timestamp"), ("amount", "bigint"), ("currency", "text"), ("customer_id", "text"),
        ("metadata_json", "text"), ("currency_exponent", "bigint"),
    )
}}
