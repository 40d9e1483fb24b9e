"""A report whose sources' last load failed says so at the top, from ops.source_loads."""

from __future__ import annotations

from datetime import UTC, date, datetime

from statex_bi import display, warehouse
from statex_bi.periods import Period


def test_the_header_warns_about_sources_whose_last_load_failed(db_file):
    with warehouse.writer(db_file) as con:
        con.execute(
            "INSERT INTO ops.source_loads VALUES ('paypal', '2026-03-02 06:00', '2026-03-02 06:03', 'failed', 0, NULL, "
            "'SourceError: paypal: HTTP 401 from /v1/reporting/transactions'), "
            "('fx', '2026-03-02 06:00', '2026-03-02 06:01', 'succeeded', 5, NULL, NULL)"
        )
        markup = display.header_html("Weekly", Period(date(2026, 2, 23), date(2026, 3, 1)), {}, con,
                                    datetime(2026, 3, 2, 7, tzinfo=UTC))
    notice = markup[markup.index("statex-failed-loads"):]
    notice = notice[: notice.index("</div>")]
    assert "the latest load of 1 source(s) failed" in notice
    assert "<strong>paypal</strong>: last load failed 2026-03-02 06:03 UTC (SourceError: paypal: HTTP 401" in notice
    assert "fx" not in notice
    assert markup.index("statex-failed-loads") < markup.index("Newest data per source"), "at the top"


def test_no_warning_when_every_last_load_succeeded(db_file):
    with warehouse.writer(db_file) as con:
        markup = display.header_html("Weekly", Period(date(2026, 2, 23), date(2026, 3, 1)), {}, con,
                                    datetime(2026, 3, 2, 7, tzinfo=UTC))
    assert "statex-failed-loads" not in markup
