"""Sentry REST API -> raw_sentry: the app's AI calls as `gen_ai.*` spans.

    gen_ai_spans   `GET /api/0/organizations/{org}/events/?dataset=spans&query=span.op:gen_ai.*` with
                   the fields of `settings.SPAN_FIELDS`, sorted by start, 100 a page, following the
                   Link header while `results="true"`; merged on span_id.

Incremental on the span start (`started_at`): a run reads from the newest loaded span minus an hour
(spans arrive late) up to now, 90 days on the first load. An explicit --start reads exactly
[--start, --end] (a backfill) and leaves the cursor alone; --end alone only moves the stop day.
Sentry keeps spans for a limited time (30 days on most plans), which is why the JSONL import of the
same records (`ai-calls`) exists for the long history.

Requests are retried on 429, 5xx and dropped connections (dlt's requests helper). On a 429 the
client waits for Retry-After or, without it, until X-Sentry-Rate-Limit-Reset (at most a minute);
a request that still fails fails the whole load, leaving the tables and cursor as they were.
A span that does not parse goes to raw_sentry.quarantine (endpoint `events?dataset=spans`, record =
span id, field = the Sentry field name) in the same load.

Environment: SENTRY_AUTH_TOKEN (org:read), SENTRY_ORG (organization slug), SENTRY_BASE_URL (default
https://sentry.io), SENTRY_PROTOTYPE_ATTRIBUTE and SENTRY_TIER_ATTRIBUTE (the span attributes carrying
the prototype and the tier; default prototype_id and ai_tier). A span without a tier gets it from
gen_ai.system (`ai_tier_inferred` true).
The web and API performance resources (issues, event volumes, route performance, Web Vitals) are in
`performance.py`, the operations resources (queue jobs, database queries, user feedback) in
`operations.py`; every resource is listed in `RESOURCES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta

import dlt
from dlt.sources.helpers.rest_client import RESTClient

from statex_bi.exceptions import RecordError
from statex_bi.sources.common import quarantined, screened
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.sentry import helpers, operations, performance, settings


def build(request: IngestRequest):
    """The Sentry dlt source for one ingest request.

    Args:
        request: the optional --start/--end window and the progress callback.

    Returns:
        A dlt source with one resource per raw_sentry table.

    Raises:
        ConfigError: $SENTRY_AUTH_TOKEN or $SENTRY_ORG is not set.
    """
    config = helpers.read_config()
    client = helpers.make_client(config)

    @dlt.source(name="sentry")
    def sentry():
        return [resource(client, config, request) for resource in RESOURCES]

    return sentry()


def _window_end(request: IngestRequest) -> datetime:
    now = datetime.now(UTC).replace(tzinfo=None)
    if request.end is None:
        return now
    return min(now, datetime.combine(request.end + timedelta(days=1), time()))


def gen_ai_spans(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `gen_ai_spans` resource: AI call spans, incremental on their start."""
    end = _window_end(request)
    if request.start is not None:
        # A stateless range: reads exactly the window, even before the cursor, and leaves the cursor as it was.
        start = datetime.combine(request.start, time())
        cursor = dlt.sources.incremental("started_at", initial_value=start, end_value=end, range_end="open",
                                         on_cursor_value_missing="include")
    else:
        first_load = end - timedelta(days=settings.DEFAULT_HISTORY_DAYS)
        cursor = dlt.sources.incremental("started_at", initial_value=first_load, lag=settings.LATE_SPAN_LAG_S,
                                         on_cursor_value_missing="include")
    progress: Callable[[str], None] = request.progress

    def spans(cursor=cursor) -> Iterator[dict]:
        first = cursor.start_value
        if first >= end:
            progress(f"sentry: gen_ai_spans: up to date (next span after {first})")
            return
        fields = helpers.span_fields(settings.SPAN_FIELDS)
        # Checked before the incremental sees them: a bad row moves no cursor.
        guard = helpers.guard(settings.SOURCE, settings.SPANS_ENDPOINT)
        params = {
            "dataset": "spans",
            "field": list(fields.values()),
            "query": settings.GEN_AI_QUERY,
            "project": list(config.projects),
            "sort": settings.SORT_FIELD,
            "per_page": settings.PER_PAGE,
            "start": _iso_utc(first),
            "end": _iso_utc(end),
        }
        path = settings.EVENTS_PATH.format(org=config.org)
        for number, page in enumerate(helpers.paginate(client, path, params, settings.SPANS_ENDPOINT), start=1):
            progress(f"sentry: gen_ai_spans {first:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} page {number}: "
                     f"{len(page)} spans")
            for raw in page:
                try:
                    yield guard.check(helpers.parse_span(raw, fields, settings.SOURCE, settings.SPANS_ENDPOINT))
                except RecordError as exc:
                    progress(f"sentry: quarantined: {exc}")
                    yield quarantined(settings.SOURCE, settings.SPANS_ENDPOINT, exc.record_id, exc.field, str(exc), raw)

    def screened_spans(cursor=cursor) -> Iterator[dict]:
        yield from screened(spans(cursor))

    return dlt.resource(screened_spans, name="gen_ai_spans", write_disposition="merge", primary_key="span_id",
                        columns=settings.SPAN_COLUMNS)


def _iso_utc(moment: datetime) -> str:
    """A naive UTC datetime as RFC 3339 (the spec's `date-time`), e.g. 2026-03-01T00:00:00Z."""
    return moment.isoformat() + "Z"


# Each entry builds one resource of the source from (client, config, request).
RESOURCES = (gen_ai_spans, *performance.RESOURCES, *operations.RESOURCES)

SPEC = SourceSpec(name="sentry", build=build, watermark_sql="SELECT max(started_at) FROM raw_sentry.gen_ai_spans")
