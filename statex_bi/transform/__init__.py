"""Running the dbt project in `statex_bi/models/` (which holds only the dbt project).

build      `dbt build` in-process on the DuckDB warehouse; the docs site (lineage) of the last build
freshness  `dbt source freshness` after every ingest, kept in ops.dbt_source_freshness
spark      the same project on a local Spark session, over a Parquet export of the raw tables
"""
