"""Load sources into the warehouse through dlt, then build and test the dbt models (`dbt build`) and
check the sources' freshness (`dbt source freshness`, kept for the data-health report).

A source package exposes `SPEC = SourceSpec(...)` (`statex_bi.sources.contract`); its
`build(request)` returns a dlt source (or resource) configured from the environment. dlt supplies
incremental cursors, merges on natural keys and keeps state in the warehouse itself; a load that
raises leaves the earlier data and cursor as they were. Each load also records the source's
watermark (ops.source_watermarks), which report headers read.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dlt
import duckdb
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from statex_bi import sources, warehouse
from statex_bi.config import db_path, raw_url
from statex_bi.exceptions import StatexError
from statex_bi.sources.common import QUARANTINE_TABLE, public_error
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.transform import build as project
from statex_bi.transform import freshness, lake


def _utc_now() -> datetime:
    """Naive UTC, like every timestamp in the warehouse."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class LoadResult:
    source: str
    status: str
    rows: int = 0  # loaded into the source's tables
    seconds: float = 0.0
    error: str | None = None
    quarantined: int = 0  # routed to raw_<source>.quarantine instead


# DuckDB keeps what a load sorts and merges in memory up to 80% of the machine's by default: a 100 MB
# billing export took 951 MB, 421 MB with this cap (bench/bench_billing_memory.py); past it DuckDB spills
# to `<warehouse>.tmp`. The cap is the database's, so it holds for the rest of the command (dbt's build too).
LOAD_MEMORY_LIMIT = "200MB"
# dlt's default for DuckDB, insert_values, loads a table as INSERT statements of every row: DuckDB took 2.3 GB
# to run the 44,000 AI spans of a 100x demo month that way (outside its memory_limit), 360 MB from Parquet.
LOADER_FILE_FORMAT = "parquet"


# dlt posts anonymous usage events to dlthub for each step of every load (four per source) unless told not to.
# A company's loads stay on its network, as its dbt builds do (send_anonymous_usage_stats in dbt_project.yml);
# setting the variable to true opts in.
DLT_TELEMETRY_VARIABLE = "RUNTIME__DLTHUB_TELEMETRY"


def pipeline_for(spec: SourceSpec, db: Path) -> dlt.Pipeline:
    """The dlt pipeline of one source, loading into the warehouse file, or as Parquet files under
    $STATEX_BI_RAW_URL when it is set (statex_bi.transform.lake); its local working folder sits next to the
    warehouse file. dlt's telemetry is off unless $RUNTIME__DLTHUB_TELEMETRY turns it on."""
    os.environ.setdefault(DLT_TELEMETRY_VARIABLE, "false")  # read once, at the process's first load
    url = raw_url()
    if url is not None:
        return lake.pipeline(spec.dataset, db, url)
    credentials = DuckDbCredentials(str(db), global_config={"memory_limit": LOAD_MEMORY_LIMIT})
    return dlt.pipeline(
        pipeline_name=lake.pipeline_name(spec.dataset),
        destination=dlt.destinations.duckdb(credentials),
        dataset_name=spec.dataset,
        pipelines_dir=lake.pipelines_dir(db),
    )


def load_source(spec: SourceSpec, request: IngestRequest, db: Path) -> LoadResult:
    """Run one source's pipeline; record the attempt in ops.source_loads."""
    started = _utc_now()
    t0 = time.monotonic()
    pipeline = pipeline_for(spec, db)
    # A package left behind by an earlier crash must not be loaded together with new data.
    pipeline.abort_packages()
    request.progress(f"{spec.name}: loading")
    try:
        data = spec.build(request)
        # The lake (raw_url) keeps the format its destination is set up with.
        info = pipeline.run(data, refresh="drop_sources" if request.full_refresh else None,
                            loader_file_format=None if raw_url() is not None else LOADER_FILE_FORMAT)
        if raw_url() is not None:  # what reads raw_<source>.* from the warehouse reads the new files too
            with warehouse.writer(db) as con:
                lake.register_views(con, raw_url(), lake.lake_tables(pipeline.default_schema, spec.dataset),
                                    spec.dataset)
        counts = {table: count for table, count in pipeline.last_trace.last_normalize_info.row_counts.items()
                  if not table.startswith("_dlt")}
        quarantined = counts.pop(QUARANTINE_TABLE, 0)
        rows = sum(count for table, count in counts.items() if table not in spec.bookkeeping)
        failure = _load_failure(db, spec, info.loads_ids, rows, quarantined)
        result = LoadResult(spec.name, "failed" if failure else "succeeded", rows, time.monotonic() - t0,
                            failure, quarantined)
    except Exception as exc:  # noqa: BLE001 - reported per source, the others still load
        # Roll back what this attempt extracted, and the local state with it: the cursor stays put.
        pipeline.abort_packages()
        cause = exc
        while getattr(cause, "__cause__", None) is not None and not isinstance(cause, StatexError):
            cause = cause.__cause__
        # The message is stored and shown on pages: no e-mail address, no row a library quotes.
        if isinstance(cause, StatexError):
            message = public_error(str(cause), foreign=False)
        else:
            message = public_error(f"{type(cause).__name__}: {cause}", foreign=True)
        result = LoadResult(spec.name, "failed", 0, time.monotonic() - t0, message)
    with warehouse.writer(db) as con:
        con.execute(
            "INSERT INTO ops.source_loads VALUES (?, ?, ?, ?, ?, ?, ?)",
            [spec.name, started, _utc_now(), result.status, result.rows, result.quarantined, result.error],
        )
        record_watermark(con, spec)
    quarantine = f", {result.quarantined} quarantined ({spec.dataset}.quarantine)" if result.quarantined else ""
    request.progress(
        f"{spec.name}: {result.status}, {result.rows} rows loaded{quarantine} in {result.seconds:.1f}s"
        + (f": {result.error}" if result.error else "")
    )
    return result


def _load_failure(db: Path, spec: SourceSpec, load_ids: list[str], rows: int, quarantined: int) -> str | None:
    """One line when a load that ran must still fail: it loaded nothing but quarantine (naming the endpoint and
    the commonest reason), or the source's `failures_sql` names something (a file whose every row was
    quarantined). None when the load is sound. What was loaded stays loaded either way."""
    if not load_ids or (quarantined == 0 and spec.failures_sql is None):
        return None
    found: list[tuple] = []
    with warehouse.writer(db) as con:  # the one connection this process shares (ingest holds the writer)
        for load_id in load_ids if spec.failures_sql is not None else []:
            try:
                found += con.execute(spec.failures_sql, [load_id]).fetchall()
            except duckdb.CatalogException:  # its table was never created: nothing of the kind was read
                break
        if not found and rows == 0 and quarantined:
            marks = ", ".join("?" * len(load_ids))
            found = con.execute(f"""
                SELECT endpoint, count(*) || ' of ' || sum(count(*)) OVER () || ' quarantined records: '
                       || any_value(error)
                FROM {spec.dataset}.{QUARANTINE_TABLE} WHERE _dlt_load_id IN ({marks})
                GROUP BY endpoint, field ORDER BY count(*) DESC, endpoint LIMIT 1""", load_ids).fetchall()
            found = [(what, f"nothing loaded; commonest reason ({why})") for what, why in found]
    if not found:
        return None
    what, why = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{what}: {why}{more}"


def record_watermark(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """Keep the newest data `spec`'s source holds in ops.source_watermarks (None before its tables exist)."""
    try:
        rows = con.execute(spec.watermark_sql).fetchall()
    except duckdb.CatalogException:
        rows = []
    value = rows[0][0] if rows else None
    con.execute("INSERT OR REPLACE INTO ops.source_watermarks VALUES (?, ?, ?)",
                [spec.name, None if value is None else str(value), _utc_now()])


def ingest(
    names: list[str], request: IngestRequest, db: Path | None = None, wait: float = 0.0, kind: str = warehouse.REAL
) -> list[LoadResult]:
    """Load each named source, then `dbt build` the models downstream of the sources that loaded new rows,
    and their tests (everything on a warehouse never built; nothing when every source failed: the models
    are left as they were), then `dbt source freshness`. Failed sources do not stop the others.

    Args:
        names: source names (statex_bi.sources.REGISTRY).
        request: the date window and options.
        db: the warehouse file (default: statex_bi.config.db_path()).
        wait: seconds to wait for a warehouse another process holds.
        kind: what the data is, `real` or `demo` (the simulated company); a warehouse holds one kind only.

    Raises:
        ConfigError: an unknown source, or the warehouse holds the other kind of data.
        WarehouseLockedError: the warehouse stayed locked for `wait` seconds.
        DataTestError: a data test of severity error failed on the loaded data (the loads are kept).
        ModelError: a model does not build.
    """
    db = db or db_path()
    specs = [sources.spec(name) for name in names]
    # Hold the warehouse for the whole command (--wait applies to this one open): no other process (a
    # `run`, another ingest) can take it between two sources or before dbt has built the models; it
    # waits for us instead. Opens of the same file inside this process (dlt's, dbt's) share this one.
    # Demo and real data never mix.
    with warehouse.writer(db, wait=wait) as con:
        warehouse.claim(con, kind, db)
        results = [load_source(spec, request, db) for spec in specs]
        if any(result.status == "succeeded" for result in results):
            # Only the models downstream of sources with new rows (or quarantined ones) can change.
            fresh = sorted({name for spec, result in zip(specs, results, strict=True)
                            if result.status == "succeeded" and (result.rows or result.quarantined)
                            for name in project.dbt_sources_of(spec.dataset)})
            project.build(db, progress=request.progress, wait=wait, sources=fresh)
        else:  # nothing new to build from: a failed cron load should not also spend a rebuild
            request.progress("models: not rebuilt, no source loaded (`statex-bi build` rebuilds them)")
        # After every ingest, loaded or not: a source whose loads keep failing is what falls behind.
        freshness.check(db, progress=request.progress)
    return results
