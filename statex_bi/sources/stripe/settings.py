"""Constants of the Stripe source."""

from __future__ import annotations

from datetime import timedelta

SOURCE = "stripe"
API_KEY_ENV = "STRIPE_API_KEY"
API_BASE_ENV = "STRIPE_API_BASE"
DEFAULT_API_BASE = "https://api.stripe.com"

ENDPOINTS = ("charges", "refunds", "balance_transactions")
PAGE_SIZE = 100  # Stripe's maximum
# Charges change after they are created (refunded, disputed) and balance transactions turn from
# pending to available about a week later; each run re-reads this much before the newest `created`.
LOOKBACK = timedelta(days=35)

SDK_NETWORK_RETRIES = 2  # the SDK's own retries: connection errors, 409 and 5xx
RETRY_ATTEMPTS = 5  # ours, per page: 429 (not retried by the SDK) and broken response bodies
RETRY_BACKOFF_SECONDS = 0.5
RETRY_MAX_DELAY_SECONDS = 30.0


def _columns(**types: str) -> dict[str, dict]:
    """dlt column hints; a fresh dict per column, because dlt writes into them."""
    hints = {}
    for name, data_type in types.items():
        hints[name] = {"data_type": data_type, "nullable": name != "id"}
        if data_type == "timestamp":
            hints[name]["timezone"] = False  # naive TIMESTAMP, UTC meant (docs/raw_tables.md)
    return hints


# The raw_stripe contract (docs/raw_tables.md), declared in the source schema (common.declared_schema).
COLUMNS: dict[str, dict[str, dict]] = {
    "charges": _columns(
        id="text", created="timestamp", amount="bigint", amount_refunded="bigint", currency="text", status="text",
        paid="bool", refunded="bool", failure_code="text", customer_id="text", payment_intent="text",
        balance_transaction="text", metadata_json="text",
    ),
    "refunds": _columns(
        id="text", charge="text", created="timestamp", amount="bigint", currency="text", status="text", reason="text",
    ),
    "balance_transactions": _columns(
        id="text", source="text", type="text", reporting_category="text", created="timestamp", amount="bigint",
        fee="bigint", net="bigint", currency="text", status="text",
    ),
}
