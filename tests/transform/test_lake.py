"""Raw tables outside the warehouse file (statex_bi.transform.lake, $STATEX_BI_RAW_URL): dlt writes Parquet files,
every load appended, and the tables read back merged by natural key as dlt's merge leaves them in DuckDB; the
small demo loaded that way and built on Spark publishes the same KPIs as the demo loaded into DuckDB.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import dlt
import duckdb
import pytest
from demo_window import SMALL_DEMO_TODAY

from statex_bi.config import NOTEBOOKS_DIR, RAW_URL_ENV
from statex_bi.display import period as report_period
from statex_bi.exceptions import ConfigError
from statex_bi.lab import notebook_defaults
from statex_bi.transform import lake, spark

RELATIVE = 1e-9
REPORTS = sorted(path.stem for path in NOTEBOOKS_DIR.glob("*.ipynb"))


def _published(db: Path) -> dict[tuple, tuple[float | None, dict]]:
    """Every KPI the reports' modules return for the weekly params' period (the demo's last full week):
    (report, name, its text tags) -> (value, its numeric tags). Numeric tags (a confidence bound, a month to
    date) are computed like values, so they are compared like values, not matched as text."""
    found = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for report in REPORTS:
            params = notebook_defaults("weekly", report, today=SMALL_DEMO_TODAY)
            period = report_period(params.pop("period_start"), params.pop("period_end"))
            for metric in importlib.import_module(f"statex_bi.kpis.{report}").metrics(con, period, **params):
                numeric = {k: v for k, v in metric.tags.items() if isinstance(v, float)}
                text = json.dumps({k: v for k, v in metric.tags.items() if k not in numeric}, sort_keys=True,
                                  default=str)
                key = (report, metric.name, text)
                assert key not in found, f"two {metric.name} with tags {text}: the comparison needs one"
                found[key] = (None if metric.value is None else float(metric.value), numeric)
    return found


def _differ(duck: float | None, lake_value: float | None) -> bool:
    if duck is None or lake_value is None:
        return duck is not lake_value
    return not math.isclose(duck, lake_value, rel_tol=RELATIVE, abs_tol=RELATIVE)


def test_the_demo_from_the_lake_built_on_spark_publishes_the_kpis_of_the_duckdb_path(lake_demo, small_demo):
    """`lake_demo` first: its worker builds the lake while the other builds `small_demo`, then reads it."""
    lake_db, _ = lake_demo
    duck, from_lake = _published(small_demo), _published(lake_db)

    assert sorted(from_lake) == sorted(duck)
    differences = {}
    for key, (value, numeric) in duck.items():
        other, other_numeric = from_lake[key]
        if _differ(value, other) or numeric.keys() != other_numeric.keys() or any(
                _differ(numeric[tag], other_numeric[tag]) for tag in numeric):
            differences[key] = ((value, numeric), (other, other_numeric))
    assert not differences, f"(DuckDB, lake + Spark): {differences}"
    # a comparison of real numbers: most KPIs of the demo's week are defined, money and counts among them
    defined = [key[1] for key, (value, _) in duck.items() if value]
    assert len(defined) > 100 and {"revenue.net", "infra.cost.actual", "ai.cost"} <= set(defined)


def test_the_reports_read_only_views_of_the_lake_and_of_sparks_tables(lake_demo):
    db, _ = lake_demo
    with duckdb.connect(str(db), read_only=True) as con:
        relations = con.execute(r"""
            SELECT table_schema, table_type, count(*) FROM information_schema.tables
            WHERE table_schema LIKE 'raw\_%' ESCAPE '\' OR table_schema IN ('staging', 'core', 'marts')
            GROUP BY ALL""").fetchall()
        marts = con.execute("SELECT sql FROM duckdb_views() WHERE schema_name = 'marts'").fetchall()

    assert {kind for _, kind, _ in relations} == {"VIEW"}, relations
    assert {schema for schema, _, _ in relations} >= {"raw_stripe", "raw_billing", "staging", "core", "marts"}
    state = str(spark.spark_dir(db).resolve())
    assert marts and all(state in sql for (sql,) in marts)


def _deliveries(row_id_and_values: list[tuple[int, str, float]]):
    """A resource like billing's: rows keyed by `id`, and a `slot` whose newest delivery replaces all its rows."""
    rows = [{"id": i, "slot": slot, "amount": amount} for i, slot, amount in row_id_and_values]
    return dlt.resource(rows, name="charges", write_disposition="merge", primary_key="id", merge_key="slot")


def test_a_redelivery_to_the_lake_reads_as_dlts_merge_leaves_duckdb(tmp_path):
    """Re-delivered keys and a re-delivered slot (one of its rows gone) read back without duplicates, row for
    row what dlt's merge into DuckDB keeps."""
    loads = [[(1, "2026-11", 10.0), (2, "2026-11", 20.0), (3, "2026-12", 30.0)],
             [(1, "2026-11", 11.0), (3, "2026-12", 31.0)],  # slot 2026-11 re-delivered without row 2
             [(3, "2026-12", 32.0), (4, "2026-12", 40.0)]]
    into_lake = lake.pipeline("raw_test", tmp_path / "w.duckdb", str(tmp_path / "lake"))
    into_duckdb = dlt.pipeline("duck", destination=dlt.destinations.duckdb(str(tmp_path / "d.duckdb")),
                               dataset_name="raw_test", pipelines_dir=str(tmp_path / "dlt"))
    for load in loads:
        into_lake.run(_deliveries(load))
        into_duckdb.run(_deliveries(load))
    tables = lake.lake_tables(into_lake.default_schema, "raw_test")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        lake.register_views(con, str(tmp_path / "lake"), tables, "raw_test")
        from_lake = con.execute("SELECT id, slot, amount FROM raw_test.charges ORDER BY id").fetchall()
        appended = con.execute(f"SELECT count(*) FROM '{tmp_path}/lake/raw_test/charges/*.parquet'").fetchone()[0]
        loads_seen = con.execute("SELECT count(*) FROM raw_test._dlt_loads WHERE status = 0").fetchone()[0]
    with duckdb.connect(str(tmp_path / "d.duckdb"), read_only=True) as con:
        in_duckdb = con.execute("SELECT id, slot, amount FROM raw_test.charges ORDER BY id").fetchall()

    assert appended == 7 and loads_seen == 3  # every delivery kept, as appended
    assert from_lake == in_duckdb == [(1, "2026-11", 11.0), (3, "2026-12", 32.0), (4, "2026-12", 40.0)]


def test_a_demo_refuses_a_lake_holding_another_warehouses_raw_tables(tmp_path, monkeypatch):
    """The demo replaces its raw tables in the lake: never those a real warehouse loaded there."""
    from statex_bi.demo.runner import run_demo

    real = tmp_path / "lake" / "raw_stripe" / "charges" / "1796000000.1.a.parquet"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"a real load")
    monkeypatch.setenv(RAW_URL_ENV, str(tmp_path / "lake"))

    with pytest.raises(ConfigError, match=r"holds raw tables \(raw_stripe\) of another warehouse"):
        run_demo(db=tmp_path / "demo.duckdb", progress=lambda message: None)
    assert real.read_bytes() == b"a real load"
