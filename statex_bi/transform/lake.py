"""Raw tables outside the warehouse file ($STATEX_BI_RAW_URL): dlt's `filesystem` destination writes every
connector's raw tables as Parquet files under a folder or an object-store URL, and both engines read them there.

Layout (dlt's default): `<url>/<dataset>/<table>/<load_id>.<file_id>.parquet`, one or more files per load, with
dlt's bookkeeping beside the tables (`_dlt_loads/`, `_dlt_pipeline_state/`, `_dlt_version/`).

Why plain Parquet and not Delta: on a filesystem dlt merges only Delta or Iceberg tables, and neither can be read
by both engines here (DuckDB's `delta` extension and Spark's `delta-spark` jars are downloaded at run time, from
hosts these machines do not reach). So every load appends (dlt falls back to `append` for a `merge` table) and
the merge happens where the table is read: of the rows sharing a primary key, the newest load's wins, and of the
rows sharing a merge key (billing's delivery slot), only those of the newest load that delivered that key stay:
what dlt's merge leaves in DuckDB (`deduplicated`). A re-delivered day adds files, never a duplicate row.

In the warehouse file each raw table is a view over its files (`register_views`), so everything that reads
`raw_<source>.<table>` from DuckDB (watermarks, quarantine, the duckdb target, data health) reads the lake; the
Spark target reads the same files through `spark_relations`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import duckdb
from dlt.common.configuration import resolve_configuration
from dlt.common.schema import Schema
from dlt.common.schema.utils import get_columns_names_with_prop, has_table_seen_data, is_nested_table
from dlt.common.storages import FilesystemConfiguration, fsspec_from_config

from statex_bi.exceptions import ConfigError
from statex_bi.warehouse import quote_identifier, sql_literal

# The column dlt adds to every row naming the load that wrote it (sortable as text: seconds since 1970, then a
# fraction).
LOAD_ID = "_dlt_load_id"
# dlt's list of completed loads, one JSON file per load; data health reads it as raw_<source>._dlt_loads.
LOADS_TABLE = "_dlt_loads"
_LOADS_COLUMNS = ("{'load_id': 'VARCHAR', 'schema_name': 'VARCHAR', 'status': 'BIGINT', "
                  "'inserted_at': 'TIMESTAMP WITH TIME ZONE', 'schema_version_hash': 'VARCHAR'}")
_EXPECTED_WARNINGS = ("Falling back to `append`", "for `loader_file_format` is not supported")


class _ExpectedWarnings(logging.Filter):
    """dlt warns on every load that a merge table is appended to and that billing's JSONL staging becomes
    Parquet: both are this module's design, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in _EXPECTED_WARNINGS)


_EXPECTED = _ExpectedWarnings()  # one instance: the logger keeps a filter once however often it is added


def destination(url: str) -> dlt.destinations.filesystem:
    """dlt's filesystem destination at `url` writing Parquet only: a resource asking for another format (billing
    stages JSONL for DuckDB's sake) is written as Parquet too, since Spark and DuckDB read the files as Parquet.
    Object-store credentials come from the environment (dlt's DESTINATION__FILESYSTEM__CREDENTIALS__*, or the
    store's own variables and default profiles)."""
    logging.getLogger("dlt").addFilter(_EXPECTED)
    return dlt.destinations.filesystem(bucket_url=url, preferred_loader_file_format="parquet",
                                       supported_loader_file_formats=["parquet"])


def pipeline_name(dataset: str) -> str:
    """The dlt pipeline that loads the raw schema `dataset`, into the warehouse or the lake."""
    return f"statex_{dataset}"


def pipelines_dir(db: Path) -> str:
    """dlt's local working folder (state, schemas, pending packages) for the warehouse `db`: beside it."""
    return str(db.parent / f".{db.stem}.dlt")


def pipeline(dataset: str, db: Path, url: str) -> dlt.Pipeline:
    """The dlt pipeline loading the raw schema `dataset` into the lake at `url`."""
    return dlt.pipeline(pipeline_name=pipeline_name(dataset), destination=destination(url), dataset_name=dataset,
                        pipelines_dir=pipelines_dir(db))


@dataclass(frozen=True)
class LakeTable:
    """One raw table in the lake, as dlt's schema declares it."""

    dataset: str  # the raw schema, e.g. raw_stripe
    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]  # empty: every row stays (an append table)
    merge_key: tuple[str, ...]  # a key whose newest delivery replaces all earlier rows of that key


def lake_tables(schema: Schema, dataset: str) -> list[LakeTable]:
    """The data tables of one source's dlt schema that hold data in the lake (dlt's own tables left out).

    Raises:
        ConfigError: a nested table (a list inside a record, which dlt loads as a child table): the lake's
            merge-on-read covers top-level tables only, and no connector yields one.
    """
    found = []
    for name in schema.data_table_names():
        table = schema.tables[name]
        if not has_table_seen_data(table):  # declared, never loaded: dlt wrote no folder for it
            continue
        if is_nested_table(table):
            raise ConfigError(f"{dataset}.{name} is a nested table: raw tables outside the warehouse "
                              "($STATEX_BI_RAW_URL) must be flat; flatten the records in the connector")
        merged = table.get("write_disposition") == "merge"
        found.append(LakeTable(
            dataset, name, tuple(table["columns"]),
            tuple(get_columns_names_with_prop(table, "primary_key")) if merged else (),
            tuple(get_columns_names_with_prop(table, "merge_key")) if merged else (),
        ))
    return found


def tables_in_lake(db: Path, url: str, datasets: list[str]) -> list[LakeTable]:
    """Every table the lake at `url` holds for the raw schemas `datasets`, from the dlt schemas of their
    pipelines: the local ones beside `db`, else those dlt stored in the lake (a machine that did not load)."""
    found = []
    for dataset in datasets:
        loader = pipeline(dataset, db, url)
        if not loader.schema_names:
            loader.sync_destination()
        if loader.schema_names:
            found += lake_tables(loader.default_schema, dataset)
    return found


def deduplicated(table: LakeTable, scan: str, quote: Callable[[str], str]) -> str:
    """A SELECT of `table`'s columns from `scan` (its files, every load appended) that leaves what dlt's merge
    would: per primary key the newest load's row, and per merge key only rows of the newest load holding it.
    The same SQL runs on DuckDB and Spark; `quote` is the engine's identifier quoting."""
    columns = ", ".join(quote(column) for column in table.columns)
    load = quote(LOAD_ID)
    ranks, kept = [], []
    if table.primary_key:
        keys = ", ".join(quote(column) for column in table.primary_key)
        ranks.append(f"row_number() OVER (PARTITION BY {keys} ORDER BY {load} DESC) AS _statex_key_rank")
        kept.append("_statex_key_rank = 1")
    if table.merge_key:
        keys = ", ".join(quote(column) for column in table.merge_key)
        ranks.append(f"max({load}) OVER (PARTITION BY {keys}) AS _statex_newest_delivery")
        kept.append(f"{load} = _statex_newest_delivery")
    if not ranks:
        return f"SELECT {columns} FROM {scan}"
    return f"SELECT {columns} FROM (SELECT *, {', '.join(ranks)} FROM {scan}) AS loads WHERE {' AND '.join(kept)}"


def duckdb_scan(url: str, table: LakeTable) -> str:
    """DuckDB's read of every Parquet file of `table`: a column added by a later load is NULL in earlier files."""
    return f"read_parquet({sql_literal(f'{url}/{table.dataset}/{table.name}/*.parquet')}, union_by_name = true)"


def spark_quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def spark_relation(url: str, table: LakeTable) -> str:
    """The relation the Spark target reads for `table` (a subquery over its folder of Parquet files; the
    session merges the files' schemas, spark.sql.parquet.mergeSchema in the profile)."""
    scan = f"parquet.{spark_quote(f'{url}/{table.dataset}/{table.name}')}"
    return f"({deduplicated(table, scan, spark_quote)})"


def _filesystem(url: str) -> tuple[Any, str]:
    """The lake's filesystem and root, authenticated as dlt's filesystem destination is (same settings)."""
    config = resolve_configuration(FilesystemConfiguration(bucket_url=url), sections=("destination", "filesystem"))
    return fsspec_from_config(config)


def datasets_held(url: str, datasets: list[str]) -> list[str]:
    """Those of the raw schemas `datasets` that the lake at `url` holds a folder for."""
    filesystem, root = _filesystem(url)
    return [dataset for dataset in datasets if filesystem.exists(f"{root}/{dataset}")]


def drop_datasets(url: str, datasets: list[str]) -> None:
    """Delete the raw schemas `datasets` from the lake at `url`, files and dlt's state."""
    filesystem, root = _filesystem(url)
    for dataset in datasets:
        filesystem.rm(f"{root}/{dataset}", recursive=True)


def register_views(con: duckdb.DuckDBPyConnection, url: str, tables: list[LakeTable], dataset: str) -> None:
    """Make each lake table of `dataset` a view of the warehouse (`<dataset>.<table>`, merged on read), and
    dlt's list of loads `<dataset>._dlt_loads` a view of its files. Replaces the views an earlier load made."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(dataset)}")
    for table in tables:
        relation = f"{quote_identifier(dataset)}.{quote_identifier(table.name)}"
        select = deduplicated(table, duckdb_scan(url, table), quote_identifier)
        con.execute(f"CREATE OR REPLACE VIEW {relation} AS {select}")
    loads = sql_literal(f"{url}/{dataset}/{LOADS_TABLE}/*.jsonl")
    con.execute(f"CREATE OR REPLACE VIEW {quote_identifier(dataset)}.{LOADS_TABLE} AS "
                f"SELECT * FROM read_json({loads}, columns = {_LOADS_COLUMNS})")
