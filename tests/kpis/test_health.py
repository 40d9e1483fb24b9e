"""Data-health KPIs against a real warehouse loaded through a real (tiny) dlt pipeline."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import dlt
import pytest

from statex_bi import display, warehouse
from statex_bi.exceptions import WarehouseError
from statex_bi.ingest import IngestRequest, SourceSpec, load_source
from statex_bi.kpis import health
from statex_bi.periods import Period
from statex_bi.sources.common import quarantined

PERIOD = Period(date(2026, 10, 5), date(2026, 10, 11))
NOW = datetime(2026, 10, 14, 9, 0)  # after the period: the reference time is the period end
# The shop is no source of the dbt project: its freshness rules, as sources.yml would give them.
RULES = {"raw_shop.orders": ("created", 24.0, 47.5), "raw_shop.daily": ("day", 24.0, 47.5)}


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
    frame = health.tables(loaded["con"], PERIOD, now=NOW, rules=RULES).set_index("table")
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
    assert frame.loc["raw_shop.daily__lines", "status"] == "not checked"


def test_freshness_is_judged_against_the_period_end_or_now(loaded):
    created = [o["created"].astimezone(UTC).replace(tzinfo=None) for o in loaded["orders"]]
    period_end = datetime(2026, 10, 12)  # the end of 11 October
    # The daily table's last day (9 October) is complete at midnight: 10 October 00:00.
    daily_behind = _hours(period_end - datetime.combine(max(loaded["days"]) + timedelta(days=1), datetime.min.time()))
    orders_behind = _hours(period_end - max(created))
    assert daily_behind == 48.0

    frame = health.tables(loaded["con"], PERIOD, now=NOW, rules=RULES).set_index("table")
    assert frame.loc["raw_shop.daily", "hours_behind"] == pytest.approx(daily_behind)
    assert frame.loc["raw_shop.orders", "hours_behind"] == pytest.approx(orders_behind)
    assert frame.loc["raw_shop.daily", "status"] == "stale"
    assert frame.loc["raw_shop.orders", "status"] == (
        "stale" if orders_behind > 47.5 else "late" if orders_behind > 24 else "fresh")
    relaxed = health.tables(loaded["con"], PERIOD, now=NOW,
                            rules={**RULES, "raw_shop.daily": ("day", 48.0, 96.0)}).set_index("table")
    assert relaxed.loc["raw_shop.daily", "status"] == "fresh"

    # A period still running is judged against now: 11 October 12:00 is 36 hours after 9 October ended.
    running = health.tables(loaded["con"], PERIOD, now=datetime(2026, 10, 11, 12), rules=RULES).set_index("table")
    assert running.loc["raw_shop.daily", "hours_behind"] == pytest.approx(36.0)
    assert running.loc["raw_shop.daily", "status"] == "late"


def test_a_rule_naming_a_column_the_table_lacks_is_an_error(loaded):
    with pytest.raises(ValueError, match=r"raw_shop.orders: sources.yml names loaded_at_field 'placed_at'"):
        health.tables(loaded["con"], PERIOD, now=NOW, rules={"raw_shop.orders": ("placed_at", 1.0, 2.0)})


def test_each_table_has_the_limits_its_sources_yml_declares(db_file):
    """Stripe's refunds are rare: three weeks without one is fresh, while three weeks without a charge is stale."""
    rules = health.freshness_rules()
    assert rules["raw_stripe.refunds"][0] == "created" and rules["raw_stripe.charges"][0] == "created"
    assert rules["raw_stripe.refunds"][2] > 21 * 24 > rules["raw_stripe.charges"][2]
    with warehouse.writer(db_file) as con:
        con.execute("CREATE SCHEMA raw_stripe")
        for table in ("charges", "refunds"):
            con.execute(f"CREATE TABLE raw_stripe.{table} (id VARCHAR, created TIMESTAMP, amount BIGINT)")
            con.execute(f"INSERT INTO raw_stripe.{table} VALUES ('x', TIMESTAMP '2026-09-20 10:00', 100)")
    with warehouse.connect(db_file, read_only=True) as con:
        frame = health.tables(con, PERIOD, now=NOW).set_index("table")
    assert frame.loc["raw_stripe.refunds", "status"] == "fresh"
    assert frame.loc["raw_stripe.charges", "status"] == "stale"
    assert frame.loc["raw_stripe.charges", "error_after_hours"] == rules["raw_stripe.charges"][2]


def test_reference_time_is_the_earlier_of_now_and_the_period_end():
    assert health.reference_time(PERIOD, NOW) == datetime(2026, 10, 12)
    assert health.reference_time(PERIOD, datetime(2026, 10, 8, 6)) == datetime(2026, 10, 8, 6)


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
    counts = health.totals(loaded["con"], Period(date(2020, 1, 1), date(2020, 1, 2)), now=NOW, rules=RULES)
    row = counts.iloc[0]
    assert row["tables_loaded"] == 3
    # The period ended in 2020: no table is behind it (the undated child table is not judged).
    assert row["stale_tables"] == 0
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
