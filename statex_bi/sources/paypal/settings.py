"""Constants of the PayPal source."""

from __future__ import annotations

from datetime import timedelta

SOURCE = "paypal"
CLIENT_ID_ENV = "PAYPAL_CLIENT_ID"
CLIENT_SECRET_ENV = "PAYPAL_CLIENT_SECRET"
API_BASE_ENV = "PAYPAL_API_BASE"
DEFAULT_API_BASE = "https://api-m.paypal.com"
TOKEN_PATH = "/v1/oauth2/token"
TRANSACTIONS_PATH = "/v1/reporting/transactions"

WINDOW = timedelta(days=31)  # Transaction Search refuses longer date ranges
PAGE_SIZE = 500  # PayPal's maximum
HISTORY = timedelta(days=3 * 365)  # what PayPal keeps; the first load starts here unless told otherwise
# Transactions reach the search up to three hours late and pending ones settle days later; each
# run re-reads this much before the newest initiation date and merges on transaction_id.
LOOKBACK = timedelta(days=3)
REFUND_EVENT_CODE = "T1107"  # a payment refund: negative, naming its payment in paypal_reference_id
TOKEN_REFRESH_MARGIN_SECONDS = 60  # renew a token this long before PayPal says it expires

REQUEST_TIMEOUT_SECONDS = 60.0
RETRY_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = 0.5
RETRY_MAX_DELAY_SECONDS = 30.0

# Decimal places of the currencies PayPal accepts (developer.paypal.com/reference/currency-codes): PayPal's,
# not ISO 4217's (HUF and TWD have 2 in ISO, 0 at PayPal). Stored with each row as `currency_exponent`.
CURRENCY_EXPONENTS = {
    "AUD": 2, "BRL": 2, "CAD": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "HKD": 2, "HUF": 0, "ILS": 2, "JPY": 0,
    "MYR": 2, "MXN": 2, "TWD": 0, "NZD": 2, "NOK": 2, "PHP": 2, "PLN": 2, "GBP": 2, "RUB": 2, "SGD": 2, "SEK": 2,
    "CHF": 2, "THB": 2, "USD": 2,
}

# The raw_paypal contract (docs/raw_tables.md), declared in the source schema (common.declared_schema).
COLUMNS: dict[str, dict[str, dict]] = {"transactions": {
    name: {"data_type": data_type, "nullable": name != "transaction_id",
           **({"timezone": False} if data_type == "timestamp" else {})}
    for name, data_type in (
        ("transaction_id", "text"), ("event_code", "text"), ("initiation_date", "timestamp"),
        ("updated_date", "timestamp"), ("status", "text"), ("amount", "bigint"), ("fee", "bigint"),
        ("currency", "text"), ("customer_id", "text"), ("invoice_id", "text"), ("reference_id", "text"),
        ("metadata_json", "text"), ("currency_exponent", "bigint"),
    )
}}
