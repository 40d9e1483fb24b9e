"""Stripe: charges (every status), refunds and balance transactions (fees) into raw_stripe.

Uses the official `stripe` SDK (`StripeClient(key, base_addresses={"api": $STRIPE_API_BASE})`,
`client.v1.<endpoint>.list`), page by page with `starting_after`, newest first. The SDK retries
connection errors and 5xx itself; 429 (which it does not retry) and cut-off bodies are retried here,
honouring Retry-After.

Incremental loading, and why a lookback: every table merges on `id` with `created` as the cursor,
and each run asks Stripe for `created >= newest created - LOOKBACK` (35 days). A charge is mutable:
it is refunded (`amount_refunded`, `refunded`) days or weeks after it was created, and its `created`
does not move, so a pure append on `created` would freeze it as first seen; re-reading a window and
merging on `id` picks those changes up. Stripe has no "updated" filter on lists, and an events feed
would be a second, retention-limited source of truth. Refunds are immutable once succeeded, but
balance transactions turn from `pending` to `available` about a week after they are created, so the
same window serves all three. Refunds older than the window are still loaded (they are their own
objects); only `charges.amount_refunded` can lag for a refund more than 35 days after its charge, and
models should sum `raw_stripe.refunds` for refunded amounts.

Environment: $STRIPE_API_KEY (required), $STRIPE_API_BASE (default https://api.stripe.com).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dlt
import stripe

from statex_bi.config import env, require_env
from statex_bi.exceptions import RecordError
from statex_bi.sources.common import RecordGuard, already_loaded, declared_schema, quarantined, screened
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.stripe import helpers, settings


def _unix(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _resource(
    client: stripe.StripeClient,
    endpoint: str,
    start: datetime | None,
    end: datetime | None,
    page_size: int,
    progress: Callable[[str], None],
    guard: RecordGuard,
    known_charges: dict[str, tuple[int, str]],
):
    build_row = helpers.ROW_BUILDERS[endpoint]
    lookback_seconds = settings.LOOKBACK.total_seconds()

    @dlt.resource(name=endpoint, primary_key="id", write_disposition="merge")
    def rows(
        created=dlt.sources.incremental(
            "created",
            initial_value=start,
            lag=lookback_seconds,
            on_cursor_value_missing="include",  # quarantined records carry no cursor
        ),
    ) -> Iterator[Any]:
        window: dict[str, int] = {}
        if created.start_value is not None:
            window["gte"] = _unix(created.start_value)
        if end is not None:
            window["lt"] = _unix(end)
        params: dict[str, Any] = {"limit": page_size, **({"created": window} if window else {})}
        # The table exists (empty) even when the period holds no records, so models can read it.
        yield dlt.mark.materialize_table_schema()
        if endpoint == "refunds":
            known_charges.update((charge_id, (amount, currency)) for charge_id, amount, currency
                                 in already_loaded("charges", "id, amount, currency"))

        def items() -> Iterator[Any]:
            for page in helpers.list_pages(client, endpoint, params, progress):
                for obj in page:
                    try:
                        # Checked before the incremental sees it: a bad row moves no cursor.
                        yield guard.check(build_row(obj))
                    except RecordError as exc:
                        progress(f"{exc} (quarantined)")
                        record_id = obj.get("id") if isinstance(obj.get("id"), str) else None
                        yield quarantined(settings.SOURCE, exc.endpoint, record_id, exc.field, str(exc), obj)

        yield from screened(items())

    return rows


@dlt.source(schema=declared_schema(settings.SOURCE, settings.COLUMNS), max_table_nesting=0)
def stripe_source(
    api_key: str,
    api_base: str = settings.DEFAULT_API_BASE,
    start: date | None = None,
    end: date | None = None,
    page_size: int | None = None,
    progress: Callable[[str], None] = print,
) -> list[Any]:
    """The raw_stripe resources.

    Args:
        api_key: a secret or restricted key with read access to charges, refunds and balance.
        api_base: Stripe's API base URL (or a sandbox's).
        start: first day to load when the tables hold nothing yet (all history when None).
        end: last day to load (inclusive); None for everything up to now.
        page_size: objects per request, 1-100 (default settings.PAGE_SIZE).
        progress: receives one line per page.

    Returns:
        The charges, refunds and balance_transactions resources.
    """
    client = helpers.make_client(api_key, api_base)
    first = datetime.combine(start, time()) if start else None
    stop = datetime.combine(end + timedelta(days=1), time()) if end else None
    size = page_size or settings.PAGE_SIZE
    guards, known_charges = helpers.guards()
    return [_resource(client, name, first, stop, size, progress, guards[name], known_charges)
            for name in settings.ENDPOINTS]


def build(request: IngestRequest):
    """The Stripe source for an ingest request, configured from the environment."""
    return stripe_source(
        api_key=require_env(settings.API_KEY_ENV, "loading Stripe charges, refunds and fees"),
        api_base=env(settings.API_BASE_ENV, settings.DEFAULT_API_BASE),
        start=request.start,
        end=request.end,
        progress=request.progress,
    )


SPEC = SourceSpec(
    name="stripe",
    build=build,
    watermark_sql="SELECT max(created) FROM raw_stripe.charges",
)
