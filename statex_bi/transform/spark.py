"""The same dbt project on Spark (`statex-bi build --target spark`): a local pyspark session builds every model
from the warehouse's raw tables exported to Parquet.

The DuckDB warehouse stays the source of truth: `build` exports each raw table the project declares
(staging/_<source>__sources.yml) to `<parquet>/<schema>/<table>/data.parquet`, then runs dbt with the
profile's `spark` target in a child process, whose JVM ends with it. On Spark, `source()` reads those
folders in place (macros/raw_tables.sql): nothing is registered for them. Spark's own tables, its Derby
metastore and dbt's target/ and logs/ go to `spark_dir(db)`, `.<stem>.dbt/spark/` beside the warehouse,
apart from the DuckDB build's state.

With the raw tables in a lake ($STATEX_BI_RAW_URL, statex_bi.transform.lake) nothing is exported: `source()`
reads each table's Parquet files there, merged by natural key, and after the build the warehouse's table
models become views over the Parquet files Spark wrote (`publish_views`), so the reports read Spark's marts.

Needs the `spark` extra (dbt-spark, pyspark) and a Java 17+ runtime (`java` on PATH or $JAVA_HOME).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from statex_bi import warehouse
from statex_bi.config import db_path, raw_url, spark_raw_url
from statex_bi.exceptions import ConfigError, DataTestError, ModelError
from statex_bi.transform import build as project
from statex_bi.transform import lake
from statex_bi.warehouse import quote_identifier, sql_literal

PARQUET_FILE = "data.parquet"
# DuckDB types Spark's Parquet reader refuses (UUID, JSON's annotation, nanosecond timestamps, intervals)
# or would read as something else (HUGEINT is written as a double): what they are exported as instead.
SPARK_READABLE = {
    "UUID": "VARCHAR",
    "JSON": "VARCHAR",
    "HUGEINT": "DECIMAL(38, 0)",
    "UHUGEINT": "DECIMAL(38, 0)",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIME": "VARCHAR",
    "INTERVAL": "VARCHAR",
}


def spark_dir(db: Path) -> Path:
    """Spark's state for one warehouse: its tables (warehouse/), metastore, the exported raw tables (parquet/)
    and dbt's target/ and logs/ for the spark target."""
    return project.state_dir(db) / "spark"


def table_folder(db: Path, schema: str, table: str) -> Path:
    """The Parquet files of a table the local session built (Spark's layout: <warehouse>/<schema>.db/<table>),
    which DuckDB reads too: `read_parquet('<folder>/*.parquet')`."""
    return spark_dir(db) / "warehouse" / f"{schema}.db" / table


def java_runtime() -> str | None:
    """The `java` pyspark starts: $JAVA_HOME's, else the one on PATH; None when there is none."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _readable(column: str, data_type: str) -> str:
    cast, name = SPARK_READABLE.get(data_type.upper()), quote_identifier(column)
    return f"CAST({name} AS {cast}) AS {name}" if cast else name


def export_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> list[str]:
    """Write every raw table the project declares to `folder/<schema>/<table>/data.parquet`, replacing what
    an earlier export left there. A declared table the warehouse does not hold yet is written empty with its
    declared columns, so Spark has every source table and its models build empty, as on DuckDB.

    Returns:
        The declared tables the warehouse does not hold yet (exported empty), as `source.table`.
    """
    rows = con.execute(
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "ORDER BY table_schema, table_name, ordinal_position"
    ).fetchall()
    present: dict[tuple[str, str], list[str]] = {}
    for schema, table, column, data_type in rows:
        present.setdefault((schema, table), []).append(_readable(column, data_type))
    empty = []
    for (source, table), entry in project.declared_sources().items():
        schema = entry["schema"]
        target = folder / schema / table
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        if (schema, table) in present:
            relation = f"{quote_identifier(schema)}.{quote_identifier(table)}"
            query = f"SELECT {', '.join(present[(schema, table)])} FROM {relation}"
        else:
            empty.append(f"{source}.{table}")
            columns = ", ".join(f"CAST(NULL AS {column['data_type']}) AS {quote_identifier(column['name'])}"
                                for column in entry["columns"])
            query = f"SELECT {columns} WHERE false"
        con.execute(f"COPY ({query}) TO {sql_literal(str(target / PARQUET_FILE))} (FORMAT parquet)")
    return empty


def environment(db: Path) -> dict[str, str]:
    """The variables the profile's spark target and macros/raw_tables.sql read, for the warehouse `db`."""
    state = spark_dir(db).resolve()
    return {"STATEX_BI_SPARK_DIR": str(state), "STATEX_BI_PARQUET": str(state / "parquet")}


def lake_environment(db: Path, url: str) -> tuple[dict[str, str], list[str]]:
    """The variables of a Spark build that reads the raw tables from the lake at `url` (config.raw_url(); Spark
    reads it at config.spark_raw_url()) instead of an export:
    $STATEX_BI_RAW_RELATIONS maps each declared `schema.table` the lake holds to the subquery that reads it
    merged (macros/raw_tables.sql). Also returns the declared tables the lake does not hold (their models
    build empty from the declared columns, as on DuckDB)."""
    declared = project.declared_sources()
    datasets = sorted({entry["schema"] for entry in declared.values()})
    tables = lake.tables_in_lake(db, url, datasets)
    spark_url = spark_raw_url() or url
    relations = {f"{t.dataset}.{t.name}": lake.spark_relation(spark_url, t) for t in tables}
    empty = [f"{source}.{table}" for (source, table), entry in declared.items()
             if f"{entry['schema']}.{table}" not in relations]
    state = spark_dir(db).resolve()
    return {"STATEX_BI_SPARK_DIR": str(state), "STATEX_BI_RAW_RELATIONS": json.dumps(relations)}, empty


def publish_views(db: Path, manifest: Path, wait: float = 0.0, tables: str | None = None) -> int:
    """Make every table model Spark built a view of the warehouse over its Parquet files (`marts.x` reads
    `read_parquet('<tables>/marts.db/x/*.parquet')`), replacing what DuckDB built under that name, so the
    reports read Spark's marts unchanged. `tables` is Spark's warehouse folder: the local session's unless told
    (a cluster's spark.sql.warehouse.dir, e.g. s3://bucket/spark-warehouse). Returns how many views it made."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    built = [(n["schema"], n["alias"]) for n in nodes
             if n["resource_type"] == "model" and n["config"]["materialized"] == "table"]
    with warehouse.writer(db, wait=wait) as con:
        kinds = dict(((schema, name), kind) for schema, name, kind in con.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables").fetchall())
        for schema, name in built:
            relation = f"{quote_identifier(schema)}.{quote_identifier(name)}"
            if kinds.get((schema, name)) == "BASE TABLE":
                con.execute(f"DROP TABLE {relation}")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
            folder = f"{tables}/{schema}.db/{name}" if tables else str(table_folder(db, schema, name).resolve())
            files = sql_literal(f"{folder}/*.parquet")
            con.execute(f"CREATE OR REPLACE VIEW {relation} AS SELECT * FROM read_parquet({files})")
    return len(built)


@dataclass(frozen=True)
class SparkBuildResult:
    """What `build` ran on Spark, and the declared tables it found empty."""

    models: int
    tests: int
    seconds: float
    empty_sources: list[str]


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(
    db: Path | None = None, command: str = "build", progress: Callable[[str], None] = _print_progress,
    wait: float = 0.0,
) -> SparkBuildResult:
    """Export the warehouse's raw tables to Parquet and run `dbt <command>` (build or run) on Spark.

    Raises:
        ConfigError: no Java runtime, or the `spark` extra is not installed.
        WarehouseLockedError: another process holds the warehouse for `wait` seconds.
        ModelError: a model failed on Spark (names it), or dbt could not run.
        DataTestError: a data test of severity error failed on Spark (names model and test).
    """
    db = db or db_path()
    if java_runtime() is None:
        raise ConfigError("Spark needs a Java 17+ runtime: install one (Debian: apt-get install "
                          "openjdk-17-jre-headless) or set JAVA_HOME")
    if importlib.util.find_spec("pyspark") is None:  # the child process imports it
        raise ConfigError("the spark target needs the spark extra: pip install 'statex-bi[spark]'")
    url = raw_url()
    if url is None:
        env = environment(db)
        with warehouse.connect(db, read_only=True, wait=wait) as con:
            empty = export_parquet(con, Path(env["STATEX_BI_PARQUET"]))
    else:
        env, empty = lake_environment(db, url)
    results_file = spark_dir(db) / "target" / "run_results.json"
    results_file.unlink(missing_ok=True)  # an earlier run's results must not stand for this one's
    started = time.monotonic()
    # A child process: the JVM pyspark starts lives as long as the Python process that started it.
    done = subprocess.run(
        [sys.executable, "-m", "statex_bi.transform.spark", str(db), command],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode not in (0, 1) or not results_file.exists():  # dbt: 1 = a node failed, 2 = dbt failed
        raise ModelError(str(project.PROJECT_DIR), f"dbt {command} on Spark could not run: "
                                                   f"{(done.stderr or done.stdout).strip()[-2000:]}")
    results = json.loads(results_file.read_text())["results"]
    kinds = {r["unique_id"]: r["unique_id"].split(".")[0] for r in results}
    failed = [r for r in results if r["status"] in ("error", "fail")]
    errors = [r for r in failed if kinds[r["unique_id"]] != "test" and r["status"] == "error"]
    if errors:
        message = " ".join((errors[0].get("message") or "").split())[:1000]
        raise ModelError(errors[0]["unique_id"], message)
    if failed:
        skipped = sum(1 for r in results if r["status"] == "skipped")
        raise DataTestError([f"test {r['unique_id']} {r['status']}: {' '.join((r.get('message') or '').split())}"
                             for r in failed], skipped)
    models = sum(1 for kind in kinds.values() if kind == "model")
    tests = sum(1 for kind in kinds.values() if kind == "test")
    progress(f"models: {models} built and {tests} tests run by dbt on Spark in {seconds:.1f}s"
             + (f"; not loaded yet, so their models are empty: {', '.join(empty)}" if empty else ""))
    if url is not None:  # Spark's tables are the ones the reports read
        views = publish_views(db, spark_dir(db) / "target" / "manifest.json", wait)
        progress(f"models: the warehouse reads Spark's {views} tables through views over their Parquet files")
    return SparkBuildResult(models, tests, seconds, empty)


def _main(argv: list[str]) -> int:
    """The child process of `build`: `python -m statex_bi.transform.spark DB COMMAND`; dbt's exit code."""
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    db, command = Path(argv[0]), argv[1]
    try:
        outcome = project.invoke([command], db, target="spark", state=spark_dir(db))
    finally:
        # stop the JVM now rather than when this process is reaped; none when dbt failed before opening a session
        with contextlib.suppress(PySparkRuntimeError):
            SparkSession.active().stop()
    if outcome.exception is not None:
        print(f"dbt {command} failed: {outcome.exception}", file=sys.stderr)
        return 2
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
