"""The FX connector against the loopback ECB file: it loads exactly the simulated reference rates."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from statex_bi.demo.apis import fx as fx_api
from statex_bi.demo.fx import FxData, ecb_csv, simulate_fx
from statex_bi.demo.world import WorldConfig
from statex_bi.ingest import load_source, pipeline_for
from statex_bi.sources import fx as fx_source
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.fx import settings

# Six weeks across Bulgaria's switch to the euro (BGN turns N/A) and the TARGET New Year holiday.
CONFIG = WorldConfig(date(2025, 12, 1), date(2026, 1, 11), seed=9)


@pytest.fixture(scope="module")
def fx():
    return simulate_fx(CONFIG)


@pytest.fixture
def messages():
    return []


@pytest.fixture
def serve(monkeypatch, db_file):
    """Serve a CSV text, point the connector at it, and return the sandbox."""
    monkeypatch.setattr(settings, "BACKOFF_FACTOR", 0.05)
    started = []

    def start(text):
        sandbox = fx_api.serve(text).start()
        started.append(sandbox)
        for key, value in fx_api.environment(sandbox.url).items():
            monkeypatch.setenv(key, value)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


def until(fx: FxData, last: date) -> FxData:
    """The file as it was published on `last`."""
    return FxData(fx.currencies, [d for d in fx.dates if d <= last],
                  {k: v for k, v in fx.rates.items() if k[0] <= last})


def load(db, messages, **options):
    return load_source(fx_source.SPEC, IngestRequest(progress=messages.append, **options), db)


def query(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def loaded(db) -> dict:
    rows = query(db, "SELECT currency, count(*), count(DISTINCT date), round(sum(rate), 6), min(date), max(date) "
                     "FROM raw_fx.eur_reference_rates GROUP BY currency ORDER BY currency")
    return {currency: rest for currency, *rest in rows}


def expected(fx: FxData, start: date = date.min, end: date = date.max) -> dict:
    out = {}
    for code in sorted({c for _, c in fx.rates}):
        days = sorted(d for d, c in fx.rates if c == code and start <= d <= end)
        if days:
            out[code] = [len(days), len(days), round(sum(fx.rates[(d, code)] for d in days), 6), days[0], days[-1]]
    return out


def cursor(db):
    state = pipeline_for(fx_source.SPEC, db).state
    resource = state.get("sources", {}).get("fx", {}).get("resources", {}).get("eur_reference_rates", {})
    return resource.get("incremental", {}).get("date", {}).get("last_value")


def test_loads_exactly_the_published_rates(serve, db_file, fx, messages):
    serve(ecb_csv(fx))
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    assert loaded(db_file) == expected(fx)
    assert "CYP" not in loaded(db_file)
    assert loaded(db_file)["BGN"][-1] == date(2025, 12, 31)  # N/A afterwards: skipped
    assert query(db_file, fx_source.SPEC.watermark_sql) == [(fx.dates[-1],)]


def test_rerun_adds_nothing_and_later_runs_add_only_new_days(serve, db_file, fx, messages):
    cutoff = date(2025, 12, 19)
    serve(ecb_csv(until(fx, cutoff)))
    assert load(db_file, messages).status == "succeeded"
    again = load(db_file, messages)
    assert again.status == "succeeded" and again.rows == 0
    assert loaded(db_file) == expected(fx, end=cutoff)

    # A day later the file has grown; a rate of a loaded day differs, which must not be read again.
    altered = dict(fx.rates)
    altered[(cutoff, "USD")] = 9.9999
    serve(ecb_csv(FxData(fx.currencies, fx.dates, altered)))
    result = load(db_file, messages)
    assert result.status == "succeeded"
    assert result.rows == sum(1 for d, _ in fx.rates if d > cutoff)
    assert loaded(db_file) == expected(fx)


def test_full_refresh_reads_everything_again(serve, db_file, fx, messages):
    serve(ecb_csv(fx))
    assert load(db_file, messages).status == "succeeded"
    revised = {k: (1.5 if k == (fx.dates[0], "USD") else v) for k, v in fx.rates.items()}
    serve(ecb_csv(FxData(fx.currencies, fx.dates, revised)))
    assert load(db_file, messages, full_refresh=True).status == "succeeded"
    assert loaded(db_file) == expected(FxData(fx.currencies, fx.dates, revised))


def test_window_loads_exactly_the_window_and_keeps_the_cursor(serve, db_file, fx, messages):
    serve(ecb_csv(fx))
    start, end = date(2025, 12, 10), date(2025, 12, 20)
    assert load(db_file, messages, start=start, end=end).status == "succeeded"
    assert loaded(db_file) == expected(fx, start, end)
    assert cursor(db_file) is None
    assert load(db_file, messages, end=end).status == "succeeded"
    assert loaded(db_file) == expected(fx, end=end)
    assert cursor(db_file) == date(2025, 12, 19)  # the last business day up to the 20th


def test_transient_faults_are_retried(serve, db_file, fx, messages, monkeypatch):
    sandbox = serve(ecb_csv(fx))
    kinds = ("429", "429-bare", "500", "503", "truncated")
    monkeypatch.setattr(settings, "MAX_ATTEMPTS", len(kinds) + 1)
    for kind in kinds:  # one after the other: each request meets the next fault
        sandbox.inject(kind)
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    assert loaded(db_file) == expected(fx)
    assert len(sandbox.requests) == 1 + len(kinds)


def test_slow_answer_times_out_and_is_retried(serve, db_file, fx, messages, monkeypatch):
    monkeypatch.setattr(settings, "REQUEST_TIMEOUT", 0.5)
    sandbox = serve(ecb_csv(fx))
    sandbox.inject("slow", times=1, delay=1.5)
    assert load(db_file, messages).status == "succeeded"
    assert loaded(db_file) == expected(fx)
    assert len(sandbox.requests) == 2


def test_persistent_failure_keeps_earlier_data_and_cursor(serve, db_file, fx, messages, monkeypatch):
    first = until(fx, date(2025, 12, 19))
    serve(ecb_csv(first))
    assert load(db_file, messages).status == "succeeded"
    before, last = loaded(db_file), cursor(db_file)
    monkeypatch.setattr(settings, "MAX_ATTEMPTS", 3)
    sandbox = serve(ecb_csv(fx))
    sandbox.inject("503", times=100)
    result = load(db_file, messages)
    assert result.status == "failed"
    assert result.error.startswith("fx: eurofxref-hist.csv: HTTP 503 from http://127.0.0.1:")
    assert "after 3 attempts" in result.error and len(sandbox.requests) == 3
    assert loaded(db_file) == before and cursor(db_file) == last == date(2025, 12, 19)


def test_unparsable_cells_go_to_quarantine(serve, db_file, fx, messages):
    text = ecb_csv(fx)
    bad_day = fx.dates[3]
    good_gbp = f"{fx.rates[(bad_day, 'GBP')]:.5f}"
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(bad_day.isoformat()))
    lines[index] = lines[index].replace(f",{good_gbp},", ",0.8x712,")
    lines.insert(1, lines[1].replace(lines[1].split(",")[0], "2026-13-01", 1))
    serve("".join(lines))
    assert load(db_file, messages).status == "succeeded"
    good = {k: v for k, v in fx.rates.items() if k != (bad_day, "GBP")}
    assert loaded(db_file) == expected(FxData(fx.currencies, fx.dates, good))
    rows = query(db_file, "SELECT source, endpoint, record_id, field, error FROM raw_fx.quarantine ORDER BY field")
    assert rows == [
        ("fx", "eurofxref-hist.csv", "line 2", "Date",
         "fx: eurofxref-hist.csv: record line 2: field 'Date': expected a date YYYY-MM-DD, got '2026-13-01'"),
        ("fx", "eurofxref-hist.csv", f"{bad_day}/GBP", "GBP",
         f"fx: eurofxref-hist.csv: record {bad_day}/GBP: field 'GBP': expected a positive rate, got '0.8x712'"),
    ]


def test_a_file_without_the_ecb_layout_is_refused(serve, db_file, messages):
    serve("<html><body>Maintenance</body></html>\n")
    result = load(db_file, messages)
    assert result.status == "failed"
    assert result.error.startswith("fx: eurofxref-hist.csv: not the ECB layout: the header should start with 'Date,'")


def test_start_after_end_is_refused(serve, db_file, fx, messages):
    sandbox = serve(ecb_csv(fx))
    result = load(db_file, messages, start=date(2026, 1, 5), end=date(2026, 1, 2))
    assert result.status == "failed" and result.error == "fx: --start 2026-01-05 is after --end (2026-01-02)"
    assert not sandbox.requests
