"""Cloudflare R2 usage from the GraphQL Analytics API -> raw_cloudflare (`statex-bi ingest cloudflare`).

    r2_operations  `r2OperationsAdaptiveGroups`: requests, responseBytes, responseObjectSize per day,
                   bucket, actionType, actionStatus, responseStatusCode and storageClass
    r2_storage     `r2StorageAdaptiveGroups`: max payloadSize, metadataSize, objectCount, uploadCount
                   per sample (datetime), bucket and storageClass; samples come at irregular times

Plain HTTP POST of GraphQL (`POST {CLOUDFLARE_API_BASE}/graphql`, Bearer token), in windows of
`WINDOW_DAYS` days. R2 has no billing export: the models turn this usage into R2's cost (storage
GB-months from each day's peak, Class A / Class B / free operations by action, 401/403 not billed)
and into what S3 would have cost (statex_bi.pricing.infra).

Each run re-reads from `REFETCH_DAYS` before the newest loaded day to today (31 days, the datasets'
retention, on the first load) and merges on the natural keys, so late or re-sampled numbers replace
earlier ones. An explicit --start reads exactly [--start, --end] and leaves the resume point alone.
The datasets are adaptive (sampled at high volume): the numbers are Cloudflare's estimates, and
`responseBytes` of GetObject (bytes served) is an estimate of egress; requests answered by
Cloudflare's cache in front of a custom domain never reach R2 and are not counted.

An `errors` array in the answer (authentication, authorization, a query over the retention or the
limits) fails the load with Cloudflare's message; 429, 5xx and dropped connections are retried
(honouring Retry-After). Both tables load in one package: either both change or neither. A group that
does not parse goes to raw_cloudflare.quarantine.

Environment: CLOUDFLARE_API_TOKEN (Account Analytics: Read), CLOUDFLARE_ACCOUNT_ID, CLOUDFLARE_API_BASE
(default https://api.cloudflare.com/client/v4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta

import dlt

from statex_bi.exceptions import ParamsError, RecordError
from statex_bi.sources.cloudflare import helpers, settings
from statex_bi.sources.common import declared_schema, quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec


def build(request: IngestRequest):
    """The cloudflare dlt source for one ingest request.

    Raises:
        ConfigError: the token or account id is not set.
        ParamsError: --start is after --end.
    """
    config = helpers.read_config()
    session = helpers.make_session()
    today = datetime.now(UTC).date()
    end = min(request.end, today) if request.end else today
    if request.start is not None and request.start > end:
        raise ParamsError(f"cloudflare: --start {request.start} is after {end}")

    def windows(state: dict) -> Iterator[tuple[date, date]]:
        if request.start is not None:
            first = request.start
        elif state.get("last_day"):
            first = date.fromisoformat(state["last_day"]) - timedelta(days=settings.REFETCH_DAYS)
        else:
            first = end - timedelta(days=settings.DEFAULT_HISTORY_DAYS - 1)
        while first <= end:
            last = min(first + timedelta(days=settings.WINDOW_DAYS - 1), end)
            yield first, last
            first = last + timedelta(days=1)

    def resource(table: str, dataset: str, text: str, variables: Callable[[date, date], dict],
                 parse: Callable[[dict, str], dict], key: tuple[str, ...]):
        def rows() -> Iterator[object]:
            state = dlt.current.resource_state()
            newest = None
            for first, last in windows(state):
                groups = helpers.query(session, config, text, {"accountTag": config.account_id,
                                                               "limit": settings.PAGE_LIMIT, **variables(first, last)},
                                       dataset)
                request.progress(f"cloudflare: {dataset} {first}..{last}: {len(groups)} groups")
                for group in groups:
                    try:
                        row = parse(group, config.account_id)
                    except RecordError as exc:
                        request.progress(f"cloudflare: quarantined: {exc}")
                        yield quarantined(settings.SOURCE, dataset, exc.record_id, exc.field, str(exc), group)
                        continue
                    newest = max(newest or row["date"], row["date"])
                    yield row
            if request.start is None and newest is not None:
                state["last_day"] = newest.isoformat()

        return dlt.resource(rows, name=table, write_disposition="merge", primary_key=key)

    @dlt.source(schema=declared_schema(settings.SOURCE, settings.COLUMNS), max_table_nesting=0)
    def cloudflare():
        return [
            resource("r2_operations", "r2OperationsAdaptiveGroups", settings.OPERATIONS_QUERY,
                     lambda first, last: {"start": first.isoformat(), "end": last.isoformat()},
                     helpers.parse_operations, settings.OPERATIONS_KEY),
            resource("r2_storage", "r2StorageAdaptiveGroups", settings.STORAGE_QUERY,
                     lambda first, last: {"start": _time(first), "end": _time(last + timedelta(days=1))},
                     helpers.parse_storage, settings.STORAGE_KEY),
        ]

    return cloudflare()


def _time(day: date) -> str:
    return datetime.combine(day, time()).strftime("%Y-%m-%dT%H:%M:%SZ")


SPEC = SourceSpec(name="cloudflare", build=build, watermark_sql="SELECT max(date) FROM raw_cloudflare.r2_operations")
