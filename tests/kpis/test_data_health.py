"""Data-health KPIs against a real warehouse loaded through a real (tiny) dlt pipeline."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import dlt
import pytest

from statex_bi import display, warehouse
from statex_bi.exceptions import WarehouseError
from statex_bi.ingest import load_source
from statex_bi.kpis import data_health as health
from statex_bi.periods import Period
from statex_bi.sources.common import quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.transform import build as project
from statex_bi.transform import freshness

PERIOD = Period(date(2026, 10, 5), date(2026, 10, 11))


def _events(seed: int, count: int) -> list[dict]:
    """Orders with tz-aware timestamps spread over September-October 2026, in random order."""
    rng = random.Random(seed)
    start = datetime(2026, 9, 20, tzinfo=UTC)
    return [
        {"id": i, "created": start + timedelta(minutes=rng.randrange(0, 60 * 24 * 21)), "amount": rng.randrange(1, 99)}
        for i in range(count)
    ]


def _shop_source(orders: list[dict], bad: list[dict], days: list[date]):
    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders_resource():
        yield from orders
        for row in bad:
            yield quarantined("shop", "/orders", str(row["id"]), "amount", f"not a number: {row['amount']!r}", row)

    @dlt.resource(name="daily", write_disposition="replace")
    def daily_resource():
        # The nested list becomes the child table daily__lines, which has no date column.
        yield from ({"day": d, "visits": 10, "lines": [{"n": 1}, {"n": 2}]} for d in days)

    return [orders_resource, daily_resource]


def _load(db, name: str, build) -> None:
    load_source(SourceSpec(name, build, "SELECT 1"), IngestRequest(progress=lambda message: None), db)


def _failing(request):
    raise ConnectionError("ECB endpoint unreachable")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """One warehouse: shop loaded once (with quarantined records), fx failing twice."""
    db = tmp_path_factory.mktemp("health") / "warehouse.duckdb"
    orders = _events(seed=7, count=300)
    bad = [{"id": 1000 + i, "amount": "n/a"} for i in range(3)]
    days = [date(2026, 10, 1) + timedelta(days=i) for i in range(9)]  # up to 9 October
    before = datetime.now(UTC).replace(tzinfo=None)
    _load(db, "shop", lambda request: _shop_source(orders, bad, days))
    after = datetime.now(UTC).replace(tzinfo=None)
    _load(db, "fx", _failing)
    _load(db, "fx", _failing)
    con = warehouse.connect(db, read_only=True)
    yield {"con": con, "orders": orders, "bad": bad, "days": days, "loaded_between": (before, after)}
    con.close()


def _hours(delta: timedelta) -> float:
    return max(delta.total_seconds() / 3600, 0.0)


def test_tables_lists_data_tables_only_with_counts_and_dates(loaded):
    frame = health.tables(loaded["con"], PERIOD).set_index("table")
    # Not dlt's bookkeeping, not the quarantine, not the raw_shop_staging schema dlt's merge creates.
    assert sorted(frame.index) == ["raw_shop.daily", "raw_shop.daily__lines", "raw_shop.orders"]
    assert set(frame["source"]) == {"shop"}

    created = [o["created"].astimezone(UTC).replace(tzinfo=None) for o in loaded["orders"]]
    orders = frame.loc["raw_shop.orders"]
    assert orders["rows"] == len(loaded["orders"])
    assert orders["date_column"] == "created"
    assert orders["first_data"].to_pydatetime() == min(created)
    assert orders["last_data"].to_pydatetime() == max(created)
    in_period = sum(PERIOD.start <= c.date() <= PERIOD.end for c in created)
    assert orders["rows_in_period"] == in_period

    daily = frame.loc["raw_shop.daily"]
    assert daily["rows"] == len(loaded["days"])
    assert daily["last_data"].date() == max(loaded["days"])
    assert frame.loc["raw_shop.daily__lines", "rows"] == 2 * len(loaded["days"])
    # The shop is no source of the dbt project, and nothing was checked: no table is judged.
    assert set(frame["status"]) == {"not checked"} and frame["hours_behind"].isna().all()


def _hours_in_yml(table: str, limit: str) -> float:
    """A limit as staging/_stripe__sources.yml or _ga4__sources.yml writes it, in hours."""
    source = "stripe" if table.startswith("raw_stripe") else "ga4"
    entry = project.declared_sources()[(source, table.split(".")[1])]["freshness"][limit]
    return entry["count"] * {"hour": 1, "day": 24}[entry["period"]]


def test_freshness_is_dbts_judgement_of_each_tables_own_limits(db_file):
    """Stripe's refunds are rare: three weeks without one is fresh, while three weeks without a charge is
    stale. A GA4 day is complete at midnight. dbt checks the real sources.yml limits on the real tables."""
    now = datetime.now(UTC).replace(tzinfo=None)
    three_weeks_ago = now - timedelta(days=21)
    yesterday, five_days_ago = now.date() - timedelta(days=1), now.date() - timedelta(days=5)
    with warehouse.writer(db_file) as con:
        con.execute("CREATE SCHEMA raw_stripe")
        con.execute("CREATE SCHEMA raw_ga4")
        for table in ("charges", "refunds", "balance_transactions"):
            con.execute(f"CREATE TABLE raw_stripe.{table} (id VARCHAR, created TIMESTAMP, amount BIGINT)")
        for table in ("charges", "refunds"):
            con.execute(f"INSERT INTO raw_stripe.{table} VALUES ('x', ?, 100)", [three_weeks_ago])
        for table, day in (("daily_users", yesterday), ("traffic_by_channel", five_days_ago)):
            con.execute(f"CREATE TABLE raw_ga4.{table} (date DATE, users BIGINT)")
            con.execute(f"INSERT INTO raw_ga4.{table} VALUES (?, 7)", [day])
    with warehouse.connect(db_file, read_only=True) as con:
        assert health.notes(con, PERIOD) == [health.FRESHNESS_NOT_CHECKED]
        assert set(health.tables(con, PERIOD)["status"]) == {"not checked"}

    freshness.check(db_file, progress=lambda message: None)

    with warehouse.connect(db_file, read_only=True) as con:
        frame = health.tables(con, PERIOD).set_index("table")
        checked_at = health.freshness_checked_at(con)
        assert health.notes(con, PERIOD) == []
        assert f"{checked_at:%Y-%m-%d %H:%M} UTC" in health.freshness_note(con)
    assert now <= checked_at <= datetime.now(UTC).replace(tzinfo=None)
    assert frame.loc["raw_stripe.refunds", "status"] == "fresh"
    assert frame.loc["raw_stripe.charges", "status"] == "stale"
    assert frame.loc["raw_stripe.balance_transactions", "status"] == "no data"
    for table in ("raw_stripe.charges", "raw_stripe.refunds"):
        assert frame.loc[table, "hours_behind"] == pytest.approx((checked_at - three_weeks_ago).total_seconds() / 3600,
                                                                 abs=0.05)
        assert frame.loc[table, "error_after_hours"] == _hours_in_yml(table, "error_after")
        assert frame.loc[table, "warn_after_hours"] == _hours_in_yml(table, "warn_after")
    # Yesterday's GA4 rows cover until midnight; five days ago is past the warning, not the error limit.
    midnight = datetime.combine(now.date(), datetime.min.time())
    assert frame.loc["raw_ga4.daily_users", "hours_behind"] == pytest.approx(
        (checked_at - midnight).total_seconds() / 3600, abs=0.05)
    assert frame.loc["raw_ga4.daily_users", "status"] == "fresh"
    assert _hours_in_yml("raw_ga4.traffic_by_channel", "warn_after") < 4 * 24
    assert _hours_in_yml("raw_ga4.traffic_by_channel", "error_after") > 5 * 24
    assert frame.loc["raw_ga4.traffic_by_channel", "status"] == "late"
    with warehouse.connect(db_file, read_only=True) as con:
        counts = health.totals(con, PERIOD).iloc[0]
    assert (counts["stale_tables"], counts["late_tables"]) == (2, 1)  # no data counts as stale


def test_a_table_dbt_cannot_check_is_shown_with_dbts_message(db_file):
    """sources.yml dates Stripe charges by `created`: a table without it is an error the report names."""
    with warehouse.writer(db_file) as con:
        con.execute("CREATE SCHEMA raw_stripe")
        con.execute("CREATE TABLE raw_stripe.charges (id VARCHAR, amount BIGINT)")
        con.execute("INSERT INTO raw_stripe.charges VALUES ('x', 100)")

    freshness.check(db_file, progress=lambda message: None)

    with warehouse.connect(db_file, read_only=True) as con:
        frame = health.tables(con, PERIOD).set_index("table")
        said = health.notes(con, PERIOD)
    assert frame.loc["raw_stripe.charges", "status"] == "error"
    assert "created" in frame.loc["raw_stripe.charges", "freshness_message"]
    assert len(said) == 1 and said[0].startswith("dbt could not check the freshness of raw_stripe.charges:")


def test_sources_report_loads_failures_and_quarantine(loaded):
    frame = health.sources(loaded["con"], PERIOD).set_index("source")
    assert sorted(frame.index) == ["fx", "shop"]
    shop = frame.loc["shop"]
    assert shop["tables"] == 3
    assert shop["quarantined"] == len(loaded["bad"])
    assert shop["failed_attempts"] == 0
    assert shop["last_attempt_status"] == "succeeded"
    before, after = loaded["loaded_between"]
    assert before <= shop["last_successful_load"].to_pydatetime() <= after

    fx = frame.loc["fx"]
    assert fx["tables"] == 0 and fx["quarantined"] == 0
    assert fx["last_attempt_status"] == "failed"
    assert fx["failed_attempts"] == 2
    assert "ECB endpoint unreachable" in fx["last_error"]
    assert fx["last_successful_load"] is None or str(fx["last_successful_load"]) == "NaT"

    # Attempts before the period start are not counted as failures of this period.
    later = Period(date(2099, 1, 1), date(2099, 1, 7))
    assert health.sources(loaded["con"], later).set_index("source").loc["fx", "failed_attempts"] == 0
    failures = health.failed_loads(loaded["con"], Period(date(2020, 1, 1), date(2020, 1, 2)))
    assert list(failures["source"]) == ["fx", "fx"]


def test_quarantine_errors_group_the_bad_records(loaded):
    errors = health.quarantine_errors(loaded["con"], PERIOD)
    expected = {f"not a number: {row['amount']!r}" for row in loaded["bad"]}
    assert set(errors["error"]) == expected
    assert errors["records"].sum() == len(loaded["bad"])
    assert set(errors["example_record"]) == {str(min(row["id"] for row in loaded["bad"]))}


def test_totals_are_the_published_counts(loaded):
    counts = health.totals(loaded["con"], Period(date(2020, 1, 1), date(2020, 1, 2)))
    row = counts.iloc[0]
    assert row["tables_loaded"] == 3
    assert row["stale_tables"] == 0  # no table of the shop is judged
    assert row["quarantined_records"] == len(loaded["bad"])
    assert row["failed_load_attempts"] == 2
    assert health.summary(counts).startswith("3 tables loaded")


@pytest.mark.parametrize("warehouse_state", ["migrated but empty", "no file yet"])
def test_an_empty_warehouse_says_nothing_is_loaded(db_file, warehouse_state):
    if warehouse_state == "migrated but empty":
        warehouse.connect(db_file).close()
    else:
        with pytest.raises(WarehouseError):
            display.open_warehouse()
    con = display.open_warehouse(missing_ok=True)
    assert health.tables(con, PERIOD).empty
    assert health.sources(con, PERIOD).empty
    assert health.quarantine_errors(con, PERIOD).empty
    assert health.failed_loads(con, PERIOD).empty
    counts = health.totals(con, PERIOD)
    assert counts.iloc[0].tolist() == [0, 0, 0, 0, 0]
    assert health.summary(counts) == "Nothing is loaded yet."
    assert "statex-bi demo" in health.NOTHING_LOADED
    assert db_file.exists() == (warehouse_state == "migrated but empty")


def test_a_quarantine_without_record_ids_still_counts(db_file):
    # dlt creates no record_id column when every quarantined record so far had none.
    errors = ["bad date", "bad date", "missing amount"]
    with warehouse.writer(db_file) as con:
        con.execute("CREATE SCHEMA raw_legacy")
        con.execute(
            "CREATE TABLE raw_legacy.quarantine (quarantine_id VARCHAR, endpoint VARCHAR, field VARCHAR, error VARCHAR)"
        )
        con.executemany(
            "INSERT INTO raw_legacy.quarantine VALUES (?, '/rows', 'x', ?)", [[str(i), e] for i, e in enumerate(errors)]
        )
    con = display.open_warehouse()
    found = health.quarantine_errors(con, PERIOD).set_index("error")
    assert found["records"].to_dict() == {e: errors.count(e) for e in set(errors)}
    assert found["example_record"].isna().all()
    assert health.sources(con, PERIOD).set_index("source").loc["legacy", "quarantined"] == len(errors)
    assert health.totals(con, PERIOD).loc[0, "tables_loaded"] == 0
