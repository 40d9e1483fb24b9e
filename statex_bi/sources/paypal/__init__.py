"""PayPal: Transaction Search into raw_paypal.transactions (payments, refunds, denials, fees).

Plain HTTP through dlt's RESTClient: an OAuth client-credentials token (HTTP Basic with the client id
and secret, cached until shortly before it expires), then `GET /v1/reporting/transactions` with
`fields=all`, in windows of at most 31 days (PayPal refuses longer ranges) across the period, each
window paged by `page` until `total_pages`. dlt's requests helper retries 429, 5xx and dropped
connections, honouring Retry-After.

Incremental: the cursor is the initiation date (what the search's date range filters on); each run
starts LOOKBACK (3 days) before the newest initiation date loaded and merges on `transaction_id`, so
late-arriving transactions (PayPal lags up to 3 hours) and status changes of recent ones are picked
up. A refund is its own T1107 transaction, so older payments never need re-reading. The first run
starts at the request's start day, or three years back (all PayPal keeps).

Amounts become minor units exactly (Decimal, the currency's decimal places), fees keep PayPal's sign
(negative = charged), the payer's e-mail is pseudonymised, and `custom_field` (JSON) becomes
`metadata_json`.

Environment: $PAYPAL_CLIENT_ID, $PAYPAL_CLIENT_SECRET (required), $PAYPAL_API_BASE (default
https://api-m.paypal.com).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dlt

from statex_bi.config import env, require_env
from statex_bi.exceptions import RecordError
from statex_bi.sources.common import already_loaded, declared_schema, quarantined, screened
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.paypal import helpers, settings


@dlt.source(schema=declared_schema(settings.SOURCE, settings.COLUMNS), max_table_nesting=0)
def paypal_source(
    client_id: str,
    client_secret: str,
    api_base: str = settings.DEFAULT_API_BASE,
    start: date | None = None,
    end: date | None = None,
    page_size: int | None = None,
    progress: Callable[[str], None] = print,
) -> Any:
    """The raw_paypal resource.

    Args:
        client_id: the REST app's client id.
        client_secret: the REST app's secret.
        api_base: PayPal's API base URL (or a sandbox's).
        start: first day to load when the table holds nothing yet (three years back when None).
        end: last day to load (inclusive); None for everything up to now.
        page_size: transactions per request, 1-500 (default settings.PAGE_SIZE).
        progress: receives one line per page.

    Returns:
        The transactions resource.
    """
    client = helpers.make_client(api_base, client_id, client_secret)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    first = datetime.combine(start, time()) if start else now - settings.HISTORY
    last = min(datetime.combine(end + timedelta(days=1), time()) - timedelta(seconds=1), now) if end else now
    lookback_seconds = settings.LOOKBACK.total_seconds()

    @dlt.resource(name="transactions", primary_key="transaction_id", write_disposition="merge")
    def transactions(
        initiated=dlt.sources.incremental(
            "initiation_date",
            initial_value=first,
            lag=lookback_seconds,
            on_cursor_value_missing="include",  # quarantined records carry no cursor
        ),
    ) -> Iterator[Any]:
        # The table exists (empty) even when the period holds no records, so models can read it.
        yield dlt.mark.materialize_table_schema()
        guard, payments = helpers.guard()
        payments.update((txn_id, (amount, currency)) for txn_id, amount, currency in already_loaded(
            "transactions", "transaction_id, amount, currency", "amount > 0"))

        def items() -> Iterator[Any]:
            for page in helpers.search(client, initiated.start_value, last, page_size or settings.PAGE_SIZE, progress):
                for detail in page:
                    try:
                        # Checked before the incremental sees it: a bad row moves no cursor.
                        yield guard.check(helpers.transaction_row(detail))
                    except RecordError as exc:
                        progress(f"{exc} (quarantined)")
                        info = detail.get("transaction_info") if isinstance(detail, dict) else None
                        record_id = info.get("transaction_id") if isinstance(info, dict) else None
                        record_id = record_id if isinstance(record_id, str) else None
                        yield quarantined(settings.SOURCE, exc.endpoint, record_id, exc.field, str(exc), detail)

        yield from screened(items())

    return transactions


def build(request: IngestRequest):
    """The PayPal source for an ingest request, configured from the environment."""
    purpose = "loading PayPal transactions"
    return paypal_source(
        client_id=require_env(settings.CLIENT_ID_ENV, purpose),
        client_secret=require_env(settings.CLIENT_SECRET_ENV, purpose),
        api_base=env(settings.API_BASE_ENV, settings.DEFAULT_API_BASE),
        start=request.start,
        end=request.end,
        progress=request.progress,
    )


SPEC = SourceSpec(
    name="paypal",
    build=build,
    watermark_sql="SELECT max(initiation_date) FROM raw_paypal.transactions",
)
