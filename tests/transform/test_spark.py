"""The dbt project on Spark (statex_bi.transform.spark): every model builds on a local pyspark session from the small
demo's raw tables in a lake (Parquet files dlt wrote, $STATEX_BI_RAW_URL; tests/transform/conftest.py `lake_demo`),
and each mart holds what DuckDB built from the same demo loaded into the warehouse file (`small_demo`): the same
columns, rows, non-NULL values per column and totals of every numeric column (the money columns among them).

Spark computes its marts itself, in its JVM; DuckDB then only reads the Parquet files Spark wrote and totals
them exactly as it totals its own marts.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import duckdb
import pytest

from statex_bi.config import MODELS_DIR
from statex_bi.transform import spark

MARTS = sorted(path.stem for path in (MODELS_DIR / "marts").glob("*.sql"))
NUMERIC = re.compile(r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|DECIMAL)")
# Two engines summing doubles in their own order agree to about 1e-15 relative; 1e-9 leaves room for that
# and nothing else (a decimal rounding to 6 places, as Spark does for `x / 3600.0`, is caught).
RELATIVE = 1e-9


def _totals(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[list[str], dict[str, float | int | None]]:
    """The relation's columns, and its row count, each column's non-NULL count and each numeric column's sum."""
    described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    columns = [row[0] for row in described]
    measures = {"rows": "count(*)"}
    for name, data_type, *_ in described:
        measures[f"count({name})"] = f'count("{name}")'
        if NUMERIC.match(data_type):
            measures[f"sum({name})"] = f'sum("{name}")::DOUBLE'
    values = con.execute(f"SELECT {', '.join(measures.values())} FROM {relation}").fetchone()
    return columns, dict(zip(measures, values, strict=True))


def _differ(duck: float | int | None, on_spark: float | int | None) -> bool:
    if duck is None or on_spark is None:
        return duck is not on_spark
    return not math.isclose(duck, on_spark, rel_tol=RELATIVE, abs_tol=RELATIVE)


def test_every_model_builds_on_spark_and_the_jvm_exits(lake_demo):
    db, result = lake_demo
    manifest = json.loads((spark.spark_dir(db) / "target" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    with duckdb.connect(str(db), read_only=True) as con:
        duck_marts = {t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'").fetchall()}

    assert result.models == len(models)
    assert sorted(n["name"] for n in models if n["schema"] == "marts") == MARTS == sorted(duck_marts)
    # the session's JVM carries the state folder on its command line (-Dderby.system.home=...)
    state = str(spark.spark_dir(db).resolve())
    running = [p for p in Path("/proc").glob("[0-9]*/cmdline") if state in p.read_bytes().decode(errors="replace")]
    assert not running, f"a JVM of the Spark build is still running: {running}"


@pytest.mark.parametrize("mart", MARTS)
def test_each_mart_on_spark_matches_duckdb(lake_demo, small_demo, mart):
    db, _ = lake_demo
    files = spark.table_folder(db, "marts", mart) / "*.parquet"
    with duckdb.connect(str(small_demo), read_only=True) as con:
        duck_columns, duck = _totals(con, f"marts.{mart}")
        spark_columns, on_spark = _totals(con, f"read_parquet('{files}')")

    assert spark_columns == duck_columns
    differences = {k: (duck[k], on_spark[k]) for k in duck if _differ(duck[k], on_spark[k])}
    assert not differences, f"marts.{mart}, (DuckDB, Spark): {differences}"


def test_the_comparison_covers_money(lake_demo):
    """Not a comparison of empty marts: the demo's payments and infrastructure bills have totals."""
    db, _ = lake_demo
    with duckdb.connect(str(db), read_only=True) as con:
        payments = con.execute("SELECT count(*), sum(amount_eur), sum(fee_eur) FROM marts.payments_eur").fetchone()
        billed = con.execute("SELECT sum(billed_usd) FROM marts.infra_costs_daily").fetchone()[0]

    assert payments[0] > 0 and payments[1] > 0 and payments[2] > 0
    assert billed > 0


def test_the_export_writes_every_declared_table_in_types_spark_reads(tmp_path):
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA raw_fx")
        con.execute("""CREATE TABLE raw_fx.eur_reference_rates AS SELECT DATE '2026-01-02' AS date, 'USD' AS currency,
            1.04::DOUBLE AS rate, uuid() AS load_uuid, '{"a": 1}'::JSON AS payload, 12::HUGEINT AS big""")
        empty = spark.export_parquet(con, tmp_path / "parquet")
        rates = tmp_path / "parquet" / "raw_fx" / "eur_reference_rates" / spark.PARQUET_FILE
        exported = con.execute(f"SELECT name, type, logical_type FROM parquet_schema('{rates}')").fetchall()
        charges = tmp_path / "parquet" / "raw_stripe" / "charges" / spark.PARQUET_FILE
        stripe = con.execute(f"SELECT count(*) FROM '{charges}'").fetchone()

    declared = {f"{source}.{table}" for source, table in spark.project.declared_sources()}
    assert set(empty) == declared - {"fx.eur_reference_rates"}
    types = {name: (physical, str(logical)) for name, physical, logical in exported}
    assert types["load_uuid"][0] == "BYTE_ARRAY" and "UUID" not in types["load_uuid"][1]
    assert types["payload"][0] == "BYTE_ARRAY" and "JSON" not in types["payload"][1]
    assert "Decimal" in types["big"][1]  # not a double, as DuckDB writes a HUGEINT
    assert stripe == (0,)  # a declared table not loaded yet: empty, with its declared columns


def test_without_java_the_spark_build_says_what_to_install(monkeypatch, db_file, capsys):
    from statex_bi.cli import main

    monkeypatch.setattr(spark, "java_runtime", lambda: None)

    assert main(["build", "--target", "spark"]) == 2
    assert "openjdk-17-jre-headless" in capsys.readouterr().err
