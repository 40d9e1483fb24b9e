"""Stripe paging with retries, and the mapping of Stripe objects to raw_stripe rows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import stripe
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from statex_bi.exceptions import RecordError, SourceError
from statex_bi.sources.common import RecordGuard, pseudonymise
from statex_bi.sources.stripe import settings

CURRENCY = re.compile(r"^[a-z]{3}$")


def make_client(api_key: str, api_base: str) -> stripe.StripeClient:
    """A Stripe client for `api_base` (Stripe's own, or a sandbox), with the SDK's network retries."""
    return stripe.StripeClient(
        api_key, base_addresses={"api": api_base}, max_network_retries=settings.SDK_NETWORK_RETRIES
    )


def _retryable(exc: BaseException) -> bool:
    # The SDK retries what it knows to be transient (connection errors, 5xx) itself and does not retry
    # 429; a body cut off mid-way reaches us as an APIConnectionError the SDK chose not to retry.
    if isinstance(exc, stripe.RateLimitError):
        return True
    return isinstance(exc, stripe.APIConnectionError) and not exc.should_retry


class _WaitRetryAfter(wait_exponential):
    """Exponential backoff, or the server's Retry-After (in seconds) when it sends one."""

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        headers = getattr(exc, "headers", None) or {}
        retry_after = next((str(v) for k, v in headers.items() if k.lower() == "retry-after"), "")
        if retry_after.strip().isdigit():
            return min(float(retry_after), self.max)
        return super().__call__(retry_state)


def list_pages(
    client: stripe.StripeClient, endpoint: str, params: dict[str, Any], progress: Callable[[str], None]
) -> Iterator[list[dict[str, Any]]]:
    """Every page of a Stripe list endpoint, newest first, as plain dicts.

    Pages one request at a time with `starting_after` (what `auto_paging_iter` does) so that each page
    is retried on its own and reported as it arrives.

    Args:
        client: the Stripe client.
        endpoint: `charges`, `refunds` or `balance_transactions`.
        params: list parameters (`limit`, `created`).
        progress: receives one line per page.

    Returns:
        An iterator of pages.

    Raises:
        SourceError: a request failed for good (after the retries) or the key was refused.
    """
    service = getattr(client.v1, endpoint)
    path = f"/v1/{endpoint}"
    cursor: str | None = None
    number = 0
    while True:
        page_params = {**params, "starting_after": cursor} if cursor else dict(params)
        page = _fetch(lambda p=page_params: service.list(params=p), path)
        objects = [item.to_dict() for item in page.data]
        number += 1
        progress(f"{settings.SOURCE}: {endpoint} page {number}: {len(objects)} objects")
        yield objects
        if not page.has_more or not objects:
            return
        cursor = objects[-1].get("id")
        if not isinstance(cursor, str) or not cursor:
            raise SourceError(settings.SOURCE, path, f"page {number} ends with an object without an id; cannot page on")


def _fetch(call: Callable[[], Any], path: str) -> Any:
    retrying = Retrying(
        retry=retry_if_exception(_retryable),
        wait=_WaitRetryAfter(multiplier=settings.RETRY_BACKOFF_SECONDS, max=settings.RETRY_MAX_DELAY_SECONDS),
        stop=stop_after_attempt(settings.RETRY_ATTEMPTS),
        reraise=True,
    )
    try:
        return retrying(call)
    except stripe.AuthenticationError as exc:
        raise SourceError(settings.SOURCE, path, f"the API key was refused (check ${settings.API_KEY_ENV}): "
                          f"{exc.user_message}") from exc
    except stripe.StripeError as exc:
        status = f"HTTP {exc.http_status}: " if exc.http_status else ""
        raise SourceError(settings.SOURCE, path, f"{type(exc).__name__}: {status}{exc.user_message}") from exc


# --- rows -------------------------------------------------------------------------------------


class _Record:
    """Field access on one Stripe object that names the object and field when a value is wrong."""

    def __init__(self, endpoint: str, obj: dict[str, Any]) -> None:
        self.endpoint = f"/v1/{endpoint}"
        self.obj = obj
        raw_id = obj.get("id")
        self.id = raw_id if isinstance(raw_id, str) and raw_id else None
        if self.id is None:
            raise self.error("id", f"missing or not a string: {raw_id!r}")

    def error(self, field: str, message: str) -> RecordError:
        return RecordError(settings.SOURCE, self.endpoint, self.id or "(no id)", field, message)

    def text(self, field: str) -> str | None:
        value = self.obj.get(field)
        if isinstance(value, dict):  # an expanded object: keep its id
            value = value.get("id")
        if value is not None and not isinstance(value, str):
            raise self.error(field, f"expected a string, got {value!r}")
        return value

    def integer(self, field: str) -> int:
        value = self.obj.get(field)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(field, f"expected an integer amount in minor units, got {value!r}")
        return value

    def boolean(self, field: str) -> bool:
        value = self.obj.get(field)
        if not isinstance(value, bool):
            raise self.error(field, f"expected true or false, got {value!r}")
        return value

    def currency(self) -> str:
        value = self.obj.get("currency")
        if not isinstance(value, str) or not CURRENCY.match(value):
            raise self.error("currency", f"expected a three-letter ISO 4217 code, got {value!r}")
        return value.upper()

    def created(self) -> datetime:
        value = self.integer("created")
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


def charge_row(obj: dict[str, Any]) -> dict[str, Any]:
    """A raw_stripe.charges row; the customer is the pseudonymised billing e-mail (the same identifier
    PayPal and Coinbase rows use), or the Stripe customer id when the charge has no e-mail.

    Raises:
        RecordError: a field is missing or malformed.
    """
    record = _Record("charges", obj)
    billing = obj.get("billing_details") if isinstance(obj.get("billing_details"), dict) else {}
    identity = billing.get("email") or obj.get("receipt_email") or record.text("customer")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise record.error("metadata", f"expected an object, got {metadata!r}")
    return {
        "id": record.id,
        "created": record.created(),
        "amount": record.integer("amount"),
        "amount_refunded": record.integer("amount_refunded"),
        "currency": record.currency(),
        "status": record.text("status"),
        "paid": record.boolean("paid"),
        "refunded": record.boolean("refunded"),
        "failure_code": record.text("failure_code"),
        "customer_id": pseudonymise(identity),
        "payment_intent": record.text("payment_intent"),
        "balance_transaction": record.text("balance_transaction"),
        "metadata_json": json.dumps(metadata, sort_keys=True),
        **_exponent(record),
    }


def refund_row(obj: dict[str, Any]) -> dict[str, Any]:
    """A raw_stripe.refunds row.

    Raises:
        RecordError: a field is missing or malformed.
    """
    record = _Record("refunds", obj)
    return {
        "id": record.id,
        "charge": record.text("charge"),
        "created": record.created(),
        "amount": record.integer("amount"),
        "currency": record.currency(),
        "status": record.text("status"),
        "reason": record.text("reason"),
        **_exponent(record),
    }


def balance_transaction_row(obj: dict[str, Any]) -> dict[str, Any]:
    """A raw_stripe.balance_transactions row (fees are the `fee` and `net` columns).

    Raises:
        RecordError: a field is missing or malformed.
    """
    record = _Record("balance_transactions", obj)
    return {
        "id": record.id,
        "source": record.text("source"),
        "type": record.text("type"),
        "reporting_category": record.text("reporting_category"),
        "created": record.created(),
        "amount": record.integer("amount"),
        "fee": record.integer("fee"),
        "net": record.integer("net"),
        "currency": record.currency(),
        "status": record.text("status"),
        **_exponent(record),
    }


def _exponent(record: _Record) -> dict[str, Any]:
    """The decimals of Stripe's integer amounts in the record's currency (None for a currency Stripe
    does not list: the record guard quarantines it)."""
    return {"currency_exponent": settings.CURRENCY_EXPONENTS.get(record.currency())}


def guards(now: datetime | None = None) -> tuple[dict[str, RecordGuard], dict[str, tuple[int, str]]]:
    """The checks each endpoint's rows pass before they load (and move the cursor), and the charges
    they know: charge id -> (amount, currency).

    A charge's `amount_refunded` may not exceed its amount; a refund may not exceed its charge, checked
    against the charges of this load (recorded by the charges guard as they pass) and those already
    loaded (the resource adds them to the known charges from the warehouse). A refund whose charge is
    in neither (a charge the list has not reached yet) is left to the model tests.
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    known_charges: dict[str, tuple[int, str]] = {}

    def refunded_within_amount(row: dict) -> tuple[str, str] | None:
        if row["amount_refunded"] < 0 or row["amount_refunded"] > row["amount"]:
            return "amount_refunded", f"refunded {row['amount_refunded']} of a charge of {row['amount']}"
        known_charges[row["id"]] = (row["amount"], row["currency"])
        return None

    def refund_within_charge(row: dict) -> tuple[str, str] | None:
        charge = known_charges.get(row["charge"] or "")
        if charge is not None and (row["amount"] > charge[0] or row["currency"] != charge[1]):
            return "amount", (f"refund of {row['amount']} {row['currency']} is larger than its charge "
                              f"{row['charge']} of {charge[0]} {charge[1]}")
        return None

    currencies = set(settings.CURRENCY_EXPONENTS)
    common = {"source": settings.SOURCE, "key": ("id",), "timestamps": ("created",), "currencies": currencies,
              "now": now}
    charge_guard = RecordGuard(endpoint="/v1/charges", positive=("amount",), rules=(refunded_within_amount,),
                               **common)
    refund_guard = RecordGuard(endpoint="/v1/refunds", positive=("amount",), rules=(refund_within_charge,),
                               **common)
    return {
        "charges": charge_guard,
        "refunds": refund_guard,
        "balance_transactions": RecordGuard(endpoint="/v1/balance_transactions", **common),
    }, known_charges


ROW_BUILDERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "charges": charge_row,
    "refunds": refund_row,
    "balance_transactions": balance_transaction_row,
}
