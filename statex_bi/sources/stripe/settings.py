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

# The currencies Stripe charges in (stripe.com/docs/currencies), upper case, and the decimals of the
# integer amounts Stripe sends in each: Stripe's own list, not ISO 4217's. Zero-decimal currencies
# have 0; ISK, HUF, TWD and UGX are sent with two decimals although ISO gives them 0 (HUF, TWD: 2);
# BHD, JOD, KWD, OMR and TND with three. Any other currency has two. A currency not listed here is
# quarantined as unknown.
_ZERO_DECIMAL = "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF"
_THREE_DECIMAL = "BHD JOD KWD OMR TND"
_TWO_DECIMAL = (
    "USD AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BWP BYN BZD CAD CDF CHF CNY "
    "COP CRC CVE CZK DKK DOP DZD EGP ETB EUR FJD FKP GBP GEL GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR ISK JMD "
    "KES KGS KHR KYD KZT LAK LBP LKR LRD LSL MAD MDL MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SEK SGD SHP SLE SOS SRD STD SZL THB TJS TOP TRY TTD "
    "TWD TZS UAH UGX UYU UZS WST XCD YER ZAR ZMW"
)
CURRENCY_EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _TWO_DECIMAL.split()},
    **{code: 0 for code in _ZERO_DECIMAL.split()},
    **{code: 3 for code in _THREE_DECIMAL.split()},
}

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
        balance_transaction="text", metadata_json="text", currency_exponent="bigint",
    ),
    "refunds": _columns(
        id="text", charge="text", created="timestamp", amount="bigint", currency="text", status="text", reason="text",
        currency_exponent="bigint",
    ),
    "balance_transactions": _columns(
        id="text", source="text", type="text", reporting_category="text", created="timestamp", amount="bigint",
        fee="bigint", net="bigint", currency="text", status="text", currency_exponent="bigint",
    ),
}
