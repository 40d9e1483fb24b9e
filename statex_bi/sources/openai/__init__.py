"""OpenAI organization Usage and Costs APIs -> raw_openai: what OpenAI bills, per day.

    usage_completions  `GET /v1/organization/usage/completions?bucket_width=1d&group_by=model,project_id,
                       batch,service_tier`, 31 daily buckets a page; one row per bucket and group
    costs              `GET /v1/organization/costs?bucket_width=1d&group_by=line_item,project_id`, 180
                       buckets a page; one row per bucket, line item and project (amounts in USD)

Both page by `next_page` (`page=`), have `start_time` inclusive and `end_time` exclusive (unix seconds)
and are incremental on the bucket start: a run re-reads the last `REFETCH_DAYS` loaded days (today's
bucket is partial, late usage lands in recent days) up to the end of today, 90 days on the first
load, and merges on the bucket and group keys (group keys the API leaves null are stored as '',
`batch` as false). An explicit --start reads exactly [--start, --end] and leaves the cursor alone.

Requests are retried on 429 (honouring Retry-After), 5xx and dropped connections. Both resources load
in one package: if either fails for good, neither table changes. A result that does not parse goes to
raw_openai.quarantine (endpoint = the API path, record = `day/line item` or `day/model/project`).

Environment: OPENAI_ADMIN_KEY (an organization admin key), OPENAI_API_BASE (default
https://api.openai.com; a trailing /v1 is accepted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta

import dlt
from dlt.sources.helpers.rest_client import RESTClient

from statex_bi.exceptions import RecordError
from statex_bi.sources.common import RecordGuard, quarantined, screened
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.openai import helpers, settings


def build(request: IngestRequest):
    """The OpenAI dlt source for one ingest request.

    Args:
        request: the optional --start/--end window and the progress callback.

    Returns:
        A dlt source with the usage_completions and costs resources.

    Raises:
        ConfigError: $OPENAI_ADMIN_KEY is not set.
    """
    config = helpers.read_config()
    client = helpers.make_client(config)
    today = datetime.now(UTC).date()
    end = datetime.combine(min(request.end, today) if request.end else today, time()) + timedelta(days=1)

    @dlt.source(name="openai")
    def openai():
        return [
            _resource("usage_completions", settings.USAGE_PATH, client, request.start, end, request.progress,
                      {"group_by": list(settings.USAGE_GROUP_BY), "limit": settings.USAGE_LIMIT},
                      helpers.parse_usage, settings.USAGE_KEY, settings.USAGE_COLUMNS),
            _resource("costs", settings.COSTS_PATH, client, request.start, end, request.progress,
                      {"group_by": list(settings.COSTS_GROUP_BY), "limit": settings.COSTS_LIMIT},
                      helpers.parse_cost, settings.COSTS_KEY, settings.COSTS_COLUMNS),
        ]

    return openai()


def _resource(table: str, path: str, client: RESTClient, start: date | None, end: datetime,
              progress: Callable[[str], None], params: dict, parse: Callable[..., dict],
              key: tuple[str, ...], columns: dict):
    if start is not None:
        # A stateless range: reads exactly the window, even before the cursor, and leaves the cursor as it was.
        cursor = dlt.sources.incremental("bucket_start", initial_value=datetime.combine(start, time()),
                                         end_value=end, range_end="open", on_cursor_value_missing="include")
    else:
        cursor = dlt.sources.incremental(
            "bucket_start", initial_value=end - timedelta(days=settings.DEFAULT_HISTORY_DAYS),
            lag=settings.REFETCH_DAYS * 86400, on_cursor_value_missing="include",
        )

    def rows(cursor=cursor) -> Iterator[dict]:
        first = cursor.start_value
        if first >= end:
            progress(f"openai: {table}: up to date")
            return
        query = {**params, "bucket_width": "1d", "start_time": _unix(first), "end_time": _unix(end)}
        # Checked before the incremental sees them: a bad row moves no cursor.
        guard = RecordGuard(settings.SOURCE, path, key, timestamps=("bucket_start", "bucket_end"),
                            currencies=settings.COST_CURRENCIES if "currency" in columns else None)
        for number, page in enumerate(helpers.paginate(client, path, query), start=1):
            progress(f"openai: {table} {first:%Y-%m-%d}..{end - timedelta(days=1):%Y-%m-%d} page {number}: "
                     f"{len(page)} days")
            for bucket in page:
                try:
                    bucket_start, bucket_end = helpers.bucket_times(bucket)
                except ValueError as exc:
                    progress(f"openai: quarantined: {path}: {exc}")
                    yield quarantined(settings.SOURCE, path, None, "start_time", str(exc), bucket)
                    continue
                for result in bucket.get("results") or []:
                    try:
                        yield guard.check(parse(bucket_start, bucket_end, result))
                    except RecordError as exc:
                        progress(f"openai: quarantined: {exc}")
                        payload = {"start_time": bucket.get("start_time"), "result": result}
                        yield quarantined(settings.SOURCE, path, exc.record_id, exc.field, str(exc), payload)

    def screened_rows(cursor=cursor) -> Iterator[dict]:
        yield from screened(rows(cursor))

    return dlt.resource(screened_rows, name=table, write_disposition="merge", primary_key=key, columns=columns)


def _unix(moment: datetime) -> int:
    """Unix seconds of a naive UTC datetime, floored to its day: daily buckets start at midnight."""
    return int(datetime.combine(moment.date(), time(), tzinfo=UTC).timestamp())


SPEC = SourceSpec(name="openai", build=build,
                  watermark_sql="SELECT max(bucket_start) FROM raw_openai.usage_completions")
