"""Run this folder's dbt project in-process (dbtRunner): `dbt build` after every ingest and on `statex-bi build`.

The project (dbt_project.yml, profiles.yml and the models beside this file) ships with the package, so
users need no dbt setup of their own: the profile reads the warehouse path from $STATEX_BI_DB, which
`invoke` sets to the warehouse it builds. dbt's target/ (manifest, run results, partial-parse state) and
logs/ go to `.<warehouse stem>.dbt/` next to the warehouse file, never into the package.

`dbt build` runs every model and, right after each, the data tests its `.yml` declares, on the real
warehouse. A test of severity error that fails stops the build (its dependents are skipped) and
`build` raises DataTestError naming the model, the test and the failing rows; warnings are returned.

An ingest builds only what its new rows can change: the models downstream of the sources that loaded
rows (`source:<name>+`) and of whatever in the project changed since the last build that succeeded
(`state:modified+`, against that build's manifest, kept in the state folder's last-build/). Without such
a build (a new warehouse, or the last build failed) it builds everything, as `statex-bi build` always does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from statex_bi import warehouse
from statex_bi.config import MODELS_DIR, cache_dir, db_path, read_yaml
from statex_bi.exceptions import DataTestError, ModelError

PROJECT_DIR = MODELS_DIR
FAILING_ROWS_SHOWN = 5
DOCS_PAGE = "static_index.html"  # `dbt docs generate --static`: the whole site in one file
# An attribute or script assignment loading something from another host (dbt docs' usage tracker).
_REMOTE = re.compile(r"""((?:src|href)\s*=\s*)(["'])(?:https?:)?//[^"']*\2""")


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def state_dir(db: Path) -> Path:
    """dbt's working folder for one warehouse (target/ and logs/): `.<stem>.dbt` beside the file, like dlt's."""
    return db.parent / f".{db.stem}.dbt"


def last_build_dir(db: Path) -> Path:
    """The manifest of the last build that succeeded on `db`: what `state:modified` compares the project with."""
    return state_dir(db) / "last-build"


def declared_sources(root: Path = PROJECT_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """(source, table) -> its entry in staging/_<source>__sources.yml (schema, columns, freshness)."""
    declared = {}
    for path in sorted((root / "staging").glob("_*__sources.yml")):
        for source in (read_yaml(path, error=ModelError) or {}).get("sources", []):
            schema = source.get("schema", source["name"])
            for table in source.get("tables", []):
                declared[(source["name"], table["name"])] = {**table, "schema": schema, "file": path.name}
    return declared


def dbt_sources_of(dataset: str) -> list[str]:
    """The dbt sources (staging/_<source>__sources.yml) whose tables a connector's dataset (`raw_<name>`) holds."""
    return sorted({source for (source, _), entry in declared_sources().items() if entry["schema"] == dataset})


def missing_sources(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The declared raw tables the warehouse does not hold yet, as `source.table`: their models build empty."""
    rows = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    present = {(schema, table) for schema, table in rows}
    return [f"{source}.{table}" for (source, table), entry in declared_sources().items()
            if (entry["schema"], table) not in present]


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


# The projects this process parsed, as dbt's partial-parse state, by what the parse depends on (see _parse_key).
_PARSED: dict[tuple, bytes] = {}
# How many parses the cache folder keeps (one per project version, dbt version and warehouse name).
CACHED_PARSES = 8


def _parse_key(db: Path, target: str) -> tuple | None:
    """What a parse of the project depends on: its files, dbt's and the adapter's versions and the warehouse's
    catalog name (dbt-duckdb names it after the file, and every node carries it). dbt itself refuses its saved
    parse for another warehouse path (the path is part of the profile it hashes), so without this each new
    warehouse costs a full parse. None for Spark, whose parse also reads environment variables
    (macros/raw_tables.sql)."""
    if target != "duckdb":
        return None
    from dbt.adapters.duckdb.__version__ import version as adapter_version
    from dbt.version import __version__

    files = tuple(sorted(
        (str(path.relative_to(PROJECT_DIR)), path.stat().st_mtime_ns, path.stat().st_size)
        for path in PROJECT_DIR.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    ))
    return (db.name.lstrip(".").split(".")[0], __version__, adapter_version, files)


def _cached_parse(key: tuple) -> Path:
    """Where a parse for `key` is kept between processes: the cache folder (config.cache_dir), shared by
    every warehouse, so that a new process (a report run, a cron ingest) skips dbt's parse of 3 to 4 s."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    return cache_dir() / "dbt-parse" / f"{digest}.msgpack"


def _keep_parse(key: tuple, saved: bytes) -> None:
    """Remember a parse in this process and in the cache folder (written whole or not at all; the oldest beyond
    CACHED_PARSES removed). A cache folder that cannot be written only costs the next process a parse."""
    _PARSED[key] = saved
    path = _cached_parse(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(saved)
        partial.replace(path)
        for old in sorted(path.parent.glob("*.msgpack"), key=lambda p: p.stat().st_mtime)[:-CACHED_PARSES]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def _parsed_manifest(key: tuple | None):
    """A fresh copy of the manifest parsed for `key` by this process or, from the cache folder, another one;
    None when there is none (dbt parses)."""
    if key is None:
        return None
    saved = _PARSED.get(key)
    if saved is None:
        try:
            saved = _PARSED[key] = _cached_parse(key).read_bytes()
        except OSError:
            return None
    from dbt.contracts.graph.manifest import Manifest
    from dbt.parser.manifest import extended_mashumuro_decoder

    try:
        manifest = Manifest.from_msgpack(saved, decoder=extended_mashumuro_decoder)
    except Exception:  # a cache file cut short or written by another process: dbt parses instead
        _PARSED.pop(key, None)
        _cached_parse(key).unlink(missing_ok=True)
        return None
    # what dbt's own load of a saved parse does before running on it
    manifest.metadata.generated_at = datetime.now(UTC).replace(tzinfo=None)
    manifest.build_parent_and_child_maps()
    manifest.build_flat_graph()
    return manifest


def invoke(args: list[str], db: Path, target: str = "duckdb", state: Path | None = None):
    """Run one dbt command on the project against the warehouse `db`; returns dbt's dbtRunnerResult.

    dbt prints nothing (its log goes to the state folder's logs/dbt.log); callers report from the result.
    `state` holds target/ and logs/ (default: state_dir(db)); another target keeps its own, so that the
    two do not overwrite each other's manifest and partial-parse state. The project is parsed once per
    version of its files and warehouse name: later commands, in this process or another, on any warehouse of
    that name, reuse the parse (_parsed_manifest).
    """
    from dbt.cli.main import dbtRunner

    state = state or state_dir(db)
    argv = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target", target,
        "--target-path", str(state / "target"),
        "--log-path", str(state / "logs"),
        "--log-level", "none",
        "--log-level-file", "info",
        "--no-use-colors",
    ]
    state.mkdir(parents=True, exist_ok=True)
    key = _parse_key(db, target)
    manifest = _parsed_manifest(key)
    saved = state / "target" / "partial_parse.msgpack"
    started = time.time()
    with _environment("STATEX_BI_DB", str(db)):
        try:
            outcome = dbtRunner(manifest=manifest).invoke(argv)
        finally:
            _release_connections()
    if key is not None and manifest is None and saved.exists() and saved.stat().st_mtime >= started:
        _keep_parse(key, saved.read_bytes())  # dbt wrote it after parsing the project as it is now
    return outcome


def _release_connections() -> None:
    """Close dbt's connections. dbt-duckdb (1.11) keeps its DuckDB database open in a class attribute after
    the command, which would hold the warehouse's write lock (against the notebooks' processes) for as long
    as this process lives, and refuse this process a read-only connection."""
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    manager = sys.modules.get("dbt.adapters.duckdb.connections")
    if manager is not None:
        with manager.DuckDBConnectionManager._LOCK:
            environment = manager.DuckDBConnectionManager._ENV
            manager.DuckDBConnectionManager._ENV = None
            if environment is not None:
                environment.close()


@dataclass(frozen=True)
class TestOutcome:
    """One data test that did not pass."""

    model: str
    test: str
    severity: str
    failures: int
    yml: str
    rows: list[tuple] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    error: str | None = None  # the test could not run (its SQL failed): dbt's message

    def describe(self) -> str:
        if self.error:
            return f"test {self.test} on {self.model} ({self.yml}) could not run: {self.error}"
        shown = "; ".join(", ".join(f"{c}={v!r}" for c, v in zip(self.columns, row, strict=False)) for row in self.rows)
        more = f" (first {len(self.rows)})" if self.failures > len(self.rows) else ""
        return (f"test {self.test} on {self.model} ({self.yml}) failed on {self.failures} row(s)"
                + (f"{more}: {shown}" if shown else ""))


@dataclass(frozen=True)
class BuildResult:
    models: int
    tests: int
    seconds: float
    empty_sources: list[str]
    warnings: list[TestOutcome]


def _model_of(node, nodes: dict[str, Any]) -> str:
    attached = getattr(node, "attached_node", None)
    parent = nodes.get(attached) if attached else None
    return f"{parent.schema}.{parent.name}" if parent is not None else node.name


def _failing_rows(db: Path, sql: str | None) -> tuple[list[str], list[tuple]]:
    """The first rows a failed test returned, read again from the warehouse (nothing is stored for it).

    Opened read-write like every other open in this process: `ingest` holds the warehouse during the
    build, and DuckDB refuses a second, read-only open of a file this process has open."""
    if not sql:
        return [], []
    with duckdb.connect(str(db)) as con:
        cursor = con.execute(f"select * from ({sql}) as failing limit {FAILING_ROWS_SHOWN}")
        return [d[0] for d in cursor.description], cursor.fetchall()


def _outcome(result, nodes: dict[str, Any], db: Path) -> TestOutcome:
    node = result.node
    error = " ".join((result.message or "").split()) if str(result.status) == "error" else None
    columns, rows = ([], []) if error else _failing_rows(db, getattr(node, "compiled_code", None))
    return TestOutcome(
        model=_model_of(node, nodes), test=node.name, severity=str(node.config.severity).lower(),
        failures=int(result.failures or 0), yml=node.original_file_path, rows=rows, columns=columns, error=error,
    )


TEST_RESULTS_TABLE = "ops.dbt_test_results"


def _record_tests(db: Path, tests: list, nodes: dict[str, Any], everything: bool) -> None:
    """Keep each test's latest result in the warehouse, for the data-health report to read: a build of
    everything replaces them all; a build of part replaces the results of the tests it ran, and drops
    those of tests the project no longer has."""
    built_at = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (built_at, r.node.name, _model_of(r.node, nodes), r.node.original_file_path,
         str(r.node.config.severity).lower(), str(r.status), int(r.failures or 0),
         " ".join((r.message or "").split()) or None)
        for r in tests
    ]
    with warehouse.writer(db) as con:
        con.execute(f"""CREATE {'OR REPLACE TABLE' if everything else 'TABLE IF NOT EXISTS'} {TEST_RESULTS_TABLE}
            (built_at TIMESTAMP, test VARCHAR, model VARCHAR, yml VARCHAR, severity VARCHAR, status VARCHAR,
            failures BIGINT, message VARCHAR)""")
        if not everything:
            ran = [row[1] for row in rows]
            con.execute(f"DELETE FROM {TEST_RESULTS_TABLE} WHERE list_contains(?, test)"
                        " OR NOT list_contains(?, test)", [ran, _project_tests(db)])
        if rows:
            con.executemany(f"INSERT INTO {TEST_RESULTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _project_tests(db: Path) -> list[str]:
    """The names of the project's data tests, from the manifest the build just wrote."""
    manifest = json.loads((state_dir(db) / "target" / "manifest.json").read_text())
    return [node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "test"]


def _selection(previous: Path, sources: Collection[str] | None, select: Sequence[str] | None) -> list[str]:
    """dbt's arguments selecting what to build: `select` as given; else nothing (everything) without `sources` or a
    previous build."""
    if select:
        return ["--select", *select]
    if sources is None or not (previous / "manifest.json").is_file():
        return []
    selectors = [*(f"source:{name}+" for name in sorted(sources)), "state:modified+"]
    return ["--select", " ".join(selectors), "--state", str(previous)]


def build(
    db: Path | None = None,
    progress: Callable[[str], None] = _print_progress,
    wait: float = 0.0,
    sources: Collection[str] | None = None,
    select: Sequence[str] | None = None,
) -> BuildResult:
    """`dbt build` on the warehouse: every model, then its tests, in dependency order.

    `sources` (dbt source names) builds only the models downstream of them and of what the project
    changed since the last build that succeeded; everything when there was none. None: everything.
    `select` (dbt's node selectors, as `dbt build --select` takes them, e.g. `+payments_eur`) builds only
    those nodes and leaves the record of the last whole build as it was: what they do not cover is not built by
    them, so the next ingest's build compares the project with that record still (and a first build is whole).

    Raises:
        WarehouseLockedError: another process holds the warehouse for `wait` seconds.
        ModelError: a model does not compile or run (names the model and its file).
        DataTestError: a test of severity error failed (names model, test and the failing rows).
    """
    if select and sources is not None:
        raise ValueError("build: give the loaded `sources` or a `select`ion, not both")
    db = db or db_path()
    with warehouse.writer(db, wait=wait) as con:  # creates and migrates it; fails fast when it is locked
        empty = missing_sources(con)
    # Until this build succeeds, the next one starts from nothing: what it skips or leaves broken is rebuilt.
    previous = state_dir(db) / "previous-build"
    shutil.rmtree(previous, ignore_errors=True)
    if last_build_dir(db).exists():
        last_build_dir(db).rename(previous)
    selection = _selection(previous, sources, select)
    started = time.monotonic()
    try:
        outcome = invoke(["build", *selection], db)
        if select and outcome.success and (previous / "manifest.json").is_file():
            previous.rename(last_build_dir(db))  # still the record of the last whole build
    finally:
        shutil.rmtree(previous, ignore_errors=True)
    seconds = time.monotonic() - started
    if outcome.exception is not None:
        raise ModelError(str(PROJECT_DIR), f"dbt build could not run: {outcome.exception}")
    results = list(outcome.result.results)
    if select and not results:
        raise ModelError(str(PROJECT_DIR), f"--select {' '.join(select)} matches no model or test of the project")
    nodes = {r.node.unique_id: r.node for r in results}
    errors = [r for r in results if r.node.resource_type != "test" and str(r.status) == "error"]
    if errors:
        first = errors[0]
        message = (first.message or "").strip().splitlines()
        raise ModelError(first.node.original_file_path, " ".join(line.strip() for line in message[:3]))
    tests = [r for r in results if r.node.resource_type == "test"]
    _record_tests(db, tests, nodes, everything=not selection)
    failed = [_outcome(r, nodes, db) for r in tests if str(r.status) in ("fail", "error")]
    if failed:
        skipped = sum(1 for r in results if str(r.status) == "skipped")
        raise DataTestError([f.describe() for f in failed], skipped)
    (state_dir(db) / "target" / DOCS_PAGE).unlink(missing_ok=True)  # the docs describe the previous build
    if not select:
        last_build_dir(db).mkdir()
        shutil.copyfile(state_dir(db) / "target" / "manifest.json", last_build_dir(db) / "manifest.json")
    warnings = [_outcome(r, nodes, db) for r in tests if str(r.status) == "warn"]
    models = sum(1 for r in results if r.node.resource_type == "model")
    if select:
        part = f" (selected: {' '.join(select)})"
    elif selection:
        part = f" (downstream of {', '.join(sorted(sources or ())) or 'project changes'})"
    else:
        part = ""
    progress(
        f"models: {models} built and {len(tests)} tests run by dbt{part} in {seconds:.1f}s"
        + (f"; {len(warnings)} test warning(s)" if warnings else "")
        + (f"; not loaded yet, so their models are empty: {', '.join(empty)}" if empty else "")
    )
    for warning in warnings:
        progress(f"warning: {warning.describe()}")
    return BuildResult(models, len(tests), seconds, empty, warnings)


def publish_docs(db: Path, folder: Path, wait: float = 0.0) -> Path | None:
    """The dbt docs site of the warehouse's last build (every model, its SQL, columns, tests and lineage
    graph) as one offline page, `folder/index.html`: no script, style or font from another host.

    Args:
        db: the warehouse.
        folder: where the page goes.
        wait: seconds to wait for a warehouse another process holds, when the docs must be generated
            (dbt opens the warehouse itself, after each build once).

    Returns:
        The page, or None when the warehouse was never built (no manifest to describe).

    Raises:
        WarehouseLockedError: another process held the warehouse for `wait` seconds.
        ModelError: `dbt docs generate` failed.
    """
    target = state_dir(db) / "target"
    if not (target / "manifest.json").exists():
        return None
    page = target / DOCS_PAGE
    if not page.exists():
        with warehouse.writer(db, wait=wait):  # as build does: wait for the lock here, dbt would fail at once
            pass
        outcome = invoke(["docs", "generate", "--static"], db)
        if not outcome.success:
            raise ModelError(str(PROJECT_DIR), f"dbt docs generate failed: {outcome.exception or 'see dbt.log'}")
    folder.mkdir(parents=True, exist_ok=True)
    published = folder / "index.html"
    offline = _REMOTE.sub(r"\1\2\2", page.read_text(encoding="utf-8"))
    # The embedded manifest's compiled_path is absolute (our target path is): keep dbt's relative form, so that
    # the page does not name the folders of the machine that built it.
    local_target = json.dumps(f"{target}{os.sep}")[1:-1]
    published.write_text(offline.replace(local_target, "target/"), encoding="utf-8")
    return published
