"""GA4 Data API calls: configuration, the client, paged runReport with retries, row parsing."""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlsplit

import requests
from google.analytics.data_v1beta import BetaAnalyticsDataClient
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    Filter,
    FilterExpression,
    Metric,
    OrderBy,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core import exceptions as google_errors
from google.api_core import retry as google_retry
from google.auth import exceptions as auth_errors

from statex_bi.config import env, require_env
from statex_bi.exceptions import ConfigError, RecordError, SourceError
from statex_bi.sources.ga4 import settings
from statex_bi.sources.ga4.settings import Report

# Failures worth another attempt: quota (429), server errors, and connections that drop or stall
# (the REST transport talks through `requests`).
RETRYABLE = (
    google_errors.TooManyRequests,
    google_errors.InternalServerError,
    google_errors.ServiceUnavailable,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
)
LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True)
class Ga4Config:
    property_id: str  # numeric
    endpoint: str | None  # None: Google's production endpoint
    anonymous: bool  # AnonymousCredentials (loopback sandbox) instead of Google's default credentials
    key_events: tuple[str, ...]

    @property
    def property(self) -> str:
        return f"properties/{self.property_id}"


def read_config() -> Ga4Config:
    """The GA4 settings from the environment.

    Returns:
        The validated settings.

    Raises:
        ConfigError: GA4_PROPERTY_ID is missing or not numeric, or GA4_API_ENDPOINT is plain http to a
            host other than loopback.
    """
    raw_id = require_env("GA4_PROPERTY_ID", "the GA4 source (the numeric property id, Admin > Property details)")
    property_id = raw_id.strip().removeprefix("properties/")
    if not property_id.isdigit():
        hint = (" That is a Measurement ID (a web stream's G-...), not the property id."
                if property_id.upper().startswith("G-") else "")
        raise ConfigError(
            f"$GA4_PROPERTY_ID={raw_id!r} is not a GA4 property id: it must be numeric, e.g. 412345678.{hint} "
            "Find it under Admin > Property details."
        )
    endpoint = env("GA4_API_ENDPOINT")
    anonymous = False
    if endpoint is not None:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parts.scheme == "http":
            if not _is_loopback(parts.hostname or ""):
                raise ConfigError(
                    f"$GA4_API_ENDPOINT={endpoint!r} is plain http to a non-loopback host; credentials would travel "
                    "in clear. Use https, or http only for a loopback sandbox (127.0.0.1)."
                )
            # The sandbox takes no Google credentials unless some were configured on purpose.
            anonymous = env("GOOGLE_APPLICATION_CREDENTIALS") is None
    key_events = tuple(e.strip() for e in (env("GA4_KEY_EVENTS") or "").split(",") if e.strip())
    return Ga4Config(property_id, endpoint, anonymous, key_events or settings.DEFAULT_KEY_EVENTS)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_client(config: Ga4Config) -> BetaAnalyticsDataClient:
    """The official client over REST, with anonymous credentials for a loopback sandbox.

    Raises:
        ConfigError: no Google credentials are available for the production API.
    """
    from google.auth.credentials import AnonymousCredentials

    options = {"api_endpoint": config.endpoint} if config.endpoint else None
    try:
        return BetaAnalyticsDataClient(
            credentials=AnonymousCredentials() if config.anonymous else None,
            transport="rest",
            client_options=options,
        )
    except auth_errors.DefaultCredentialsError as exc:
        raise ConfigError(
            "no Google credentials for the GA4 Data API: set $GOOGLE_APPLICATION_CREDENTIALS to a service account "
            f"key file whose account has Viewer access to property {config.property_id} ({exc})"
        ) from exc


def make_request(report: Report, config: Ga4Config, start: date, end: date, offset: int) -> RunReportRequest:
    """The runReport request of one page of `report`, ordered by its dimensions so pages are stable."""
    request = RunReportRequest(
        property=config.property,
        dimensions=[Dimension(name=name) for name, _ in report.dimensions],
        metrics=[Metric(name=metric.name) for metric in report.metrics],
        date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
        order_bys=[OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=name)) for name, _ in report.dimensions],
        limit=settings.PAGE_SIZE,
        offset=offset,
        return_property_quota=True,
    )
    if report.key_events_only:
        request.dimension_filter = FilterExpression(
            filter=Filter(field_name="eventName", in_list_filter=Filter.InListFilter(values=list(config.key_events)))
        )
    return request


def fetch_pages(
    client: BetaAnalyticsDataClient, config: Ga4Config, report: Report, start: date, end: date,
    progress: Callable[[str], None],
) -> Iterator[RunReportResponse]:
    """Every page of `report` over [start, end], following offset/limit until rowCount rows were read.

    Raises:
        SourceError: a call failed for good (after retries for quota and server errors).
    """
    endpoint = f"runReport:{report.table}"
    offset, page = 0, 1
    while True:
        request = make_request(report, config, start, end, offset)
        response = _call(client, request, endpoint, progress)
        rows = len(response.rows)
        progress(f"ga4: {report.table} {start}..{end} page {page}: "
                 + (f"rows {offset + 1}-{offset + rows} of {response.row_count}" if rows else "no rows"))
        yield response
        offset += rows
        if rows == 0 or offset >= response.row_count:
            return
        page += 1


def _call(client: BetaAnalyticsDataClient, request: RunReportRequest, endpoint: str,
          progress: Callable[[str], None]) -> RunReportResponse:
    attempts = []

    def on_error(exc: Exception) -> None:
        attempts.append(exc)
        wait = _retry_after(exc)
        progress(f"ga4: {endpoint}: {_describe(exc)}; retrying" + (f" after {wait:g}s (Retry-After)" if wait else ""))
        if wait:
            # api-core's Retry has no hook for a server-chosen delay, but it calls on_error before its own
            # (jittered, exponential) sleep: waiting here honours Retry-After, the backoff comes on top.
            time.sleep(min(wait, settings.RETRY_MAXIMUM))

    retry = google_retry.Retry(
        predicate=google_retry.if_exception_type(*RETRYABLE),
        initial=settings.RETRY_INITIAL,
        maximum=settings.RETRY_MAXIMUM,
        multiplier=settings.RETRY_MULTIPLIER,
        timeout=settings.RETRY_TIMEOUT,
        on_error=on_error,
    )
    try:
        return client.run_report(request=request, retry=retry, timeout=settings.REQUEST_TIMEOUT)
    except google_errors.RetryError as exc:
        raise SourceError(settings.SOURCE, endpoint, f"gave up after {len(attempts)} failed attempts within "
                          f"{settings.RETRY_TIMEOUT:g}s: {_describe(exc.cause or exc)}") from exc
    except google_errors.Forbidden as exc:
        raise SourceError(settings.SOURCE, endpoint, f"{_describe(exc)} Check $GA4_PROPERTY_ID "
                          f"({request.property}) and that the credentials' account can read it.") from exc
    except google_errors.Unauthorized as exc:
        raise SourceError(settings.SOURCE, endpoint, f"{_describe(exc)} Check the Google credentials "
                          "($GOOGLE_APPLICATION_CREDENTIALS).") from exc
    except google_errors.GoogleAPICallError as exc:
        raise SourceError(settings.SOURCE, endpoint, _describe(exc)) from exc
    except auth_errors.GoogleAuthError as exc:
        # After a 401 the client refreshes its credentials: anonymous ones (loopback mode) cannot be.
        raise SourceError(settings.SOURCE, endpoint, f"the server refused the credentials ({type(exc).__name__}: "
                          f"{exc}). Set $GOOGLE_APPLICATION_CREDENTIALS to a key file with access to "
                          f"{request.property}.") from exc


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    header = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(header) if header else None
    except ValueError:  # an HTTP date: leave the wait to the backoff
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, google_errors.GoogleAPICallError):
        # The message carries the method and URL; keep the status and Google's own words.
        return f"HTTP {exc.code} {type(exc).__name__}: {exc.message.split(': ', 1)[-1]}"
    return f"{type(exc).__name__}: {exc}"


def parse_row(report: Report, row) -> dict:
    """One report row as a raw_ga4 record.

    Raises:
        RecordError: a dimension or metric value does not parse (the row goes to quarantine).
    """
    record: dict = {}
    dimensions = [value.value for value in row.dimension_values]
    record_id = "/".join(dimensions)
    for (name, column), value in zip(report.dimensions, dimensions, strict=True):
        if name == "date":
            record[column] = _parse_date(report, record_id, value)
        else:
            record[column] = value
    for metric, cell in zip(report.metrics, row.metric_values, strict=True):
        record[metric.column] = _parse_number(report, record_id, metric.name, metric.kind, cell.value)
    return record


def _parse_date(report: Report, record_id: str, value: str) -> date:
    if not re.fullmatch(r"\d{8}", value):
        raise RecordError(settings.SOURCE, f"runReport:{report.table}", record_id, "date",
                          f"expected a date YYYYMMDD, got {value!r}")
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError as exc:
        raise RecordError(settings.SOURCE, f"runReport:{report.table}", record_id, "date",
                          f"{value!r} is not a calendar date") from exc


def _parse_number(report: Report, record_id: str, name: str, kind: type, value: str) -> int | float:
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or (kind is float and not math.isfinite(number)):
        expected = "an integer" if kind is int else "a number"
        raise RecordError(settings.SOURCE, f"runReport:{report.table}", record_id, name,
                          f"expected {expected}, got {value!r}")
    return number
