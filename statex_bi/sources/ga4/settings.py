"""Constants of the GA4 source: the reports it requests and how it pages, retries and re-reads."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "ga4"
DEFAULT_KEY_EVENTS = ("sign_up", "prototype_request")
PAGE_SIZE = 10_000  # rows per runReport call: the API's default (maximum 250,000)
# GA4 keeps processing the last days (late hits, attribution): every run re-reads them and merges.
LOOKBACK_DAYS = 3
# How far back the first run (no cursor, no --start) reads: 13 months, the span the reports compare.
DEFAULT_HISTORY_DAYS = 400
REQUEST_TIMEOUT = 60.0  # seconds per call, the client's default
# Backoff between retries of one call (api-core's jittered exponential backoff) and the total time
# spent retrying it before the load fails.
RETRY_INITIAL = 1.0
RETRY_MAXIMUM = 32.0
RETRY_MULTIPLIER = 2.0
RETRY_TIMEOUT = 180.0


@dataclass(frozen=True)
class Metric:
    name: str  # GA4 API name
    column: str  # raw_ga4 column
    kind: type  # int or float: GA4 sends every value as a string


@dataclass(frozen=True)
class Report:
    """One runReport request and the raw_ga4 table it fills."""

    table: str
    dimensions: tuple[tuple[str, str], ...]  # (GA4 dimension, raw_ga4 column); the table's key
    metrics: tuple[Metric, ...]
    key_events_only: bool = False  # filter eventName to the configured key events

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(column for _, column in self.dimensions)


TRAFFIC = Report(
    table="traffic_by_channel",
    dimensions=(("date", "date"), ("sessionDefaultChannelGroup", "channel")),
    metrics=(
        Metric("sessions", "sessions", int),
        Metric("activeUsers", "active_users", int),
        Metric("screenPageViews", "screen_page_views", int),
        Metric("averageSessionDuration", "average_session_duration", float),
        Metric("engagedSessions", "engaged_sessions", int),
    ),
)
KEY_EVENTS = Report(
    table="key_events_by_channel",
    dimensions=(("date", "date"), ("sessionDefaultChannelGroup", "channel"), ("eventName", "event_name")),
    metrics=(Metric("eventCount", "event_count", int), Metric("keyEvents", "key_events", int)),
    key_events_only=True,
)
# With eventName as a dimension, GA4's `sessions` counts the sessions in which the event happened: the
# numerator of a session conversion rate (key events may count several times in one session).
KEY_EVENT_SESSIONS = Report(
    table="key_event_sessions_by_channel",
    dimensions=(("date", "date"), ("sessionDefaultChannelGroup", "channel"), ("eventName", "event_name")),
    metrics=(Metric("sessions", "sessions", int),),
    key_events_only=True,
)
DAILY_USERS = Report(
    table="daily_users",
    dimensions=(("date", "date"),),
    metrics=(Metric("activeUsers", "active_users", int), Metric("sessions", "sessions", int)),
)
REPORTS = (TRAFFIC, KEY_EVENTS, KEY_EVENT_SESSIONS, DAILY_USERS)
# Each response's metadata names the property's time zone, in which GA4 cuts its days: kept in this table
# (one row per property) so that reports can say so and date payments in the same zone.
PROPERTY_TABLE = "property"
PROPERTY_COLUMNS: dict[str, dict] = {
    "property_id": {"data_type": "text"},
    "time_zone": {"data_type": "text"},
    "currency_code": {"data_type": "text"},
    "checked_at": {"data_type": "timestamp", "timezone": False},
}
# Per report and day: whether GA4 withheld rows to protect privacy (`subjectToThresholding`) or rolled
# rows into an "(other)" row (`dataLossFromOtherRow`), from the response metadata of the request that
# read the day. Merged on (report, date): a re-read day takes the newer response's flags.
FLAGS_TABLE = "report_flags"
FLAG_COLUMNS: dict[str, dict] = {
    "report": {"data_type": "text"},
    "date": {"data_type": "date"},
    "subject_to_thresholding": {"data_type": "bool"},
    "data_loss_from_other_row": {"data_type": "bool"},
    "checked_at": {"data_type": "timestamp", "timezone": False},
}
