"""ECB euro foreign exchange reference rates (`eurofxref-hist.csv`) -> raw_fx.eur_reference_rates.

The ECB publishes the whole history as one wide CSV (a column per currency, newest day first, "N/A"
where a currency had no rate). Each run downloads it (plain HTTP through dlt's retrying `requests`
helper) and loads it as long rows (date, currency, rate), merged on (date, currency). Incremental on
`date`: only days newer than the newest loaded one, unless --full-refresh. An explicit --start loads
[--start, --end] whatever the cursor (the ECB does not revise rates, so the merge changes nothing
already loaded) and leaves the cursor alone; --end alone stops the load at that day.

Environment: FX_RATES_URL (default the ECB's eurofxref-hist.csv). A cell that does not parse goes to
raw_fx.quarantine (record `date/currency`, field = the currency column) in the same load.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time

import dlt

from statex_bi.config import env
from statex_bi.exceptions import ParamsError, RecordError
from statex_bi.sources.common import RecordGuard, quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.fx import helpers, settings


def build(request: IngestRequest):
    """The FX dlt resource for one ingest request.

    Args:
        request: the optional --start/--end window and the progress callback.

    Returns:
        The dlt source `fx` with the resource `eur_reference_rates`.

    Raises:
        ParamsError: --start is after --end (or after today).
    """
    url = env("FX_RATES_URL", settings.DEFAULT_URL)
    start, end = request.start, request.end
    if start is not None:
        last = end or date.today()
        if start > last:
            raise ParamsError(f"fx: --start {start} is after {'--end' if end else 'today'} ({last})")
        cursor = dlt.sources.incremental("date", initial_value=start, end_value=last, range_end="closed",
                                         on_cursor_value_missing="include")
    else:
        # Open start: the newest loaded day is not read again.
        cursor = dlt.sources.incremental("date", initial_value=settings.FIRST_DAY, range_start="open",
                                         on_cursor_value_missing="include")

    def eur_reference_rates(cursor=cursor) -> Iterator[dict]:
        text = helpers.download(url)
        request.progress(f"fx: downloaded {len(text):,} characters from {url}")
        newer_than = cursor.last_value if start is None else None

        def wanted(day: date | None) -> bool:
            # A line whose date does not parse cannot be placed: it is always reported.
            return day is None or (helpers.in_window(day, start, end) and (newer_than is None or day > newer_than))

        # Checked before the incremental sees them: a bad row moves no cursor.
        guard = RecordGuard(settings.SOURCE, settings.ENDPOINT, ("date", "currency"), timestamps=("date",),
                            positive=("rate",), earliest=datetime.combine(settings.FIRST_DAY, time()))
        for item in helpers.parse(text):
            if isinstance(item, helpers.Rejected):
                if wanted(item.day):
                    request.progress(f"fx: quarantined: {item.error}")
                    yield quarantined(settings.SOURCE, item.error.endpoint, item.error.record_id, item.error.field,
                                      str(item.error), item.payload)
            elif wanted(item["date"]):
                try:
                    yield guard.check(item)
                except RecordError as exc:
                    request.progress(f"fx: quarantined: {exc}")
                    yield quarantined(settings.SOURCE, exc.endpoint, exc.record_id, exc.field, str(exc),
                                      {"Date": item["date"].isoformat(), item["currency"]: item["rate"]})

    @dlt.source(name="fx")
    def fx():
        # Column types come from the parsed values. No column hints: the quarantine table is a variant of
        # this resource and would inherit them.
        return dlt.resource(eur_reference_rates, name="eur_reference_rates", write_disposition="merge",
                            primary_key=("date", "currency"))

    return fx()


SPEC = SourceSpec(name="fx", build=build, watermark_sql="SELECT max(date) FROM raw_fx.eur_reference_rates")
