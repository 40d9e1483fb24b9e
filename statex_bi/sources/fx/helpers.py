"""Download and parse the ECB's `eurofxref-hist.csv` (wide: one column per currency, newest day first)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import requests
from dlt.sources.helpers.requests import Client

from statex_bi.exceptions import RecordError, SourceError
from statex_bi.sources.fx import settings


def download(url: str) -> str:
    """The file's text, retrying 429 (honouring Retry-After), 5xx, timeouts and dropped connections.

    Raises:
        SourceError: the download failed for good.
    """
    client = Client(
        request_timeout=settings.REQUEST_TIMEOUT,
        request_max_attempts=settings.MAX_ATTEMPTS,
        request_backoff_factor=settings.BACKOFF_FACTOR,
        request_max_retry_delay=settings.MAX_RETRY_DELAY,
        # A body shorter than its Content-Length (a dropped connection) is retried like a connection error.
        exceptions=(requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError),
    )
    try:
        response = client.get(url)
    except requests.HTTPError as exc:
        raise SourceError(settings.SOURCE, settings.ENDPOINT, f"HTTP {exc.response.status_code} from {url} after "
                          f"{settings.MAX_ATTEMPTS} attempts") from exc
    except requests.RequestException as exc:
        raise SourceError(settings.SOURCE, settings.ENDPOINT, f"{type(exc).__name__} from {url} after "
                          f"{settings.MAX_ATTEMPTS} attempts: {exc}") from exc
    return response.text


@dataclass(frozen=True)
class Rejected:
    """A line or cell that does not parse, with what it held."""

    error: RecordError
    payload: dict
    day: date | None  # None when the date itself does not parse


def parse(text: str) -> Iterator[dict | Rejected]:
    """Long rows {date, currency, rate} from the wide file; a `Rejected` for each date or cell that does not parse.

    Raises:
        SourceError: the file does not have the ECB layout (first column `Date`, one column per currency).
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[0].strip() != "Date" or len(header) < 2:
        raise SourceError(settings.SOURCE, settings.ENDPOINT,
                          f"not the ECB layout: the header should start with 'Date,' and list currencies, got "
                          f"{','.join(header or [])[:80]!r}")
    # Every line ends with a comma: the last column has no name and no values.
    currencies = [(index, name.strip()) for index, name in enumerate(header) if index > 0 and name.strip()]
    for line_number, cells in enumerate(reader, start=2):
        if not cells or not any(cell.strip() for cell in cells):
            continue
        day_text = cells[0].strip()
        try:
            day = datetime.strptime(day_text, "%Y-%m-%d").date()
        except ValueError:
            error = RecordError(settings.SOURCE, settings.ENDPOINT, f"line {line_number}", "Date",
                                f"expected a date YYYY-MM-DD, got {day_text!r}")
            yield Rejected(error, {name: cell for name, cell in zip(header, cells, strict=False) if name}, None)
            continue
        for index, currency in currencies:
            cell = cells[index].strip() if index < len(cells) else ""
            if cell in settings.MISSING:
                continue
            rate = _rate(cell)
            if rate is None:
                error = RecordError(settings.SOURCE, settings.ENDPOINT, f"{day.isoformat()}/{currency}", currency,
                                    f"expected a positive rate, got {cell!r}")
                yield Rejected(error, {"Date": day_text, currency: cell}, day)
                continue
            yield {"date": day, "currency": currency, "rate": rate}


def _rate(cell: str) -> float | None:
    try:
        rate = float(cell)
    except ValueError:
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


def in_window(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)
