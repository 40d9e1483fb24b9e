"""GA4 Data API (`runReport`) -> raw_ga4: traffic by channel, key events by channel, daily users.

Four reports, each through the official `BetaAnalyticsDataClient` (REST transport), paged with
offset/limit until `rowCount` rows were read:

    traffic_by_channel     date x sessionDefaultChannelGroup: sessions, activeUsers, screenPageViews,
                           averageSessionDuration, engagedSessions
    key_events_by_channel  date x sessionDefaultChannelGroup x eventName (only $GA4_KEY_EVENTS):
                           eventCount, keyEvents
    key_event_sessions_by_channel
                           date x sessionDefaultChannelGroup x eventName (only $GA4_KEY_EVENTS):
                           sessions (the sessions in which the event happened)
    daily_users            date: activeUsers (de-duplicated across channels), sessions

Days are the property's days, in its time zone: each response's `metadata.timeZone` (and currency)
is kept in raw_ga4.property, one row per property, merged on property_id. The responses' warnings,
`subjectToThresholding` (rows withheld for privacy) and `dataLossFromOtherRow` (rows rolled into
"(other)"), are kept per report and day read in raw_ga4.report_flags, merged on (report, date).

Incremental on `date`, merged on the report's dimensions. GA4 keeps revising the last days
(late-arriving hits, attribution, thresholding), so a run does not start at the last loaded date + 1:
it re-reads the last `LOOKBACK_DAYS` loaded days and the merge replaces them (dlt's incremental
`lag`). A run stops at yesterday, the last complete day. An explicit --start reads exactly
[--start, --end] (a backfill) and leaves the cursor alone; --end alone only moves the stop day.

Environment: GA4_PROPERTY_ID (numeric, required), GA4_API_ENDPOINT (default Google's; an http://
loopback address without $GOOGLE_APPLICATION_CREDENTIALS means the anonymous sandbox mode),
GA4_KEY_EVENTS (comma-separated, default sign_up,prototype_request), GOOGLE_APPLICATION_CREDENTIALS.

A value that does not parse sends its row to raw_ga4.quarantine (endpoint `runReport:<table>`,
record `date/channel[/event]`, field = the GA4 metric or dimension name) in the same load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt

from statex_bi.exceptions import ParamsError, RecordError
from statex_bi.sources.common import RecordGuard, quarantined, screened
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.ga4 import helpers, settings
from statex_bi.sources.ga4.settings import Report


def build(request: IngestRequest):
    """The GA4 dlt source for one ingest request.

    Args:
        request: the optional --start/--end window and the progress callback.

    Returns:
        A dlt source with one resource per raw_ga4 table.

    Raises:
        ConfigError: the environment is incomplete or malformed.
        ParamsError: --start is after the last day to load.
    """
    yesterday = date.today() - timedelta(days=1)
    end = min(request.end, yesterday) if request.end else yesterday
    if request.start is not None and request.start > end:
        raise ParamsError(f"ga4: --start {request.start} is after the last day to load, {end} "
                          "(--end, and at the latest yesterday: GA4 reports complete days only)")
    config = helpers.read_config()
    client = helpers.make_client(config)

    @dlt.source(name="ga4")
    def ga4():
        return [_resource(report, client, config, request.start, end, request.progress) for report in settings.REPORTS]

    return ga4()


def _resource(report: Report, client, config: helpers.Ga4Config, start: date | None, end: date,
              progress: Callable[[str], None]):
    if start is not None:
        # A stateless range: reads exactly the window, even before the cursor, and leaves the cursor as it was.
        cursor = dlt.sources.incremental("date", initial_value=start, end_value=end, range_end="closed",
                                         on_cursor_value_missing="include")
    else:
        cursor = dlt.sources.incremental(
            "date", initial_value=end - timedelta(days=settings.DEFAULT_HISTORY_DAYS),
            lag=settings.LOOKBACK_DAYS - 1, on_cursor_value_missing="include",
        )

    def rows(cursor=cursor) -> Iterator[dict]:
        # With lag, `last_value` is already the newest loaded day minus LOOKBACK_DAYS - 1.
        first = cursor.last_value if start is None else start
        if first > end:
            progress(f"ga4: {report.table}: nothing to read, the first day to read ({first}) is after {end}")
            return
        # Checked before the incremental sees them: a bad row moves no cursor.
        guard = RecordGuard(settings.SOURCE, f"runReport:{report.table}", report.primary_key, timestamps=("date",))
        flags = {"subject_to_thresholding": False, "data_loss_from_other_row": False}
        days: set[date] = set()
        for number, response in enumerate(helpers.fetch_pages(client, config, report, first, end, progress)):
            if number == 0:
                yield _property_row(config, response)
            flags["subject_to_thresholding"] |= bool(response.metadata.subject_to_thresholding)
            flags["data_loss_from_other_row"] |= bool(response.metadata.data_loss_from_other_row)
            for row in response.rows:
                try:
                    parsed = guard.check(helpers.parse_row(report, row))
                    days.add(parsed["date"])
                    yield parsed
                except RecordError as exc:
                    progress(f"ga4: quarantined: {exc}")
                    yield quarantined(settings.SOURCE, exc.endpoint, exc.record_id, exc.field, str(exc),
                                      _row_payload(report, row))
        yield from _flag_rows(report, sorted(days), flags)

    # Column types come from the parsed values (date, str, int, float). No column hints: the quarantine
    # table is a variant of this resource and would inherit them.
    def screened_rows(cursor=cursor) -> Iterator[Any]:
        yield from screened(rows(cursor))

    return dlt.resource(screened_rows, name=report.table, write_disposition="merge", primary_key=report.primary_key)


def _property_row(config: helpers.Ga4Config, response) -> Any:
    """The property's time zone and currency as the response states them, for raw_ga4.property."""
    row = {"property_id": config.property_id, "time_zone": response.metadata.time_zone or None,
           "currency_code": response.metadata.currency_code or None,
           "checked_at": datetime.now(UTC).replace(tzinfo=None)}
    return dlt.mark.with_hints(row, dlt.mark.make_hints(
        table_name=settings.PROPERTY_TABLE, write_disposition="merge", primary_key="property_id", merge_key=(),
        columns={name: dict(hints) for name, hints in settings.PROPERTY_COLUMNS.items()},
    ), create_table_variant=True)


def _flag_rows(report: Report, days: list[date], flags: dict[str, bool]) -> Iterator[Any]:
    """The request's thresholding and (other) flags (the API states them per request) for each day it returned
    rows for: a day without rows would move the date cursor past data GA4 has not finished."""
    checked = datetime.now(UTC).replace(tzinfo=None)
    hints = dlt.mark.make_hints(table_name=settings.FLAGS_TABLE, write_disposition="merge",
                                primary_key=("report", "date"), merge_key=(),
                                columns={name: dict(h) for name, h in settings.FLAG_COLUMNS.items()})
    for day in days:
        row = {"report": report.table, "date": day, **flags, "checked_at": checked}
        yield dlt.mark.with_hints(row, hints, create_table_variant=True)


def _row_payload(report: Report, row) -> dict:
    return {
        "dimensions": {name: v.value for (name, _), v in zip(report.dimensions, row.dimension_values, strict=True)},
        "metrics": {m.name: v.value for m, v in zip(report.metrics, row.metric_values, strict=True)},
    }


SPEC = SourceSpec(name="ga4", build=build, watermark_sql="SELECT max(date) FROM raw_ga4.daily_users",
                  bookkeeping=(settings.PROPERTY_TABLE, settings.FLAGS_TABLE))
