"""`statex-bi demo`: the simulated company through every sandbox and real connector."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from demo_window import SMALL_DEMO_END, SMALL_DEMO_START

from statex_bi import warehouse
from statex_bi.demo.apis import REGISTRY
from statex_bi.demo.runner import run_demo
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import ConfigError
from statex_bi.ingest import ingest
from statex_bi.sources.contract import IngestRequest

START, END = date(2026, 9, 1), date(2026, 9, 28)

COUNTS = """
SELECT
  (SELECT count(*) FROM raw_ga4.daily_users),
  (SELECT count(*) FROM raw_stripe.charges),
  (SELECT count(*) FROM raw_paypal.transactions),
  (SELECT count(*) FROM raw_coinbase.charges),
  (SELECT count(*) FROM raw_sentry.gen_ai_spans),
  (SELECT count(*) FROM raw_openai.usage_completions),
  (SELECT count(*) FROM raw_fx.eur_reference_rates),
  (SELECT count(*) FROM raw_cloudflare.r2_operations),
  (SELECT count(*) FROM raw_billing.charges),
  (SELECT count(*) FROM raw_github.test_results)
"""


def _counts(db):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(COUNTS).fetchall()[0]


def test_demo_loads_every_source_once_then_another_demo_starts_from_scratch(demo_copy, small_demo):
    """The first demo is the suite's small demo (`statex-bi demo --start --end`, tests/conftest.py), read from a
    copy; its progress lines are the command's standard error."""
    messages = (small_demo.parent / "loaded").read_text().splitlines()
    first = _counts(demo_copy)

    world = World(WorldConfig(SMALL_DEMO_START, SMALL_DEMO_END))
    assert first[0] == len(world.growth.daily_users) == (SMALL_DEMO_END - SMALL_DEMO_START).days + 1
    assert first[4] == len(world.ai.calls)
    assert all(count > 0 for count in first), first
    loaded = next(m for m in messages if m.startswith("demo: loaded "))
    assert loaded == "demo: loaded " + ", ".join([*REGISTRY, "billing"])
    with duckdb.connect(str(demo_copy), read_only=True) as con:
        assert con.execute("SELECT value FROM ops.warehouse_info WHERE key = 'kind'").fetchall() == [("demo",)]
        assert con.execute("SELECT count(*) FROM marts.payments_eur").fetchall()[0][0] > 0
        # Read as on the window's next day: Sentry's 90-day retention counted back from today (more than 90 days
        # after the window's start) would have dropped its first days.
        first_day = con.execute("SELECT min(period_start) FROM raw_sentry.route_performance WHERE grain = 'day'")
        assert first_day.fetchone()[0] == SMALL_DEMO_START

    # Another seed and window replace the first demo: nothing of it is left.
    second = WorldConfig(date(2026, 9, 20), date(2026, 9, 22), seed=8)
    assert run_demo(second.start, second.end, seed=second.seed, db=demo_copy, progress=lambda m: None) == 0
    with duckdb.connect(str(demo_copy), read_only=True) as con:
        days = con.execute("SELECT min(date), max(date), count(*) FROM raw_ga4.daily_users").fetchall()[0]
        spans = con.execute("SELECT count(*) FROM raw_sentry.gen_ai_spans").fetchall()[0][0]
    assert days == (second.start, second.end, 3)
    assert spans == len(World(second).ai.calls)


def test_demo_refuses_a_warehouse_with_real_data(db_file):
    with warehouse.writer(db_file) as con:
        con.execute("CREATE SCHEMA raw_stripe")
        con.execute("CREATE TABLE raw_stripe.charges (id VARCHAR)")
    with pytest.raises(ConfigError, match="already holds real data"):
        run_demo(start=START, end=END, db=db_file, progress=lambda m: None)


def test_real_sources_refuse_the_demo_warehouse(db_file):
    with warehouse.writer(db_file) as con:
        warehouse.claim(con, warehouse.DEMO, db_file)
    with pytest.raises(ConfigError, match="is the demo warehouse"):
        ingest(["fx"], IngestRequest(progress=lambda m: None), db=db_file)
    with duckdb.connect(str(db_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ops.source_loads").fetchall()[0][0] == 0


def test_the_demo_refuses_a_warehouse_claimed_for_real_data(db_file):
    with warehouse.writer(db_file) as con:
        warehouse.claim(con, warehouse.REAL, db_file)
    with pytest.raises(ConfigError, match="already holds real data"):
        run_demo(start=START, end=END, db=db_file, progress=lambda m: None)
    assert db_file.exists()
