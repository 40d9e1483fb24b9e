"""Run the data tests each model's `.yml` declares, dbt style, over the built warehouse.

A model's `.yml` (beside its `.sql`) lists tests under `data_tests` (or dbt's older `tests`):

    models:
      - name: payments
        description: One row per payment attempt ...
        data_tests:                                   # model level
          - unique_combination_of_columns:
              combination_of_columns: [provider, payment_id]
          - expression_is_true:
              expression: "net_minor = amount_minor - fee_minor"
              where: "status = 'succeeded'"           # optional
        columns:
          - name: payment_id
            data_tests:                               # column level
              - not_null
              - unique
              - accepted_values: {values: [a, b]}
              - relationships:
                  to: core.payments
                  field: payment_id
                  config: {severity: warn, where: "status = 'succeeded'"}

Each test becomes one SQL count of the rows that break it, so a failure says how many rows and
which test. As in dbt, `config: {where: ...}` restricts a test to some rows and `severity: warn`
marks a failure as a warning; `dbt_utils.` prefixes are accepted. Models that were not built
(their source is not loaded) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from statex_bi.config import MODELS_DIR
from statex_bi.exceptions import ModelError
from statex_bi.models.build import LAYERS


@dataclass(frozen=True)
class CheckResult:
    """One declared test run against one model."""

    model: str
    test: str
    failures: int
    sql: str
    severity: str = "error"

    @property
    def passed(self) -> bool:
        return self.failures == 0


def _quote(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


# Each generator gets `rows`: the model, or a subquery of it when the test has a `where`.
def _unique(rows: str, column: str, _: dict) -> str:
    return (
        f"select count(*) from (select {column} from {rows} where {column} is not null "
        f"group by {column} having count(*) > 1) as duplicates"
    )


def _not_null(rows: str, column: str, _: dict) -> str:
    return f"select count(*) from {rows} where {column} is null"


def _accepted_values(rows: str, column: str, args: dict) -> str:
    values = ", ".join(_quote(v) for v in args["values"])
    return f"select count(*) from {rows} where {column} is not null and {column} not in ({values})"


def _relationships(rows: str, column: str, args: dict) -> str:
    return (
        f"select count(*) from {rows} as child where child.{column} is not null and not exists "
        f"(select 1 from {args['to']} as parent where parent.{args['field']} = child.{column})"
    )


def _unique_combination(rows: str, _: None, args: dict) -> str:
    columns = ", ".join(args["combination_of_columns"])
    return f"select count(*) from (select {columns} from {rows} group by {columns} having count(*) > 1) as duplicates"


def _expression_is_true(rows: str, _: None, args: dict) -> str:
    return f"select count(*) from {rows} where not ({args['expression']})"


COLUMN_TESTS: dict[str, Callable[[str, str, dict], str]] = {
    "unique": _unique,
    "not_null": _not_null,
    "accepted_values": _accepted_values,
    "relationships": _relationships,
}
MODEL_TESTS: dict[str, Callable[[str, None, dict], str]] = {
    "unique_combination_of_columns": _unique_combination,
    "expression_is_true": _expression_is_true,
}


def model_specs(root: Path = MODELS_DIR) -> dict[str, dict[str, Any]]:
    """Every model entry of every `.yml` under `root`, keyed by `layer.name`."""
    specs = {}
    for layer in LAYERS:
        for path in sorted((root / layer).glob("*.yml")):
            document = yaml.safe_load(path.read_text()) or {}
            for entry in document.get("models", []):
                specs[f"{layer}.{entry['name']}"] = entry
    return specs


def _split(test: str | dict) -> tuple[str, dict]:
    """A test as written in the yml -> (name without the dbt_utils prefix, its arguments)."""
    if isinstance(test, str):
        name, args = test, {}
    else:
        ((name, args),) = test.items()
    return name.removeprefix("dbt_utils."), args or {}


def _tests_of(entry: dict) -> list:
    return list(entry.get("data_tests") or entry.get("tests") or [])


def _rows(model: str, args: dict) -> str:
    where = (args.get("config") or {}).get("where") or args.get("where")
    return f"(select * from {model} where {where}) as filtered" if where else model


def _severity(args: dict) -> str:
    return str((args.get("config") or {}).get("severity", "error")).lower()


def declared_checks(model: str, entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The (label, SQL counting offending rows, severity) of each test one model declares.

    Raises:
        ModelError: a test this checker does not know (so that it is not silently skipped).
    """
    checks = []
    for test in _tests_of(entry):
        name, args = _split(test)
        if name not in MODEL_TESTS:
            raise ModelError(model, f"unknown model test {name!r}; known: {', '.join(MODEL_TESTS)}")
        detail = args.get("expression") or ", ".join(args.get("combination_of_columns", []))
        checks.append((f"{name}({detail})", MODEL_TESTS[name](_rows(model, args), None, args), _severity(args)))
    for column in entry.get("columns") or []:
        for test in _tests_of(column):
            name, args = _split(test)
            if name not in COLUMN_TESTS:
                raise ModelError(model, f"unknown column test {name!r}; known: {', '.join(COLUMN_TESTS)}")
            sql = COLUMN_TESTS[name](_rows(model, args), column["name"], args)
            checks.append((f"{name}({column['name']})", sql, _severity(args)))
    return checks


def run_checks(
    con: duckdb.DuckDBPyConnection, root: Path = MODELS_DIR, only: Iterable[str] | None = None
) -> list[CheckResult]:
    """Run the declared tests of every built model (or of the `only` ones, given as `layer.name`).

    Returns:
        One result per test; `passed` tells whether no row broke it.
    """
    rows = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    built = {row[0] for row in rows}
    wanted = set(only) if only is not None else None
    results = []
    for model, entry in model_specs(root).items():
        if model not in built or (wanted is not None and model not in wanted):
            continue
        for label, sql, severity in declared_checks(model, entry):
            try:
                failures = con.execute(sql).fetchall()[0][0]
            except duckdb.Error as exc:
                raise ModelError(model, f"test {label} does not run: {str(exc).splitlines()[0]}") from None
            results.append(CheckResult(model, label, int(failures), sql, severity))
    return results
