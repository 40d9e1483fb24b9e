"""Coinbase Commerce's charges API for the simulated company.

`GET /charges` (and `GET /charges/{id or code}`) with the `X-CC-Api-Key` header and `X-CC-Version:
2018-03-22` (without it Coinbase serves the latest version and says so in `warnings`). Lists are
newest first (`order=asc` reverses), `limit` 1-100 (default 25), `starting_after` / `ending_before`
charge ids, and a `pagination` object with `next_uri` / `previous_uri` and `cursor_range`, as in the
coinbase-commerce-node fixtures. A charge's status is its timeline: NEW, then PENDING and COMPLETED
when paid, or EXPIRED an hour after creation when not. Prices are decimal strings in `pricing.local`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from statex_bi.demo.payments import CoinbaseCharge, PaymentsData
from statex_bi.demo.sandbox import Request, Response, Sandbox

API_KEY = "0f3c2b1a-5e4d-4c7b-9a8f-statex-demo-key"
API_VERSION = "2018-03-22"
DEFAULT_LIMIT = 25
USDC_PER_UNIT = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27")}


def environment(url: str) -> dict[str, str]:
    """The variables that point `statex_bi.sources.coinbase` at a sandbox at `url`."""
    return {"COINBASE_COMMERCE_API_KEY": API_KEY, "COINBASE_COMMERCE_API_BASE": url}


def build(world) -> Sandbox:
    """The Coinbase Commerce sandbox of a `World` (not started): each charge's JSON is built when a page holds it
    (some 4 KB in memory a charge), from the charges the payments keep anyway."""
    return serve(world.payments.coinbase_charges)


def coinbase_time(moment: datetime) -> str:
    """A naive UTC datetime as Coinbase writes it: `2018-07-24T07:33:35Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def render(payments: PaymentsData) -> list[dict[str, Any]]:
    """Coinbase's JSON charges for the payments, oldest first."""
    return [_charge(c) for c in payments.coinbase_charges]


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _addresses(seed: str) -> dict[str, str]:
    """Deposit addresses per network, shaped like each network's (Commerce lists one per network)."""
    base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number = int(_hex(seed + "addresses", 64), 16)
    body = "".join(base58[(number >> (6 * i)) % len(base58)] for i in range(33))
    ethereum = "0x" + _hex(seed + "eth", 40)
    return {"bitcoin": "1" + body, "litecoin": "L" + body, "bitcoincash": "q" + body.lower()[:41],
            "ethereum": ethereum, "usdc": ethereum}


def _charge(charge: CoinbaseCharge) -> dict[str, Any]:
    local = {"amount": f"{Decimal(charge.amount).scaleb(-2):.2f}", "currency": charge.currency}
    # Statex accepts USDC on Ethereum, priced at a fixed rate per local currency.
    usdc = Decimal(charge.amount).scaleb(-2) * USDC_PER_UNIT[charge.currency]
    crypto = {"amount": f"{usdc:.6f}", "currency": "USDC"}
    statuses = dict(charge.timeline)
    payments = []
    if "PENDING" in statuses:
        payments.append({
            "network": "ethereum",
            "transaction_id": "0x" + _hex(charge.id + "tx", 64),
            "status": "CONFIRMED" if "COMPLETED" in statuses else "PENDING",
            "detected_at": coinbase_time(statuses["PENDING"]),
            "value": {"local": local, "crypto": crypto},
            "block": {"height": 19_000_000 + int(_hex(charge.id, 5), 16), "hash": "0x" + _hex(charge.id + "block", 64),
                      "confirmations": 12 if "COMPLETED" in statuses else 0, "confirmations_required": 12},
        })
    body: dict[str, Any] = {
        "addresses": _addresses(charge.id),
        "code": charge.code,
        "created_at": coinbase_time(charge.created_at),
        "description": "Statex prototype package",
        "expires_at": coinbase_time(charge.expires_at),
        "hosted_url": f"https://commerce.coinbase.com/charges/{charge.code}",
        "id": charge.id,
        "metadata": dict(charge.metadata),
        "name": "Statex prototype",
        "payments": payments,
        "pricing": {"local": local, "usdc": crypto},
        "pricing_type": "fixed_price",
        "resource": "charge",
        "support_email": "billing@statex.example",
        "timeline": [{"status": status, "time": coinbase_time(moment)} for status, moment in charge.timeline],
    }
    if "COMPLETED" in statuses:
        body["confirmed_at"] = coinbase_time(statuses["COMPLETED"])
    return body


def _error(status: int, kind: str, message: str) -> Response:
    return Response(status, {"error": {"type": kind, "message": message}})


def _error_body(status: int) -> dict:
    kinds = {429: ("rate_limit_exceeded", "Rate limit exceeded"), 404: ("not_found", "Not found"),
             503: ("service_unavailable", "Service unavailable")}
    kind, message = kinds.get(status, ("internal_server_error", "Internal server error"))
    return {"error": {"type": kind, "message": message}}


def _auth(api_key: str) -> Callable[[Request], Response | None]:
    def check(request: Request) -> Response | None:
        if request.headers.get("x-cc-api-key") != api_key:
            return _error(401, "authorization_error", "No such API key.")
        return None

    return check


def _created_and_id(charge: dict[str, Any] | CoinbaseCharge) -> tuple[str, str]:
    if isinstance(charge, CoinbaseCharge):
        return coinbase_time(charge.created_at), charge.id
    return str(charge.get("created_at")), str(charge.get("id"))


def _json(charge: dict[str, Any] | CoinbaseCharge) -> dict[str, Any]:
    return _charge(charge) if isinstance(charge, CoinbaseCharge) else charge


def serve(charges: list[dict[str, Any]] | list[CoinbaseCharge], api_key: str = API_KEY) -> Sandbox:
    """A Coinbase Commerce sandbox serving `charges`: JSON as `render` returns it (tests may alter it first), or
    the payments' charges, each rendered when a page holds it."""
    sandbox = Sandbox("coinbase", auth=_auth(api_key), error_body=_error_body)
    newest_first = sorted(charges, key=_created_and_id, reverse=True)

    @sandbox.route("GET", "/charges")
    def list_charges(request: Request) -> Response:
        raw_limit = request.arg("limit", str(DEFAULT_LIMIT)) or ""
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            return _error(400, "invalid_request", "limit must be an integer between 1 and 100")
        limit = int(raw_limit)
        order = request.arg("order", "desc")
        if order not in ("asc", "desc"):
            return _error(400, "invalid_request", "order must be asc or desc")
        items = newest_first if order == "desc" else newest_first[::-1]
        after, before = request.arg("starting_after"), request.arg("ending_before")
        at: dict[str, int] = {}
        for cursor in (after, before):
            if cursor is not None:
                found = next((i for i, c in enumerate(items) if _created_and_id(c)[1] == cursor), None)
                if found is None:
                    return _error(400, "invalid_request", f"No such charge: {cursor}")
                at[cursor] = found
        if after is not None:
            rest = items[at[after] + 1:]
            page, more_after, more_before = rest[:limit], len(rest) > limit, True
        elif before is not None:
            earlier = items[: at[before]]
            page, more_after, more_before = earlier[-limit:], True, len(earlier) > limit
        else:
            page, more_after, more_before = items[:limit], len(items) > limit, False
        page = [_json(c) for c in page]
        base = f"http://{request.headers.get('host', '127.0.0.1')}/charges"
        extra = {"order": order} if order != "desc" else {}
        next_uri = (f"{base}?{urlencode({'limit': limit, **extra, 'starting_after': page[-1]['id']})}"
                    if page and more_after else None)
        previous_uri = (f"{base}?{urlencode({'ending_before': page[0]['id'], 'limit': limit, **extra})}"
                        if page and more_before else None)
        warnings = [] if request.headers.get("x-cc-version") else [
            f"Missing X-CC-Version header; serving latest version ({API_VERSION})"]
        return Response(200, {
            "pagination": {
                "order": order, "starting_after": after, "ending_before": before, "total": len(items),
                "limit": limit, "yielded": len(page),
                "cursor_range": [page[0]["id"], page[-1]["id"]] if page else [],
                "previous_uri": previous_uri, "next_uri": next_uri,
            },
            "data": page,
            "warnings": warnings,
        })

    @sandbox.route("GET", "/charges/(?P<key>[^/]+)")
    def show_charge(request: Request) -> Response:
        key = request.match.group("key") if request.match else ""
        for charge in charges:
            if isinstance(charge, CoinbaseCharge) and key in (charge.id, charge.code):
                return Response(200, {"data": _charge(charge), "warnings": []})
            if isinstance(charge, dict) and key in (charge.get("id"), charge.get("code")):
                return Response(200, {"data": charge, "warnings": []})
        return _error(404, "not_found", "Not found")

    return sandbox
