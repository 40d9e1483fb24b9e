"""Coinbase Commerce HTTP (charges, following `pagination.next_uri`) and the mapping to raw_coinbase rows."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
from requests import RequestException

from statex_bi.exceptions import RecordError, SourceError
from statex_bi.sources.coinbase import settings
from statex_bi.sources.common import RecordGuard, decimal_to_minor, pseudonymise, retrying_session

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def make_client(api_base: str, api_key: str) -> RESTClient:
    """A RESTClient for Commerce: API key and version headers, and retries (429, 5xx, dropped
    connections) that honour Retry-After."""
    session = retrying_session(settings.REQUEST_TIMEOUT_SECONDS, settings.RETRY_ATTEMPTS,
                               settings.RETRY_BACKOFF_SECONDS, settings.RETRY_MAX_DELAY_SECONDS)
    return RESTClient(
        base_url=api_base,
        headers={"X-CC-Version": settings.API_VERSION},
        auth=APIKeyAuth(name="X-CC-Api-Key", api_key=api_key, location="header"),
        session=session,
        data_selector="data",
    )


def charge_pages(client: RESTClient, page_size: int, progress: Callable[[str], None]) -> Iterator[list[dict]]:
    """Every page of charges, newest first, following `pagination.next_uri` until it is null.

    Args:
        client: from `make_client`.
        page_size: charges per request, 1-100.
        progress: receives one line per page.

    Returns:
        An iterator of pages.

    Raises:
        SourceError: a page could not be fetched (after the retries) or the key was refused.
    """
    pages = client.paginate(
        settings.CHARGES_PATH, params={"limit": page_size, "order": "desc"},
        paginator=JSONLinkPaginator(next_url_path="pagination.next_uri"),
    )
    number = 0
    try:
        for page in pages:
            number += 1
            progress(f"{settings.SOURCE}: charges page {number}: {len(page)} charges")
            for warning in page.response.json().get("warnings") or []:
                progress(f"{settings.SOURCE}: API warning: {warning}")
            yield list(page)
    except RequestException as exc:
        response = exc.response
        if response is None:
            raise SourceError(settings.SOURCE, settings.CHARGES_PATH, f"{type(exc).__name__}: {exc}") from exc
        try:
            message = (response.json().get("error") or {}).get("message") or response.text[:200]
        except ValueError:
            message = response.text[:200]
        hint = f" (check ${settings.API_KEY_ENV})" if response.status_code == 401 else ""
        raise SourceError(settings.SOURCE, settings.CHARGES_PATH,
                          f"HTTP {response.status_code}: {message}{hint}") from exc
    except ValueError as exc:  # a 200 whose body is not JSON
        raise SourceError(settings.SOURCE, settings.CHARGES_PATH, f"unreadable response: {exc}") from exc


# --- rows -------------------------------------------------------------------------------------


def parse_time(text: Any) -> datetime:
    """A Coinbase timestamp (`2018-07-24T07:33:35Z`) as a naive UTC datetime.

    Raises:
        ValueError: not an ISO 8601 timestamp with seconds and offset.
    """
    if not isinstance(text, str) or not TIMESTAMP.match(text):
        raise ValueError(f"expected an ISO 8601 timestamp, got {text!r}")
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def to_minor(price: Any) -> tuple[int, str]:
    """(amount in minor units, currency) of a Coinbase price `{"amount": "990.00", "currency": "EUR"}`.

    Raises:
        ValueError: not a price, an unknown currency, or more decimals than the currency has.
    """
    if not isinstance(price, dict):
        raise ValueError(f"expected a price object, got {price!r}")
    return decimal_to_minor(price.get("amount"), price.get("currency"), settings.CURRENCY_EXPONENTS)


def charge_row(charge: dict[str, Any]) -> dict[str, Any]:
    """A raw_coinbase.charges row: status is the last timeline status, the amount `pricing.local`.

    Raises:
        RecordError: a field is missing or malformed.
    """
    record_id = charge.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise RecordError(settings.SOURCE, settings.CHARGES_PATH, "(no id)", "id",
                          f"missing or not a string: {record_id!r}")

    def fail(field: str, message: str) -> RecordError:
        return RecordError(settings.SOURCE, settings.CHARGES_PATH, record_id, field, message)

    timeline = charge.get("timeline")
    if not isinstance(timeline, list) or not timeline or not all(
        isinstance(step, dict) and isinstance(step.get("status"), str) for step in timeline
    ):
        raise fail("timeline", f"expected a non-empty list of statuses, got {timeline!r}")
    try:
        created_at = parse_time(charge.get("created_at"))
    except ValueError as exc:
        raise fail("created_at", str(exc)) from exc
    try:
        completed = [parse_time(step.get("time")) for step in timeline if step["status"] == settings.COMPLETED]
    except ValueError as exc:
        raise fail("timeline", str(exc)) from exc
    pricing = charge.get("pricing")
    try:
        amount, currency = to_minor(pricing.get("local") if isinstance(pricing, dict) else None)
    except ValueError as exc:
        raise fail("pricing.local", str(exc)) from exc
    metadata = charge.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise fail("metadata", f"expected an object, got {metadata!r}")
    identity = next((metadata[key] for key in settings.IDENTITY_KEYS if metadata.get(key)), None)
    return {
        "id": record_id,
        "code": charge.get("code"),
        "created_at": created_at,
        "status": timeline[-1]["status"],
        "completed_at": completed[0] if completed else None,
        "amount": amount,
        "currency": currency,
        "customer_id": pseudonymise(None if identity is None else str(identity)),
        "metadata_json": json.dumps({k: v for k, v in metadata.items() if k not in settings.PERSONAL_KEYS},
                                    sort_keys=True),
        "currency_exponent": settings.CURRENCY_EXPONENTS[currency],
    }


def guard(now: datetime | None = None) -> RecordGuard:
    """The checks a charge passes before it loads (and moves the cursor)."""
    return RecordGuard(settings.SOURCE, settings.CHARGES_PATH, ("id",), timestamps=("created_at", "completed_at"),
                       positive=("amount",), currencies=set(settings.CURRENCY_EXPONENTS),
                       now=now or datetime.now(UTC).replace(tzinfo=None))
