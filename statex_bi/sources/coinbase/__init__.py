"""Coinbase Commerce: charges into raw_coinbase.charges.

Plain HTTP through dlt's RESTClient: `GET /charges` with `X-CC-Api-Key` and `X-CC-Version:
2018-03-22`, newest first, following `pagination.next_uri` (which carries `starting_after`). dlt's
requests helper retries 429, 5xx and dropped connections, honouring Retry-After.

Incremental: a charge changes after it is created (NEW, then PENDING and COMPLETED, or EXPIRED an
hour later), so the table merges on `id` and each run re-reads LOOKBACK (3 days) before the newest
`created_at`; as the list is newest first, paging stops at the first charge older than that
(dlt's `row_order="desc"`). The status is the last timeline status, the amount `pricing.local` in
minor units (exact), and the customer the pseudonymised e-mail the shop put into the metadata (no
personal metadata key is kept in `metadata_json`).

Environment: $COINBASE_COMMERCE_API_KEY (required), $COINBASE_COMMERCE_API_BASE (default
https://api.commerce.coinbase.com).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import dlt

from statex_bi.config import env, require_env
from statex_bi.exceptions import RecordError
from statex_bi.sources.coinbase import helpers, settings
from statex_bi.sources.common import declared_schema, quarantined, screened
from statex_bi.sources.contract import IngestRequest, SourceSpec


@dlt.source(schema=declared_schema(settings.SOURCE, settings.COLUMNS), max_table_nesting=0)
def coinbase_source(
    api_key: str,
    api_base: str = settings.DEFAULT_API_BASE,
    start: date | None = None,
    end: date | None = None,
    page_size: int | None = None,
    progress: Callable[[str], None] = print,
) -> Any:
    """The raw_coinbase resource.

    Args:
        api_key: a Commerce API key.
        api_base: the Commerce API base URL (or a sandbox's).
        start: first day to load when the table holds nothing yet (all history when None).
        end: last day to load (inclusive); None for everything up to now.
        page_size: charges per request, 1-100 (default settings.PAGE_SIZE).
        progress: receives one line per page.

    Returns:
        The charges resource.
    """
    client = helpers.make_client(api_base, api_key)
    first = datetime.combine(start, time()) if start else None
    stop = datetime.combine(end + timedelta(days=1), time()) if end else None
    lookback_seconds = settings.LOOKBACK.total_seconds()

    @dlt.resource(name="charges", primary_key="id", write_disposition="merge")
    def charges(
        created=dlt.sources.incremental(
            "created_at",
            initial_value=first,
            lag=lookback_seconds,
            row_order="desc",
            on_cursor_value_missing="include",  # quarantined records carry no cursor
        ),
    ) -> Iterator[Any]:
        # The table exists (empty) even when the period holds no records, so models can read it.
        yield dlt.mark.materialize_table_schema()
        guard = helpers.guard()

        def items() -> Iterator[Any]:
            for page in helpers.charge_pages(client, page_size or settings.PAGE_SIZE, progress):
                for charge in page:
                    try:
                        # Checked before the incremental sees it: a bad row moves no cursor.
                        row = guard.check(helpers.charge_row(charge))
                    except RecordError as exc:
                        progress(f"{exc} (quarantined)")
                        record_id = charge.get("id") if isinstance(charge.get("id"), str) else None
                        yield quarantined(settings.SOURCE, exc.endpoint, record_id, exc.field, str(exc), charge)
                        continue
                    if stop is None or row["created_at"] < stop:
                        yield row

        yield from screened(items())

    return charges


def build(request: IngestRequest):
    """The Coinbase Commerce source for an ingest request, configured from the environment."""
    return coinbase_source(
        api_key=require_env(settings.API_KEY_ENV, "loading Coinbase Commerce charges"),
        api_base=env(settings.API_BASE_ENV, settings.DEFAULT_API_BASE),
        start=request.start,
        end=request.end,
        progress=request.progress,
    )


SPEC = SourceSpec(
    name="coinbase",
    build=build,
    watermark_sql="SELECT max(created_at) FROM raw_coinbase.charges",
)
