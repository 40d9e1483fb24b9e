"""PayPal HTTP (OAuth token, Transaction Search in 31-day windows) and the mapping to raw_paypal rows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pendulum
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import RequestException

from statex_bi.exceptions import RecordError, SourceError
from statex_bi.sources.common import RecordGuard, decimal_to_minor, pseudonymise, retrying_session
from statex_bi.sources.paypal import settings

# RFC 3339 as PayPal writes it: `+0000` (no colon) in practice, `Z` or `+00:00` in its spec.
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


class PayPalClientCredentials(OAuth2ClientCredentials):
    """dlt's client-credentials flow as PayPal wants it: id and secret as HTTP Basic auth, and the
    token kept until shortly before it expires."""

    def build_access_token_request(self) -> dict[str, Any]:
        return {
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "auth": (self.client_id, self.client_secret),
            "data": {"grant_type": "client_credentials"},
        }

    def is_token_expired(self) -> bool:
        return pendulum.now().add(seconds=settings.TOKEN_REFRESH_MARGIN_SECONDS) >= self.token_expiry


def make_client(api_base: str, client_id: str, client_secret: str) -> RESTClient:
    """A RESTClient for PayPal's API: OAuth token, and retries (429, 5xx, dropped connections)
    that honour Retry-After."""
    session = retrying_session(settings.REQUEST_TIMEOUT_SECONDS, settings.RETRY_ATTEMPTS,
                               settings.RETRY_BACKOFF_SECONDS, settings.RETRY_MAX_DELAY_SECONDS)
    auth = PayPalClientCredentials(
        access_token_url=api_base.rstrip("/") + settings.TOKEN_PATH,
        client_id=client_id,
        client_secret=client_secret,
        session=session,
    )
    return RESTClient(base_url=api_base, auth=auth, session=session, data_selector="transaction_details")


def windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end] cut into inclusive, whole-second windows of at most 31 days, oldest first."""
    start = start.replace(microsecond=0)
    result = []
    while start <= end:
        stop = min(start + settings.WINDOW - timedelta(seconds=1), end)
        result.append((start, stop))
        start = stop + timedelta(seconds=1)
    return result


def rfc3339(moment: datetime) -> str:
    """A naive UTC datetime as an RFC 3339 string with seconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def search(
    client: RESTClient, start: datetime, end: datetime, page_size: int, progress: Callable[[str], None]
) -> Iterator[list[dict[str, Any]]]:
    """Every page of transaction details (all sections) initiated in [start, end], window by window.

    Args:
        client: from `make_client`.
        start: first moment, naive UTC.
        end: last moment, naive UTC.
        page_size: transactions per request, 1-500.
        progress: receives one line per page.

    Returns:
        An iterator of pages.

    Raises:
        SourceError: the token or a page could not be fetched (after the retries).
    """
    for window_start, window_end in windows(start, end):
        params = {"start_date": rfc3339(window_start), "end_date": rfc3339(window_end), "fields": "all",
                  "page_size": page_size}
        pages = client.paginate(
            settings.TRANSACTIONS_PATH, params=params,
            paginator=PageNumberPaginator(base_page=1, page_param="page", total_path="total_pages"),
        )
        number = 0
        try:
            for page in pages:
                number += 1
                progress(f"{settings.SOURCE}: transactions {window_start:%Y-%m-%d}..{window_end:%Y-%m-%d} "
                         f"page {number}: {len(page)} transactions")
                yield list(page)
        except RequestException as exc:
            raise _source_error(exc) from exc
        except ValueError as exc:  # a 200 whose body is not JSON
            raise SourceError(settings.SOURCE, settings.TRANSACTIONS_PATH, f"unreadable response: {exc}") from exc


def _source_error(exc: RequestException) -> SourceError:
    response = exc.response
    url = exc.request.url if exc.request is not None else None
    endpoint = settings.TOKEN_PATH if url and settings.TOKEN_PATH in url else settings.TRANSACTIONS_PATH
    if response is None:
        return SourceError(settings.SOURCE, endpoint, f"{type(exc).__name__}: {exc}")
    try:
        body = response.json()
        detail = body.get("message") or body.get("error_description") or body.get("name") or str(body)
        issues = "; ".join(d.get("issue", "") for d in body.get("details") or [])
    except ValueError:
        detail, issues = response.text[:200], ""
    credentials = f" (check ${settings.CLIENT_ID_ENV} and ${settings.CLIENT_SECRET_ENV})"
    hint = credentials if response.status_code == 401 else ""
    return SourceError(settings.SOURCE, endpoint,
                       f"HTTP {response.status_code}: {detail}{' - ' + issues if issues else ''}{hint}")


# --- rows -------------------------------------------------------------------------------------


def parse_date(text: Any) -> datetime:
    """A PayPal date (`+0000`, `+00:00` or `Z`) as a naive UTC datetime.

    Raises:
        ValueError: not an RFC 3339 date and time with seconds.
    """
    if not isinstance(text, str) or not DATE.match(text):
        raise ValueError(f"expected an RFC 3339 date and time, got {text!r}")
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def to_minor(money: Any) -> tuple[int, str]:
    """(amount in minor units, currency) of a PayPal money object `{"currency_code", "value"}`.

    Raises:
        ValueError: not a money object, an unknown currency, or more decimals than the currency has.
    """
    if not isinstance(money, dict):
        raise ValueError(f"expected a money object, got {money!r}")
    return decimal_to_minor(money.get("value"), money.get("currency_code"), settings.CURRENCY_EXPONENTS)


def _metadata(custom_field: Any) -> str | None:
    """custom_field is the shop's custom_id: JSON by Statex's convention, kept as text otherwise."""
    if custom_field in (None, ""):
        return None
    try:
        parsed = json.loads(custom_field)
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        parsed = {"custom_field": str(custom_field)}
    return json.dumps(parsed, sort_keys=True)


def transaction_row(detail: dict[str, Any]) -> dict[str, Any]:
    """A raw_paypal.transactions row; the customer is the pseudonymised payer e-mail.

    Raises:
        RecordError: a field is missing or malformed.
    """
    info = detail.get("transaction_info") if isinstance(detail, dict) else None
    info = info if isinstance(info, dict) else {}
    record_id = info.get("transaction_id")
    if not isinstance(record_id, str) or not record_id:
        raise RecordError(settings.SOURCE, settings.TRANSACTIONS_PATH, "(no id)", "transaction_id",
                          f"missing or not a string: {record_id!r}")

    def field(name: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(info.get(name))
        except ValueError as exc:
            raise RecordError(settings.SOURCE, settings.TRANSACTIONS_PATH, record_id, name, str(exc)) from exc

    amount, currency = field("transaction_amount", to_minor)
    fee = 0  # PayPal leaves fee_amount out when it charges none (denied payments, refunds)
    if info.get("fee_amount") is not None:
        fee, fee_currency = field("fee_amount", to_minor)
        if fee_currency != currency:
            raise RecordError(settings.SOURCE, settings.TRANSACTIONS_PATH, record_id, "fee_amount",
                              f"fee in {fee_currency} but the amount in {currency}")
    payer = detail.get("payer_info") if isinstance(detail.get("payer_info"), dict) else {}
    updated = info.get("transaction_updated_date")
    return {
        "transaction_id": record_id,
        "event_code": info.get("transaction_event_code"),
        "initiation_date": field("transaction_initiation_date", parse_date),
        "updated_date": None if updated is None else field("transaction_updated_date", parse_date),
        "status": info.get("transaction_status"),
        "amount": amount,
        "fee": fee,
        "currency": currency,
        "customer_id": pseudonymise(payer.get("email_address") or payer.get("account_id")
                                    or info.get("paypal_account_id")),
        "invoice_id": info.get("invoice_id"),
        "reference_id": info.get("paypal_reference_id"),
        "metadata_json": _metadata(info.get("custom_field")),
        "currency_exponent": settings.CURRENCY_EXPONENTS[currency],
    }


def guard(now: datetime | None = None) -> tuple[RecordGuard, dict[str, tuple[int, str]]]:
    """The checks a transaction passes before it loads (and moves the cursor), and the payments it knows:
    transaction id -> (amount, currency).

    No transaction moves zero; a refund (T1107) is negative and not larger than the payment it names in
    `reference_id`, when that payment is known: loaded earlier (the resource adds those) or earlier in
    this load (the search runs oldest first, so a payment comes before its refunds).
    """
    payments: dict[str, tuple[int, str]] = {}

    def sensible_amount(row: dict) -> tuple[str, str] | None:
        amount, currency = row["amount"], row["currency"]
        if amount == 0:
            return "transaction_amount", "a transaction of zero"
        if row["event_code"] == settings.REFUND_EVENT_CODE:
            payment = payments.get(row["reference_id"] or "")
            if amount > 0:
                return "transaction_amount", f"a refund of {amount} {currency} is positive (refunds are negative)"
            if payment is not None and (-amount > payment[0] or currency != payment[1]):
                return "transaction_amount", (f"refund of {-amount} {currency} is larger than its payment "
                                              f"{row['reference_id']} of {payment[0]} {payment[1]}")
        elif amount > 0:
            payments[row["transaction_id"]] = (amount, currency)
        return None

    checks = RecordGuard(settings.SOURCE, settings.TRANSACTIONS_PATH, ("transaction_id",),
                         timestamps=("initiation_date", "updated_date"), currencies=set(settings.CURRENCY_EXPONENTS),
                         rules=(sensible_amount,), now=now or datetime.now(UTC).replace(tzinfo=None))
    return checks, payments
