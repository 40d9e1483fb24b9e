"""Stripe's API for the simulated company: list charges, refunds and balance transactions.

Speaks what the stripe SDK (16.x) expects: `Authorization: Bearer sk_test_...`, GET parameters in the
query string (`created[gte]=...`), list envelopes `{"object": "list", "url", "has_more", "data"}`
newest first, `limit` 1-100 (default 10), `starting_after` / `ending_before` cursors, amounts in minor
units, lower-case currencies, unix-second timestamps, errors as `{"error": {"type", "message", ...}}`.
Charges carry no `refunds` list: Stripe stopped including it by default in API version 2022-11-15.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from statex_bi.demo.entities import Customer
from statex_bi.demo.growth import Customers
from statex_bi.demo.payments import PaymentsData, StripeBalanceTransaction, StripeCharge, StripeRefund
from statex_bi.demo.sandbox import Request, Response, Sandbox

API_KEY = "sk_test_51StatexDemoSandboxKey0000000000000000000000000000"
STATEMENT_DESCRIPTOR = "STATEX PROTOTYPE"
DESCRIPTION = "Statex prototype package"
FAILURE_MESSAGES = {
    "card_declined": ("Your card was declined.", "generic_decline"),
    "insufficient_funds": ("Your card has insufficient funds.", "insufficient_funds"),
    "expired_card": ("Your card has expired.", "expired_card"),
    "incorrect_cvc": ("Your card's security code is incorrect.", "incorrect_cvc"),
    "processing_error": ("An error occurred while processing your card. Try again in a little bit.",
                         "processing_error"),
}
CARD_BRANDS = ("visa", "mastercard", "amex")
LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "created[gte]", "created[gt]",
               "created[lte]", "created[lt]"}
# Per endpoint: the object type and the equality filters Stripe offers on it.
ENDPOINTS = {
    "charges": ("charge", {"customer", "payment_intent"}),
    "refunds": ("refund", {"charge", "payment_intent"}),
    "balance_transactions": ("balance_transaction", {"type", "source", "currency"}),
}


def environment(url: str) -> dict[str, str]:
    """The variables that point `statex_bi.sources.stripe` at a sandbox at `url`."""
    return {"STRIPE_API_KEY": API_KEY, "STRIPE_API_BASE": url}


def build(world) -> Sandbox:
    """The Stripe sandbox of a `World` (not started): each object's JSON is built when a page holds it."""
    return serve(render(world.payments, world.growth.customers, deferred=True))


@dataclass(frozen=True, slots=True)
class Deferred:
    """A Stripe object whose JSON is built when a page holds it: the fields lists filter and sort on (`keys`,
    shared by the endpoint's objects, and their values), and how to build the whole. A charge's JSON is some
    8 KB in memory, its Deferred a twentieth of that."""

    keys: tuple[str, ...]
    values: tuple[Any, ...]
    build: Callable[[], dict[str, Any]]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values[self.keys.index(key)] if key in self.keys else default


def render(payments: PaymentsData, customers: Customers, deferred: bool = False
           ) -> dict[str, list[dict] | list[Deferred]]:
    """Stripe's JSON objects for the payments, per endpoint (charges, refunds, balance_transactions);
    `deferred`: each a `Deferred`, built when served."""
    builders = {
        "charges": [partial(_customer_charge, c, customers) for c in payments.stripe_charges],
        "refunds": [partial(_refund, r) for r in payments.stripe_refunds],
        "balance_transactions": [partial(_balance_transaction, t) for t in payments.stripe_balance_transactions],
    }
    if not deferred:
        return {endpoint: [make() for make in makers] for endpoint, makers in builders.items()}
    objects: dict[str, list[dict] | list[Deferred]] = {}
    for endpoint, makers in builders.items():
        kept = ("id", "created", *sorted(ENDPOINTS[endpoint][1]))
        objects[endpoint] = [Deferred(kept, tuple(whole.get(key) for key in kept), make)
                             for make in makers for whole in (make(),)]
    return objects


def serve(objects: dict[str, list[dict] | list[Deferred]], api_key: str = API_KEY) -> Sandbox:
    """A Stripe sandbox serving `objects` (as `render` returns them; tests may alter them first)."""
    sandbox = Sandbox("stripe", auth=_auth(api_key), error_body=_error_body)
    for endpoint, (kind, filters) in ENDPOINTS.items():
        ordered = sorted(objects[endpoint], key=lambda o: (_sort_created(o), str(o.get("id"))), reverse=True)
        sandbox.route("GET", f"/v1/{endpoint}")(_list_handler(f"/v1/{endpoint}", kind, ordered, filters))
    return sandbox


def _sort_created(obj: dict) -> int:
    created = obj.get("created")
    return created if isinstance(created, int) else 0


def _unix(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:8], "big")


def _customer_charge(charge: StripeCharge, customers: Customers) -> dict[str, Any]:
    return _charge(charge, customers.get(charge.customer_key))


def _charge(charge: StripeCharge, customer: Customer) -> dict[str, Any]:
    succeeded = charge.status == "succeeded"
    seed = _digest(charge.id)
    brand = CARD_BRANDS[seed % len(CARD_BRANDS)]
    message, reason = FAILURE_MESSAGES.get(charge.failure_code or "", (None, None))
    return {
        "id": charge.id,
        "object": "charge",
        "amount": charge.amount,
        "amount_captured": charge.amount if succeeded else 0,
        "amount_refunded": charge.amount_refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": charge.balance_transaction,
        "billing_details": {
            "address": {"city": None, "country": customer.country, "line1": None, "line2": None,
                        "postal_code": None, "state": None},
            "email": customer.email,
            "name": customer.name,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": STATEMENT_DESCRIPTOR,
        "captured": succeeded,
        "created": _unix(charge.created),
        "currency": charge.currency.lower(),
        "customer": charge.stripe_customer,
        "description": DESCRIPTION,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": charge.failure_code,
        "failure_message": message,
        "fraud_details": {},
        "invoice": None,
        "livemode": False,
        "metadata": dict(charge.metadata),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None if succeeded else "try_again_later",
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": reason,
            "risk_level": "normal",
            "risk_score": seed % 60,
            "seller_message": "Payment complete." if succeeded else "The bank returned the decline code `"
            + (reason or "generic_decline") + "`.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        "paid": succeeded,
        "payment_intent": charge.payment_intent,
        "payment_method": "pm_1" + charge.id[4:],
        "payment_method_details": {
            "card": {
                "amount_authorized": charge.amount if succeeded else None,
                "brand": brand,
                "checks": {"address_line1_check": None, "address_postal_code_check": None,
                           "cvc_check": "fail" if charge.failure_code == "incorrect_cvc" else "pass"},
                "country": customer.country,
                "exp_month": 1 + seed % 12,
                "exp_year": charge.created.year + 1 + seed % 4,
                "fingerprint": charge.stripe_customer[4:] + "Fp",
                "funding": "credit" if seed % 3 else "debit",
                "installments": None,
                "last4": f"{seed % 10_000:04d}",
                "mandate": None,
                "network": brand,
                "network_token": {"used": False},
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": customer.email,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{charge.id}" if succeeded else None,
        "refunded": charge.refunded,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": charge.status,
        "transfer_data": None,
        "transfer_group": None,
    }


def _refund(refund: StripeRefund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "balance_transaction": refund.balance_transaction,
        "charge": refund.charge,
        "created": _unix(refund.created),
        "currency": refund.currency.lower(),
        # Set only for refunds that are not tied to a charge (customer balance refunds).
        "customer": None,
        "customer_account": None,
        "destination_details": {
            "card": {"reference": f"{_digest(refund.id) % 10**23:023d}", "reference_status": "available",
                     "reference_type": "acquirer_reference_number", "type": "refund"},
            "type": "card",
        },
        "metadata": {},
        "payment_intent": refund.payment_intent,
        "payment_method": None,
        "reason": refund.reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": refund.status,
        "transfer_reversal": None,
    }


def _balance_transaction(txn: StripeBalanceTransaction) -> dict[str, Any]:
    currency = txn.currency.lower()
    return {
        "id": txn.id,
        "object": "balance_transaction",
        "amount": txn.amount,
        "available_on": _unix(txn.available_on),
        "balance_type": "payments",
        "created": _unix(txn.created),
        "currency": currency,
        "description": DESCRIPTION if txn.type == "charge" else f"REFUND FOR CHARGE ({DESCRIPTION})",
        "exchange_rate": None,
        "fee": txn.fee,
        "fee_details": [
            {"amount": txn.fee, "application": None, "currency": currency,
             "description": "Stripe processing fees", "type": "stripe_fee"}
        ] if txn.fee else [],
        "net": txn.net,
        "reporting_category": txn.reporting_category,
        "source": txn.source,
        "status": txn.status,
        "type": txn.type,
    }


# --- HTTP ---------------------------------------------------------------------------------------


def _error(status: int, message: str, kind: str = "invalid_request_error", **extra: str) -> Response:
    return Response(status, {"error": {"message": message, "type": kind, **extra}},
                    {"Request-Id": f"req_{_digest(message) % 10**14:014d}"})


def _error_body(status: int) -> dict:
    if status == 429:
        return {"error": {"code": "rate_limit", "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
                          "message": "Too many requests hit the API too quickly. We recommend an exponential "
                          "backoff of your requests.", "type": "invalid_request_error"}}
    if status == 404:
        return {"error": {"message": "Unrecognized request URL.", "type": "invalid_request_error"}}
    return {"error": {"message": "An unknown error occurred", "type": "api_error"}}


def _auth(api_key: str) -> Callable[[Request], Response | None]:
    def check(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return _error(401, "You did not provide an API key. You need to provide your API key in the "
                          "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
        given = header.removeprefix("Bearer ").strip()
        if given != api_key:
            return _error(401, f"Invalid API Key provided: {given[:8]}{'*' * 12}{given[-4:]}")
        return None

    return check


def _list_handler(url: str, kind: str, ordered: list[dict] | list[Deferred], filters: set[str]
                  ) -> Callable[[Request], Response]:
    def handle(request: Request) -> Response:
        unknown = sorted(set(request.query) - LIST_PARAMS - filters)
        if unknown:
            return _error(400, f"Received unknown parameter: {unknown[0]}", param=unknown[0])
        raw_limit = request.arg("limit", "10")
        if not (raw_limit or "").lstrip("-").isdigit():
            return _error(400, f"Invalid integer: {raw_limit}", param="limit")
        limit = int(raw_limit)
        if not 1 <= limit <= 100:
            return _error(400, "This value must be greater than or equal to 1 and less than or equal to 100.",
                          param="limit")
        try:
            keep = _created_filter(request)
        except ValueError as exc:
            return _error(400, str(exc), param="created")
        equal = {name: request.arg(name) for name in filters if request.arg(name) is not None}
        items = [o for o in ordered if keep(o.get("created")) and all(o.get(k) == v for k, v in equal.items())]
        after, before = request.arg("starting_after"), request.arg("ending_before")
        ids = [str(o.get("id")) for o in ordered]
        for cursor, param in ((after, "starting_after"), (before, "ending_before")):
            if cursor is not None and cursor not in ids:
                return _error(400, f"No such {kind}: '{cursor}'", code="resource_missing", param=param)
        if after is not None:
            seen_ids = set(ids[: ids.index(after) + 1])
            items = [o for o in items if str(o.get("id")) not in seen_ids]
            page, has_more = items[:limit], len(items) > limit
        elif before is not None:
            newer_ids = set(ids[: ids.index(before)])
            newer = [o for o in items if str(o.get("id")) in newer_ids]
            page, has_more = newer[-limit:], len(newer) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        page = [item.build() if isinstance(item, Deferred) else item for item in page]
        return Response(200, {"object": "list", "data": page, "has_more": has_more, "url": url},
                        {"Request-Id": f"req_{len(page):02d}{_digest(url, str(request.query)) % 10**12:012d}"})

    return handle


def _created_filter(request: Request) -> Callable[[Any], bool]:
    bounds: list[Callable[[int], bool]] = []
    checks = {"created": int.__eq__, "created[gte]": int.__ge__, "created[gt]": int.__gt__,
              "created[lte]": int.__le__, "created[lt]": int.__lt__}
    for name, compare in checks.items():
        value = request.arg(name)
        if value is None:
            continue
        if not value.lstrip("-").isdigit():
            raise ValueError(f"Invalid integer: {value}")
        bounds.append(lambda created, compare=compare, bound=int(value): compare(created, bound))
    return lambda created: not bounds or (isinstance(created, int) and all(check(created) for check in bounds))
