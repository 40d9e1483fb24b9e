"""Constants of the FX source (ECB euro foreign exchange reference rates)."""

from __future__ import annotations

from datetime import date

SOURCE = "fx"
ENDPOINT = "eurofxref-hist.csv"
DEFAULT_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.csv"
FIRST_DAY = date(1999, 1, 4)  # the first day the ECB published reference rates
MISSING = ("N/A", "")  # cells of currencies without a rate that day
REQUEST_TIMEOUT = 60.0  # seconds
MAX_ATTEMPTS = 5
BACKOFF_FACTOR = 1.0  # exponential backoff multiplier between attempts (seconds), unless Retry-After says otherwise
MAX_RETRY_DELAY = 60.0
