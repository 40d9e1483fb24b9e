"""What a KPI function read: the warehouse relations its SQL named and the price rows that priced its costs.

Every report table says where its numbers come from (statex_bi.provenance renders it under the table).
Nothing is declared by hand, so nothing can drift from the SQL: a KPI function decorated `@recorded`
runs on a connection that notes the relations each SELECT names (DuckDB's own parser,
`json_serialize_sql`) and the rows of each AI price table it registers (statex_bi.pricing.table), and
the infrastructure catalog its pricing reads through (`recorded_catalog`) notes the rows it hands out.
What was noted is stamped on the frame(s) the function returns (`DataFrame.attrs`, which pandas keeps
through filters, copies and renames); a frame passed in that carries a stamp adds its reads. Calls
nest: an inner recorded call's reads count for the outer one too.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ParamSpec, TypeVar

import duckdb
import pandas as pd

from statex_bi.pricing.table import relation_name

ATTR = "statex_reads"  # the key of a frame's attrs that holds its reads
AI_PRICES = relation_name("")  # the prefix AI price tables are registered under (then the scenario)
# DuckDB's catalogs: a query naming them reads no data of ours.
_CATALOG_SCHEMAS = {"information_schema", "pg_catalog", "system", "temp"}

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Reads:
    """Relations ("marts.payments_eur"; a bare name for an unqualified one), price rows by (catalog, row id),
    and files read besides the warehouse (a price catalog)."""

    relations: set[str] = field(default_factory=set)
    prices: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)

    def add(self, other: Reads) -> None:
        self.relations |= other.relations
        self.prices.update(other.prices)
        self.files |= other.files

    def price_rows(self) -> list[dict[str, str]]:
        return [self.prices[key] for key in sorted(self.prices)]

    def to_attr(self) -> dict[str, Any]:
        """Plain data for `DataFrame.attrs` (pandas deep-copies it)."""
        return {"relations": sorted(self.relations), "prices": self.price_rows(), "files": sorted(self.files)}

    @classmethod
    def from_attr(cls, data: dict[str, Any]) -> Reads:
        prices = {(row["catalog"], row["row_id"]): dict(row) for row in data.get("prices", [])}
        return cls(set(data.get("relations", [])), prices, set(data.get("files", [])))


_ACTIVE: ContextVar[tuple[Reads, ...]] = ContextVar("statex_reads", default=())


def note(reads: Reads) -> None:
    """Count `reads` for every recorded call under way (none: nothing to do)."""
    for active in _ACTIVE.get():
        active.add(reads)


@contextmanager
def tracing() -> Iterator[Reads]:
    """What is noted inside the block (and counted for any enclosing block as well)."""
    reads = Reads()
    token = _ACTIVE.set((*_ACTIVE.get(), reads))
    try:
        yield reads
    finally:
        _ACTIVE.reset(token)


_PARSER: list[duckdb.DuckDBPyConnection] = []
_PARSER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1024)
def relations_of(sql: str) -> frozenset[str]:
    """The relations a statement names: "schema.table", or the bare name of an unqualified one that is not
    one of its own CTEs. Only SELECTs are parsed (DuckDB serialises nothing else); others name none."""
    with _PARSER_LOCK:
        if not _PARSER:
            _PARSER.append(duckdb.connect(":memory:"))
        parsed = json.loads(_PARSER[0].execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if parsed.get("error"):
        return frozenset()
    tables: set[tuple[str, str]] = set()
    ctes: set[str] = set()
    stack: list[Any] = [parsed]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") == "BASE_TABLE":
                tables.add((str(item.get("schema_name") or ""), str(item.get("table_name") or "")))
            if isinstance(item.get("cte_map"), dict):
                ctes |= {str(entry.get("key")) for entry in item["cte_map"].get("map") or []}
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return frozenset(
        f"{schema}.{table}" if schema else table for schema, table in tables
        if schema.lower() not in _CATALOG_SCHEMAS and not (not schema and table in ctes)
    )


def _ai_price_rows(name: str, table: Any) -> Reads:
    """The catalog rows of an AI price table (statex_bi.pricing.table.PRICE_SCHEMA) that priced something."""
    reads = Reads()
    scenario = name.removeprefix(AI_PRICES)
    for row in table.to_pylist() if hasattr(table, "to_pylist") else []:
        if not row.get("priced") or not row.get("row_id"):
            continue
        rates = [f"{label} ${row[key]:g}" for key, label in (
            ("input_usd_per_mtok", "input"), ("cached_input_usd_per_mtok", "cached input"),
            ("output_usd_per_mtok", "output")) if row.get(key) is not None]
        price = (", ".join(rates) + " per 1M tokens") if rates else ""
        if row.get("hardware_usd_per_hour"):
            price = f"{price}; hardware ${row['hardware_usd_per_hour']:g} per hour".lstrip("; ")
        reads.prices[(f"AI prices ({scenario})", row["row_id"])] = {
            "catalog": f"AI prices ({scenario})", "row_id": str(row["row_id"]), "item": "",
            "effective_from": _day(row.get("effective_from")), "source": str(row.get("row_source") or ""),
            "price": price}
    return reads


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else ("" if value is None else str(value))


class RecordingConnection:
    """A DuckDB connection that notes the relations each statement names, then runs it on the real one."""

    def __init__(self, con: Any) -> None:
        self._con = con

    def _noted(self, sql: Any) -> None:
        if isinstance(sql, str):
            note(Reads(set(relations_of(sql))))

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._noted(query)
        return self._con.execute(query, *args, **kwargs)

    def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._noted(query)
        return self._con.executemany(query, *args, **kwargs)

    def sql(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._noted(query)
        return self._con.sql(query, *args, **kwargs)

    query = sql

    def table(self, name: str) -> Any:
        note(Reads({name}))
        return self._con.table(name)

    def register(self, name: str, data: Any) -> Any:
        if name.startswith(AI_PRICES):
            note(_ai_price_rows(name, data))
        return self._con.register(name, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class RecordedCatalog:
    """A price catalog (statex_bi.pricing.infra.InfraCatalog) whose lookups note the rows they return.

    Only the lookups that price something note rows (`one`, `effective`, `plans`); the rest of the
    catalog's API is the catalog's own.
    """

    def __init__(self, catalog: Any, name: str) -> None:
        self._catalog, self._name = catalog, name

    def _noted(self, rows: Iterable[Any]) -> None:
        reads = Reads()
        for row in rows:
            reads.prices[(self._name, row.row_id)] = _catalog_row(self._name, row)
        note(reads)

    def one(self, *args: Any, **kwargs: Any) -> Any:
        row = self._catalog.one(*args, **kwargs)
        self._noted([row])
        return row

    def effective(self, *args: Any, **kwargs: Any) -> Any:
        rows = self._catalog.effective(*args, **kwargs)
        self._noted(rows)
        return rows

    def plans(self, *args: Any, **kwargs: Any) -> Any:
        rows = self._catalog.plans(*args, **kwargs)
        self._noted(rows)
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)


def _catalog_row(name: str, row: Any) -> dict[str, str]:
    """An infrastructure catalog row as a report lists it (its fields read by name, whatever else it has)."""
    values = dataclasses.asdict(row) if dataclasses.is_dataclass(row) else vars(row)
    if values.get("plan"):
        extra = (f" + ${values['overage_per_1000']:g} per 1,000 over {values.get('included') or 0:,.0f}"
                 if values.get("overage_per_1000") is not None else f", up to {values.get('included') or 0:,.0f}")
        price = f"{values.get('provider') or ''} {values['plan']}: ${values.get('monthly_usd') or 0:g} a month{extra}"
    else:
        per = values.get("per") or 1
        price = f"${values.get('usd') or 0:g} per {per:,g} {values.get('unit') or 'unit'}".replace(" per 1 ", " per ")
    if values.get("unverified"):  # a row the catalog marks as not checked against its source
        price += " (unverified)"
    return {"catalog": name, "row_id": str(values.get("row_id")), "item": str(values.get("item") or ""),
            "effective_from": _day(values.get("effective_from")), "source": str(values.get("source") or ""),
            "price": price.strip()}


def recorded_catalog(catalog: Any, name: str = "infrastructure prices") -> Any:
    """`catalog` noting, for the recorded call under way, each row its lookups return."""
    return catalog if isinstance(catalog, RecordedCatalog) else RecordedCatalog(catalog, name)


def of(frame: Any) -> Reads | None:
    """What `frame` was read from (None: it was not made by a recorded function)."""
    data = getattr(frame, "attrs", {}).get(ATTR) if isinstance(frame, pd.DataFrame) else None
    return Reads.from_attr(data) if isinstance(data, dict) else None


def stamp(frame: pd.DataFrame, reads: Reads) -> pd.DataFrame:
    """`frame` (the same object) carrying `reads`."""
    frame.attrs[ATTR] = reads.to_attr()
    return frame


def _stamped(result: Any, reads: Reads) -> Any:
    if isinstance(result, pd.DataFrame):
        return stamp(result, reads)
    if isinstance(result, tuple):
        for item in result:
            if isinstance(item, pd.DataFrame):
                stamp(item, reads)
    return result


def recorded(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a KPI function (its connection parameter named `con`) so that the frame it returns (or each
    frame of the tuple it returns) carries what it read: `of(frame)`."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        bound = signature.bind(*args, **kwargs)
        con = bound.arguments.get("con")
        if con is not None and not isinstance(con, RecordingConnection):
            bound.arguments["con"] = RecordingConnection(con)
        with tracing() as reads:
            for value in bound.arguments.values():
                if (given := of(value)) is not None:
                    note(given)
            result = func(*bound.args, **bound.kwargs)
        return _stamped(result, reads)

    wrapper.records_reads = True  # type: ignore[attr-defined]
    return wrapper


def is_recorded(func: Callable[..., Any]) -> bool:
    """Whether `func` is `@recorded`."""
    return bool(getattr(func, "records_reads", False))
