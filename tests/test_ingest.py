"""The loading mechanism every source shares: atomic loads, kept cursors, recorded attempts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

import dlt
import duckdb
import pytest
from receivers import HttpReceiver

from statex_bi import display, warehouse
from statex_bi.exceptions import SourceError
from statex_bi.ingest import DLT_TELEMETRY_VARIABLE, ingest, load_source
from statex_bi.periods import Period
from statex_bi.sources.common import pseudonymise, quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.fx import settings as fx_settings


def _orders_source(rows: list[dict], fail_after: int | None = None):
    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders(updated=dlt.sources.incremental("updated", initial_value=0, on_cursor_value_missing="include")):
        for index, row in enumerate(rows):
            if fail_after is not None and index == fail_after:
                raise ConnectionError("connection reset by peer")
            if not isinstance(row["amount"], int):
                yield quarantined("shop", "/orders", row["id"], "amount", "not an integer", row)
                continue
            yield row

    return orders


def _spec(rows, fail_after=None) -> SourceSpec:
    return SourceSpec(
        "shop", lambda request: _orders_source(rows, fail_after), "SELECT max(updated) FROM raw_shop.orders"
    )


def _quiet(messages):
    return IngestRequest(progress=messages.append)


def _table(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_load_that_fails_midway_keeps_the_earlier_data_and_cursor(db_file):
    messages: list[str] = []
    first = [{"id": 1, "amount": 10, "updated": 1}, {"id": 2, "amount": 20, "updated": 2}]
    assert load_source(_spec(first), _quiet(messages), db_file).status == "succeeded"

    second = [{"id": 2, "amount": 25, "updated": 3}, {"id": 3, "amount": 30, "updated": 4}]
    result = load_source(_spec(second, fail_after=1), _quiet(messages), db_file)
    assert result.status == "failed"
    assert "connection reset by peer" in result.error
    assert _table(db_file, "SELECT id, amount FROM raw_shop.orders ORDER BY id") == [(1, 10), (2, 20)]

    # The cursor did not move: a retry loads both new rows, merging on id.
    assert load_source(_spec(second), _quiet(messages), db_file).status == "succeeded"
    assert _table(db_file, "SELECT id, amount FROM raw_shop.orders ORDER BY id") == [(1, 10), (2, 25), (3, 30)]
    attempts = _table(db_file, "SELECT status FROM ops.source_loads WHERE source = 'shop' ORDER BY started_at")
    assert [a[0] for a in attempts] == ["succeeded", "failed", "succeeded"]
    assert any("shop: failed" in m for m in messages)


def test_bad_records_are_quarantined_once_and_the_rest_loads(db_file):
    rows = [{"id": 1, "amount": 10, "updated": 1}, {"id": 2, "amount": "ten", "updated": 2}]
    load_source(_spec(rows), _quiet([]), db_file)
    load_source(_spec(rows), IngestRequest(full_refresh=True, progress=lambda m: None), db_file)
    assert _table(db_file, "SELECT id FROM raw_shop.orders") == [(1,)]
    quarantine = _table(db_file, "SELECT record_id, field, error FROM raw_shop.quarantine")
    assert quarantine == [("2", "amount", "not an integer")]


def test_when_every_source_fails_the_models_are_left_as_they_were(db_file, monkeypatch):
    monkeypatch.setenv("FX_RATES_URL", "http://127.0.0.1:9/eurofxref-hist.csv")  # nothing listens on port 9
    monkeypatch.setattr(fx_settings, "BACKOFF_FACTOR", 0.01)  # the refused connection is retried, briefly
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    messages: list[str] = []

    results = ingest(["fx", "stripe"], _quiet(messages), db=db_file)

    assert [r.status for r in results] == ["failed", "failed"]
    assert "models: not rebuilt, no source loaded (`statex-bi build` rebuilds them)" in messages
    assert _table(db_file, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'marts'") == [(0,)]


def test_a_failed_load_stores_and_shows_its_error_without_the_row_or_an_address(db_file):
    """Before: DuckDB's error quoted the INSERT row, e-mail address and name included, into ops.source_loads
    and every report's header. Loads go through Parquet since issue 21: the value out of the column's range
    fails in dlt's normalize, which names the precision, not the row."""
    @dlt.resource(name="charges", columns={"cost": {"data_type": "decimal", "precision": 38, "scale": 18}})
    def charges():
        yield {"cost": Decimal("1E+25"), "owner": "alice@example.com Alice Liddell"}

    spec = SourceSpec("shop", lambda request: charges(), "SELECT 1")
    result = load_source(spec, _quiet([]), db_file)
    assert result.status == "failed" and "does not fit" in result.error
    [(stored,)] = _table(db_file, "SELECT error FROM ops.source_loads")
    with warehouse.writer(db_file) as con:
        page = display.header_html("Weekly", Period(date(2026, 2, 23), date(2026, 3, 1)), {}, con,
                                   datetime(2026, 3, 2, 7, tzinfo=UTC))
    assert "last load failed" in page
    for text in (result.error, stored, page):
        assert "alice@example.com" not in text and "Liddell" not in text and "LINE" not in text


def test_a_source_error_naming_an_address_is_stored_with_its_pseudonym(db_file):
    def build(request):
        raise SourceError("shop", "/customers", "no customer alice@example.com\nsecond line kept")

    result = load_source(SourceSpec("shop", build, "SELECT 1"), _quiet([]), db_file)
    assert _table(db_file, "SELECT error FROM ops.source_loads") == [(result.error,)]
    assert result.error == f"shop: /customers: no customer {pseudonymise('alice@example.com')}\nsecond line kept"


LOAD_ONE_SOURCE = """
import sys
from pathlib import Path
import dlt
from statex_bi.ingest import load_source
from statex_bi.sources.contract import IngestRequest, SourceSpec
spec = SourceSpec("shop", lambda request: dlt.resource([{"id": 1}], name="orders", primary_key="id"),
                  "SELECT 1")
result = load_source(spec, IngestRequest(progress=lambda message: None), Path(sys.argv[1]))
assert result.status == "succeeded", result.error
"""


@pytest.mark.parametrize("opted_in", [False, True])
def test_loads_send_dlt_no_telemetry_unless_the_user_opts_in(db_file, monkeypatch, opted_in):
    """dlt posts usage events to dlthub for every step of a load by default; a load of ours posts none, unless
    $RUNTIME__DLTHUB_TELEMETRY says so. A new process, since dlt starts its telemetry once per process."""
    monkeypatch.delenv(DLT_TELEMETRY_VARIABLE, raising=False)
    if opted_in:
        monkeypatch.setenv(DLT_TELEMETRY_VARIABLE, "true")
    with HttpReceiver([200], body=b"{}") as dlthub:
        monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY_ENDPOINT", dlthub.url)
        subprocess.run([sys.executable, "-c", LOAD_ONE_SOURCE, str(db_file)], check=True, timeout=120)

    events = [json.loads(request.body)["event"] for request in dlthub.requests]
    if opted_in:
        assert "pipeline_load" in events, events
    else:
        assert events == []
