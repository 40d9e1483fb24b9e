"""Cloudflare's GraphQL Analytics API over the simulated R2 usage.

    POST /client/v4/graphql   {"query": "...", "variables": {...}}, Authorization: Bearer <token>

The sandbox parses the query (the GraphQL subset these queries use: operation with variables, aliases,
arguments with objects, lists, enums and variables) and answers the two R2 datasets under
`viewer { accounts(filter: {accountTag}) { ... } }`:

    r2OperationsAdaptiveGroups  sum { requests responseBytes responseObjectSize }
        dimensions { date datetime bucketName actionType actionStatus responseStatusCode storageClass }
        (the simulation keeps operations per day: their datetime is the day's midnight)
    r2StorageAdaptiveGroups     max { payloadSize metadataSize objectCount uploadCount }
        dimensions { datetime date bucketName storageClass }

grouped by the dimensions asked for (sums added, maxima taken), with the filters `<dim>`, `<dim>_geq`,
`_gt`, `_leq`, `_lt`, `orderBy` (`<dim>_ASC|DESC`) and `limit` (required, at most 10,000). Errors come
as GraphQL does it: HTTP 200, `"data": null` and an `errors` array of `{message, path, extensions:
{code, timestamp}}` (a missing or wrong token, an account the token cannot read, an unknown field, a
limit over 10,000, a range older than the retention).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from statex_bi.demo.infra import R2_ACCOUNT, InfraData
from statex_bi.demo.sandbox import Request, Response, Sandbox

API_TOKEN = "cf-sandbox-analytics-read-Yx81Qe4Tn2Lw"
PATH = "/client/v4/graphql"
MAX_LIMIT = 10_000
DATASETS = {
    "r2OperationsAdaptiveGroups": {
        "dimensions": ("date", "datetime", "bucketName", "actionType", "actionStatus", "responseStatusCode",
                       "storageClass"),
        "sum": ("requests", "responseBytes", "responseObjectSize"),
    },
    "r2StorageAdaptiveGroups": {
        "dimensions": ("datetime", "date", "bucketName", "storageClass"),
        "max": ("payloadSize", "metadataSize", "objectCount", "uploadCount"),
    },
}


def build(world, retention_days: int | None = None) -> Sandbox:
    """The Cloudflare sandbox serving the world's R2 usage (not started).

    Args:
        retention_days: refuse ranges that start more than this many days before the world's last
            day (the real datasets keep 31 days); None serves the whole simulated history.
    """
    return serve(world.infra, world.config.end, retention_days)


def environment(url: str) -> dict[str, str]:
    """The variables that point the cloudflare connector at the sandbox."""
    return {"CLOUDFLARE_API_TOKEN": API_TOKEN, "CLOUDFLARE_ACCOUNT_ID": R2_ACCOUNT,
            "CLOUDFLARE_API_BASE": url + "/client/v4"}


class GraphQLError(Exception):
    def __init__(self, message: str, path: list | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.code = code


def _errors(*errors: GraphQLError) -> Response:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Response(200, {"data": None, "errors": [
        {"message": str(e), "path": e.path, "extensions": {"code": e.code, "timestamp": stamp}} for e in errors]})


def serve(infra: InfraData, today: date, retention_days: int | None = None) -> Sandbox:
    rows = {"r2OperationsAdaptiveGroups": _operation_rows(infra), "r2StorageAdaptiveGroups": _storage_rows(infra)}
    sandbox = Sandbox("cloudflare", error_body=lambda status: {
        "data": None, "errors": [{"message": "rate limiter budget depleted, try again after 5 minutes"
                                  if status == 429 else f"HTTP {status}", "path": None,
                                  "extensions": {"code": str(status)}}]})

    @sandbox.route("POST", PATH)
    def graphql(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if header != f"Bearer {API_TOKEN}":
            return _errors(GraphQLError("authentication error: the token is missing, invalid or expired", None,
                                        "authn"))
        try:
            body = request.json()
            document = Parser(body.get("query") or "").document()
            data = _execute(document, body.get("variables") or {}, rows, today, retention_days)
        except GraphQLError as exc:
            return _errors(exc)
        except ValueError as exc:
            return _errors(GraphQLError(f"invalid request body: {exc}", None, "parse"))
        return Response(200, {"data": data, "errors": None})

    return sandbox


def _operation_rows(infra: InfraData) -> list[dict]:
    # The simulation keeps operations per day: their `datetime` is the day's midnight.
    return [{"date": day.isoformat(), "datetime": f"{day.isoformat()}T00:00:00Z", "bucketName": bucket,
             "actionType": action, "actionStatus": status,
             "responseStatusCode": code, "storageClass": klass, "requests": values[0], "responseBytes": values[1],
             "responseObjectSize": values[2]}
            for (day, bucket, action, status, code, klass), values in sorted(infra.r2_operations.items())]


def _storage_rows(infra: InfraData) -> list[dict]:
    return [{"datetime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "date": moment.date().isoformat(),
             "bucketName": bucket, "storageClass": klass, "payloadSize": payload, "metadataSize": metadata,
             "objectCount": objects, "uploadCount": uploads}
            for moment, bucket, klass, payload, metadata, objects, uploads in infra.r2_storage]


# --- a parser for the GraphQL subset the analytics queries use ------------------------------------

_TOKEN = re.compile(r'\s*(?:#[^\n]*\n\s*)*(?:(?P<punct>[{}()\[\]:!$,=])|(?P<string>"(?:[^"\\]|\\.)*")'
                    r'|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*))')


class Parser:
    """Selections as (alias, name, arguments, children); values with ("$", name) for variables."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position, text = 0, text.rstrip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                raise GraphQLError(f"syntax error at character {position}", None, "parse")
            kind = match.lastgroup or ""
            value = match.group(kind)
            if not (kind == "punct" and value == ","):
                self.tokens.append((kind, value))
            position = match.end()
        self.at = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self._peek()
        if token is None or (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise GraphQLError(f"syntax error: expected {value or kind}, got {token[1] if token else 'end'}", None,
                               "parse")
        self.at += 1
        return token[1]

    def document(self) -> list[tuple]:
        if self._peek() == ("name", "query"):
            self._take()
            if self._peek() and self._peek()[0] == "name":
                self._take()
            if self._peek() == ("punct", "("):  # variable definitions: types are not checked
                depth = 0
                while True:
                    value = self._take()
                    depth += {"(": 1, ")": -1}.get(value, 0)
                    if depth == 0:
                        break
        selections = self.selection_set()
        if self._peek() is not None:
            raise GraphQLError("syntax error: text after the query", None, "parse")
        return selections

    def selection_set(self) -> list[tuple]:
        self._take("{")
        selections = []
        while self._peek() != ("punct", "}"):
            name = self._take(kind="name")
            alias = name
            if self._peek() == ("punct", ":"):
                self._take(":")
                name = self._take(kind="name")
            arguments = {}
            if self._peek() == ("punct", "("):
                self._take("(")
                while self._peek() != ("punct", ")"):
                    key = self._take(kind="name")
                    self._take(":")
                    arguments[key] = self.value()
                self._take(")")
            children = self.selection_set() if self._peek() == ("punct", "{") else []
            selections.append((alias, name, arguments, children))
        self._take("}")
        return selections

    def value(self) -> Any:
        kind, text = self._peek() or ("", "")
        if text == "$":
            self._take("$")
            return ("$", self._take(kind="name"))
        if text == "[":
            self._take("[")
            items = []
            while self._peek() != ("punct", "]"):
                items.append(self.value())
            self._take("]")
            return items
        if text == "{":
            self._take("{")
            fields = {}
            while self._peek() != ("punct", "}"):
                key = self._take(kind="name")
                self._take(":")
                fields[key] = self.value()
            self._take("}")
            return fields
        self._take()
        if kind == "string":
            return text[1:-1].encode().decode("unicode_escape")
        if kind == "number":
            return float(text) if "." in text else int(text)
        return {"true": True, "false": False, "null": None}.get(text, text)  # enums stay names


def _resolve(value: Any, variables: dict) -> Any:
    if isinstance(value, tuple) and value[0] == "$":
        if value[1] not in variables:
            raise GraphQLError(f"variable ${value[1]} is not defined", None, "parse")
        return variables[value[1]]
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    return value


# --- execution ----------------------------------------------------------------------------------

def _execute(document: list[tuple], variables: dict, rows: dict[str, list[dict]], today: date,
             retention_days: int | None) -> dict:
    data: dict[str, Any] = {}
    for alias, name, _args, children in document:
        if name != "viewer":
            raise GraphQLError(f'unknown field "{name}"', [alias], "parse")
        viewer: dict[str, Any] = {}
        for acc_alias, acc_name, acc_args, datasets in children:
            if acc_name != "accounts":
                raise GraphQLError(f'unknown field "{acc_name}" on viewer', [alias, acc_alias], "parse")
            tag = (_resolve(acc_args.get("filter") or {}, variables)).get("accountTag")
            if tag != R2_ACCOUNT:
                raise GraphQLError("not authorized for that account", [alias, acc_alias, "0"], "authz")
            account = {}
            for ds_alias, ds_name, ds_args, fields in datasets:
                path = [alias, acc_alias, "0", ds_alias]
                if ds_name not in DATASETS:
                    raise GraphQLError(f'unknown field "{ds_name}" on account', path, "parse")
                account[ds_alias] = _groups(ds_name, _resolve(ds_args, variables), fields, rows[ds_name], path,
                                            today, retention_days)
            viewer[acc_alias] = [account]
        data[alias] = viewer
    return data


def _matches(row: dict, filters: dict, path: list) -> bool:
    for key, wanted in filters.items():
        field, _, op = key.partition("_")
        if field not in row:
            raise GraphQLError(f'unknown filter "{key}"', path, "parse")
        value = row[field]
        if field == "datetime" and isinstance(wanted, str):
            wanted = wanted.replace("+00:00", "Z")
        ok = {"": value == wanted, "geq": value >= wanted, "gt": value > wanted, "leq": value <= wanted,
              "lt": value < wanted}.get(op)
        if ok is None:
            raise GraphQLError(f'unknown filter "{key}"', path, "parse")
        if not ok:
            return False
    return True


def _groups(name: str, args: dict, fields: list[tuple], rows: list[dict], path: list, today: date,
            retention_days: int | None) -> list[dict]:
    spec = DATASETS[name]
    limit = args.get("limit")
    if not isinstance(limit, int) or limit <= 0:
        raise GraphQLError("limit must be a positive integer", path, "parse")
    if limit > MAX_LIMIT:
        raise GraphQLError(f"limit must be less than or equal to {MAX_LIMIT}", path, "parse")
    filters = args.get("filter") or {}
    if retention_days is not None:
        oldest = (today - timedelta(days=retention_days)).isoformat()
        starts = [str(v)[:10] for k, v in filters.items() if k.endswith(("_geq", "_gt"))]
        if not starts or min(starts) < oldest:
            raise GraphQLError(f"cannot request data older than {retention_days * 86400}s", path, "quota")
    wanted: dict[str, tuple[str, ...]] = {}
    for _alias, part, _a, children in fields:
        allowed = spec.get(part)
        if allowed is None:
            raise GraphQLError(f'unknown field "{part}" on {name}', path, "parse")
        for child in children:
            if child[1] not in allowed:
                raise GraphQLError(f'unknown field "{child[1]}" on {name}.{part}', path, "parse")
        wanted[part] = tuple(child[1] for child in children)
    dims = wanted.get("dimensions", ())
    measure = "sum" if "sum" in spec else "max"
    groups: dict[tuple, dict[str, int]] = defaultdict(dict)
    for row in rows:
        if not _matches(row, filters, path):
            continue
        totals = groups[tuple(row[d] for d in dims)]
        for field in spec[measure]:
            value = row[field]
            totals[field] = totals.get(field, 0) + value if measure == "sum" else max(totals.get(field, 0), value)
    out = []
    for key, totals in groups.items():
        group: dict[str, Any] = {}
        if measure in wanted:
            group[measure] = {f: totals[f] for f in wanted[measure]}
        if dims:
            group["dimensions"] = dict(zip(dims, key, strict=True))
        out.append(group)
    for order in reversed(args.get("orderBy") or []):
        field, _, direction = str(order).rpartition("_")
        if field not in dims:
            raise GraphQLError(f'cannot order by "{order}": not a requested dimension', path, "parse")
        out.sort(key=lambda g, f=field: g["dimensions"][f], reverse=direction == "DESC")
    return out[:limit]
