"""PayPal's Transaction Search API for the simulated company.

`POST /v1/oauth2/token` (Basic auth with the client id and secret, form `grant_type=client_credentials`)
returns a Bearer token; `GET /v1/reporting/transactions` lists the transactions whose initiation date
lies in [start_date, end_date] (both required, RFC 3339 with seconds, at most 31 days apart), oldest
first, paged by `page` / `page_size` (1-500, default 100) with `total_items` and `total_pages`, and
`fields` choosing the sections (default `transaction_info`, `all` for every one). As real PayPal
does, dates carry `+0000` offsets (PayPal's own spec only allows `Z` or `+hh:mm`), money is
`{"currency_code", "value": "12.34"}` with decimal strings, fees are negative, and refunds are T1107
transactions with negative amounts that name the payment in `paypal_reference_id`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from statex_bi.demo.entities import Customer
from statex_bi.demo.growth import Customers
from statex_bi.demo.payments import PaymentsData, PayPalTransaction
from statex_bi.demo.sandbox import Request, Response, Sandbox

CLIENT_ID = "AStatexDemoSandboxClientId0000000000000000000000000000000000000000000000000000000000"
CLIENT_SECRET = "EStatexDemoSandboxSecret00000000000000000000000000000000000000000000000000000000000"
ACCOUNT_NUMBER = "STATEXDEMO42X"
TOKEN_TTL_SECONDS = 32_400
MAX_RANGE = timedelta(days=31)
SECTIONS = ("transaction_info", "payer_info", "shipping_info", "cart_info", "store_info", "auction_info",
            "incentive_info")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})$")
EXPONENTS = {"JPY": 0, "HUF": 0, "TWD": 0}  # every other PayPal currency has two decimals
INVALID_REQUEST = "Request is not well-formed, syntactically incorrect, or violates schema."


def environment(url: str) -> dict[str, str]:
    """The variables that point `statex_bi.sources.paypal` at a sandbox at `url`."""
    return {"PAYPAL_CLIENT_ID": CLIENT_ID, "PAYPAL_CLIENT_SECRET": CLIENT_SECRET, "PAYPAL_API_BASE": url}


def build(world) -> Sandbox:
    """The PayPal sandbox of a `World` (not started): each transaction's detail is built when a page holds it."""
    customers = world.growth.customers
    return serve([Deferred(t, customers) for t in world.payments.paypal_transactions], world.payments.now)


def paypal_date(moment: datetime) -> str:
    """A naive UTC datetime as PayPal writes it: `2024-01-15T10:00:00+0000`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def money(minor: int, currency: str) -> dict[str, str]:
    """PayPal's money object for an amount in minor units."""
    exponent = EXPONENTS.get(currency, 2)
    return {"currency_code": currency, "value": f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"}


def render(payments: PaymentsData, customers: Customers) -> list[dict[str, Any]]:
    """PayPal's transaction details (every section) for the payments, oldest first."""
    return [Deferred(t, customers).detail() for t in payments.paypal_transactions]


@dataclass(frozen=True)
class Deferred:
    """A transaction whose detail is built when a page holds it: some 5 KB of JSON in memory, where this
    holds a reference to the transaction the payments keep anyway."""

    transaction: PayPalTransaction
    customers: Customers

    def detail(self) -> dict[str, Any]:
        return _detail(self.transaction, self.customers.get(self.transaction.customer_key))

    def filtered(self) -> dict[str, Any]:
        """What the search filters on, as in the detail's `transaction_info`."""
        txn = self.transaction
        return {"transaction_status": txn.status, "transaction_event_code": txn.event_code,
                "transaction_id": txn.transaction_id, "transaction_amount": {"currency_code": txn.currency}}


def _detail(txn: PayPalTransaction, customer: Customer) -> dict[str, Any]:
    info: dict[str, Any] = {
        "paypal_account_id": txn.payer_id,
        "transaction_id": txn.transaction_id,
        "transaction_event_code": txn.event_code,
        "transaction_initiation_date": paypal_date(txn.initiated_at),
        "transaction_updated_date": paypal_date(txn.updated_at),
        "transaction_amount": money(txn.amount, txn.currency),
        "transaction_status": txn.status,
        "transaction_subject": "Statex prototype package",
        "invoice_id": txn.invoice_id,
        "custom_field": json.dumps(txn.custom, separators=(",", ":")),
        "protection_eligibility": "01" if txn.status == "S" else "02",
    }
    if txn.fee:
        info["fee_amount"] = money(txn.fee, txn.currency)
    if txn.reference_id:
        info["paypal_reference_id"] = txn.reference_id
        info["paypal_reference_id_type"] = "TXN"
    given, _, surname = customer.name.partition(" ")
    unit = money(abs(txn.amount), txn.currency)
    return {
        "transaction_info": info,
        "payer_info": {
            "account_id": txn.payer_id,
            "email_address": customer.email,
            "address_status": "Y",
            "payer_status": "Y",
            "payer_name": {"given_name": given, "surname": surname, "alternate_full_name": customer.name},
            "country_code": customer.country,
        },
        "shipping_info": {},
        "cart_info": {"item_details": [{
            "item_code": txn.invoice_id, "item_name": "Statex prototype package", "item_quantity": "1",
            "item_unit_price": unit, "item_amount": unit, "total_item_amount": unit,
        }]} if txn.event_code == "T0006" else {},
        "store_info": {},
        "auction_info": {},
        "incentive_info": {},
    }


class _Tokens:
    """Issued access tokens and when they expire (monotonic seconds)."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = "A21AA" + secrets.token_urlsafe(48)
        with self._lock:
            self._expiry[token] = time.monotonic() + self.ttl
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            return self._expiry.get(token, 0.0) > time.monotonic()


def serve(details: list[dict[str, Any]] | list[Deferred], now: datetime, token_ttl: int = TOKEN_TTL_SECONDS) -> Sandbox:
    """A PayPal sandbox serving `details` (as `render` returns them; tests may alter them first).

    Args:
        details: transaction details, every section present, or `Deferred` ones.
        now: the moment the data is current to (`last_refreshed_datetime`), naive UTC.
        token_ttl: lifetime of issued tokens in seconds (`expires_in`).
    """
    tokens = _Tokens(token_ttl)
    sandbox = Sandbox("paypal", auth=_bearer_check(tokens), error_body=_error_body)
    ordered = sorted(details, key=_initiated)

    @sandbox.route("POST", "/v1/oauth2/token", public=True)
    def token(request: Request) -> Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization", "") != f"Basic {expected}":
            return Response(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if request.form().get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type",
                                  "error_description": "unsupported grant_type"})
        return Response(200, {
            "scope": "https://uri.paypal.com/services/reporting/search/read",
            "access_token": tokens.issue(), "token_type": "Bearer", "app_id": "APP-80W284485P519543T",
            "expires_in": token_ttl, "nonce": f"{now:%Y-%m-%dT%H:%M:%SZ}{secrets.token_hex(8)}",
        })

    @sandbox.route("GET", "/v1/reporting/transactions")
    def transactions(request: Request) -> Response:
        return _search(request, ordered, now)

    return sandbox


def _initiated(detail: dict[str, Any] | Deferred) -> datetime:
    if isinstance(detail, Deferred):
        return detail.transaction.initiated_at
    return _parse_date(detail["transaction_info"]["transaction_initiation_date"])


def _filtered(detail: dict[str, Any] | Deferred) -> dict[str, Any]:
    return detail.filtered() if isinstance(detail, Deferred) else detail["transaction_info"]


def _whole(detail: dict[str, Any] | Deferred) -> dict[str, Any]:
    return detail.detail() if isinstance(detail, Deferred) else detail


def _parse_date(text: str) -> datetime:
    """An RFC 3339 date (`Z`, `+hh:mm` or PayPal's `+hhmm`) as a naive UTC datetime."""
    if not DATE_PATTERN.match(text):
        raise ValueError(text)
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def _invalid(field: str, value: str | None, issue: str, description: str) -> Response:
    detail = {"field": field, "value": value or "", "location": "query", "issue": issue, "description": description}
    return Response(400, {"name": "INVALID_REQUEST", "message": INVALID_REQUEST, "debug_id": _debug_id(issue),
                          "details": [detail], "links": []})


def _search(request: Request, ordered: list[dict[str, Any]] | list[Deferred], now: datetime) -> Response:
    bounds: dict[str, datetime] = {}
    for name in ("start_date", "end_date"):
        value = request.arg(name)
        if not value:
            return _invalid(name, value, "MISSING_REQUIRED_PARAMETER", f"{name} is required.")
        try:
            bounds[name] = _parse_date(value)
        except ValueError:
            return _invalid(name, value, "INVALID_PARAMETER_SYNTAX",
                            f"{name} must be an RFC 3339 date and time with seconds.")
    start, end = bounds["start_date"], bounds["end_date"]
    if end < start:
        return _invalid("end_date", request.arg("end_date"), "INVALID_DATE_RANGE",
                        "end_date must not be earlier than start_date.")
    if end - start > MAX_RANGE:
        return _invalid("end_date", request.arg("end_date"), "Date range is greater than 31 days",
                        "The maximum supported range between start_date and end_date is 31 days.")
    numbers: dict[str, int] = {}
    for name, default, low, high in (("page_size", 100, 1, 500), ("page", 1, 1, 2_147_483_647)):
        value = request.arg(name, str(default)) or ""
        if not value.isdigit() or not low <= int(value) <= high:
            return _invalid(name, value, "INVALID_PARAMETER_VALUE", f"{name} must be between {low} and {high}.")
        numbers[name] = int(value)
    fields = [f.strip() for f in (request.arg("fields") or "transaction_info").split(",")]
    sections = SECTIONS if "all" in fields else tuple(f for f in fields if f in SECTIONS)
    if not sections or len(sections) < len([f for f in fields if f != "all"]):
        return _invalid("fields", request.arg("fields"), "INVALID_PARAMETER_VALUE",
                        f"fields must be 'all' or a comma-separated list of {', '.join(SECTIONS)}.")
    equal = {key: request.arg(name) for name, key in (("transaction_status", "transaction_status"),
                                                       ("transaction_type", "transaction_event_code"),
                                                       ("transaction_id", "transaction_id"),
                                                       ("transaction_currency", "currency_code"))
             if request.arg(name)}
    matching = [d for d in ordered if start <= _initiated(d) <= end and _matches(_filtered(d), equal)]
    size, page = numbers["page_size"], numbers["page"]
    total_pages = math.ceil(len(matching) / size)
    chunk = matching[(page - 1) * size: page * size]
    base = f"http://{request.headers.get('host', '127.0.0.1')}{request.path}"
    links = [{"href": f"{base}?{urlencode({**_flat(request.query), 'page': page})}", "rel": "self", "method": "GET"}]
    if page < total_pages:
        links.append({"href": f"{base}?{urlencode({**_flat(request.query), 'page': page + 1})}", "rel": "next",
                      "method": "GET"})
        links.append({"href": f"{base}?{urlencode({**_flat(request.query), 'page': total_pages})}", "rel": "last",
                      "method": "GET"})
    return Response(200, {
        "transaction_details": [{key: d[key] for key in sections if key in d} for d in map(_whole, chunk)],
        "account_number": ACCOUNT_NUMBER,
        "start_date": paypal_date(start),
        "end_date": paypal_date(min(end, now)),
        "last_refreshed_datetime": paypal_date(now),
        "page": page,
        "total_items": len(matching),
        "total_pages": total_pages,
        "links": links,
    }, {"Paypal-Debug-Id": _debug_id(str(request.query))})


def _matches(info: dict[str, Any], equal: dict[str, str | None]) -> bool:
    for key, wanted in equal.items():
        value = info.get("transaction_amount", {}).get(key) if key == "currency_code" else info.get(key)
        if value != wanted:
            return False
    return True


def _flat(query: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[0] for key, values in query.items()}


def _debug_id(text: str) -> str:
    return hashlib.sha256(f"{text}{time.monotonic_ns()}".encode()).hexdigest()[:13]


def _error_body(status: int) -> dict:
    names = {
        429: ("RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting."),
        404: ("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
        503: ("SERVICE_UNAVAILABLE", "Service Unavailable."),
    }
    name, message = names.get(status, ("INTERNAL_SERVER_ERROR", "An internal server error has occurred."))
    return {"name": name, "message": message, "debug_id": _debug_id(name)}


def _bearer_check(tokens: _Tokens) -> Callable[[Request], Response | None]:
    def check(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and tokens.valid(header.removeprefix("Bearer ").strip()):
            return None
        return Response(401, {
            "name": "AUTHENTICATION_FAILURE",
            "message": "Authentication failed due to missing authorization header, or invalid authentication "
                       "credentials.",
            "debug_id": _debug_id(header), "details": [], "links": [],
        })

    return check
