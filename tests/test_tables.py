"""Report tables: people's labels, values formatted by unit, full-precision CSV in the page."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pandas as pd

from statex_bi.tables import Column, Kpi, kpis_html, table_html


def _cells(markup: str) -> list[str]:
    return re.findall(r"<td[^>]*>([^<]*)</td>", markup)


def _headers(markup: str) -> list[str]:
    return re.findall(r"<th[^>]*>([^<]*)</th>", markup)


def test_a_stakeholder_table_has_labels_units_and_no_scientific_notation_or_python_booleans():
    """The defects of issue 8: `8.993e+04 EUR`, `-0.0002` with a hyphen, True/False, raw column names."""
    frame = pd.DataFrame({
        "gross": [89930.0, 12.5], "gap_usd": [-0.0002, 0.0], "significant": [True, False],
        "latency_p95_ms": [850.0, 2400.0], "duration_s": [0.2, 185.0], "internal": ["x", "y"],
    })
    markup = table_html(frame, {"gross": Column("Gross", "EUR"), "gap_usd": Column("Gap", "USD"),
                          "significant": "Significant", "latency_p95_ms": Column("p95 latency", "ms"),
                          "duration_s": Column("Average session", "s")})
    assert _headers(markup) == ["Gross (EUR)", "Gap (USD)", "Significant", "p95 latency", "Average session"]
    assert _cells(markup) == [
        "€89,930.00", "\u2212$0.0002", "yes", "850 ms", "200 ms",
        "€12.50", "$0.00", "no", "2.4 s", "3 min 05 s",
    ]
    assert not re.search(r"\de[+-]\d|True|False|internal", markup.split("<p class=\"statex-csv\">")[0])


def test_every_table_embeds_its_full_precision_data_as_a_csv_download():
    frame = pd.DataFrame({"tier": ["openai", "azure"], "cost_usd": [0.000123456789, 12.3456789], "calls": [3, 40]})
    markup = table_html(frame, {"tier": "Tier", "cost_usd": Column("Cost", "USD")}, caption="Cost by tier")
    link = re.search(r'<a class="statex-csv-link" download="([^"]+)" href="data:text/csv;charset=utf-8,([^"]+)"',
                     markup)
    assert link.group(1) == "cost-by-tier.csv"
    assert unquote(link.group(2)) == "Tier,Cost (USD)\nopenai,0.000123456789\nazure,12.3456789\n"


def test_kpi_cards_format_by_unit_and_say_why_a_value_is_missing():
    markup = kpis_html([Kpi("Net revenue", 26064.0046, "EUR"), Kpi("Cost per prototype", None, "USD", "no prototype")])
    assert re.findall(r'statex-kpi-value">([^<]*)<', markup) == ["€26,064.00", "n/a"]
    assert '<div class="statex-kpi-detail">no prototype</div>' in markup
