"""Build the SQL models in dependency order.

Each `models/<layer>/<name>.sql` holds one SELECT in the DuckDB dialect; its grain is stated in
the `.yml` beside it. Staging and core models become views, marts become tables (rebuilt each
time: they are small). Dependencies are read from the SQL itself with sqlglot, so a model whose raw
tables are not loaded yet is skipped, with its dependents, instead of failing the whole build.

A staging model whose `.yml` sets `config: {when_source_missing: empty}` is instead built as an
empty view with the column types the `.yml` declares (`data_type`), so that a model uniting several
optional sources (e.g. the payment providers) still builds when only some of them are loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import duckdb
import sqlglot
import yaml
from sqlglot import exp

from statex_bi.config import MODELS_DIR
from statex_bi.exceptions import ModelError

LAYERS = {"staging": "VIEW", "core": "VIEW", "marts": "TABLE"}
USABLE = ("built", "empty")  # statuses whose model dependents may read


@dataclass(frozen=True)
class Model:
    layer: str
    name: str
    path: Path
    sql: str
    depends_on: frozenset[str]

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"


def _references(sql: str, path: Path) -> frozenset[str]:
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise ModelError(str(path), f"SQL does not parse: {exc}") from None
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    refs = set()
    for table in tree.find_all(exp.Table):
        if table.db:
            refs.add(f"{table.db}.{table.name}")
        elif table.name not in ctes:
            raise ModelError(str(path), f"table {table.name!r} must be schema-qualified")
    return frozenset(refs)


def discover(root: Path = MODELS_DIR) -> dict[str, Model]:
    """Every model under `root`, keyed by `layer.name`."""
    models = {}
    for layer in LAYERS:
        for path in sorted((root / layer).glob("*.sql")):
            sql = path.read_text().strip().rstrip(";")
            model = Model(layer, path.stem, path, sql, _references(sql, path))
            models[model.qualified] = model
    return models


def _empty_placeholder_sql(model: Model) -> str | None:
    """An empty SELECT with the model's declared columns, when its `.yml` asks for one."""
    spec_path = model.path.with_suffix(".yml")
    if model.layer != "staging" or not spec_path.exists():
        return None
    spec = yaml.safe_load(spec_path.read_text()) or {}
    entry = next((m for m in spec.get("models", []) if m.get("name") == model.name), {})
    if (entry.get("config") or {}).get("when_source_missing") != "empty":
        return None
    columns = entry.get("columns") or []
    untyped = [c.get("name") for c in columns if not c.get("data_type")]
    if not columns or untyped:
        raise ModelError(str(spec_path), f"when_source_missing: empty needs a data_type on every column: {untyped}")
    return "select " + ", ".join(f"cast(null as {c['data_type']}) as {c['name']}" for c in columns) + " where 1 = 0"


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    return {f"{schema}.{name}" for schema, name in rows}


def _drop_if_other_kind(con: duckdb.DuckDBPyConnection, model: Model, kind: str) -> None:
    """A model that moved layer kind (view <-> table) must be dropped before it is re-created."""
    row = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [model.layer, model.name],
    ).fetchall()
    if row and ("VIEW" in row[0][0]) != (kind == "VIEW"):
        con.execute(f"DROP {'VIEW' if 'VIEW' in row[0][0] else 'TABLE'} {model.qualified}")


def build_all(
    con: duckdb.DuckDBPyConnection,
    root: Path = MODELS_DIR,
    progress: Callable[[str], None] | None = None,
) -> dict[str, str]:
    """Create or replace every model whose inputs exist.

    Returns:
        model -> "built", "empty: <missing input>" (a placeholder, see the module docstring) or
        "skipped: <missing input>".
    """
    models = discover(root)
    try:
        order = list(TopologicalSorter({k: m.depends_on & models.keys() for k, m in models.items()}).static_order())
    except CycleError as exc:
        raise ModelError(str(root), f"models depend on each other in a cycle: {exc.args[1]}") from None
    existing = _existing_tables(con)
    status: dict[str, str] = {}
    for key in order:
        model = models[key]
        missing = sorted(
            dep for dep in model.depends_on
            if (dep in models and not status.get(dep, "").startswith(USABLE))
            or (dep not in models and dep not in existing)
        )
        sql = model.sql
        if missing:
            sql = _empty_placeholder_sql(model)
            if sql is None:
                status[key] = f"skipped: {', '.join(missing)} not available"
                continue
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {model.layer}")
        kind = LAYERS[model.layer]
        try:
            _drop_if_other_kind(con, model, kind)
            con.execute(f"CREATE OR REPLACE {kind} {model.qualified} AS {sql}")
        except duckdb.Error as exc:
            raise ModelError(str(model.path), str(exc).splitlines()[0]) from None
        status[key] = f"empty: {', '.join(missing)} not available" if missing else "built"
    if progress:
        built = sum(1 for s in status.values() if s == "built")
        empty = sum(1 for s in status.values() if s.startswith("empty"))
        skipped = len(status) - built - empty
        progress(f"models: {built} built, {empty} empty and {skipped} skipped (sources not loaded)")
    return status
