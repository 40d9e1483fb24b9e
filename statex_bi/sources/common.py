"""Helpers every source shares: quarantined records and pseudonymised identifiers."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import dlt
from dlt.common.schema import Schema
from dlt.common.schema.utils import new_table

from statex_bi.config import require_env

QUARANTINE_TABLE = "quarantine"
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def declared_schema(source: str, columns: dict[str, dict[str, dict]]) -> Schema:
    """A dlt schema declaring the contract's tables and column types (docs/raw_tables.md).

    Declared tables exist, with every column, even when a load has no rows or a column is all NULL.
    They go in the source schema rather than in resource hints, which the quarantine table (a
    variant of the resource's table) would inherit.
    """
    declared = Schema(source)
    for table, table_columns in columns.items():
        declared_columns = [{"name": name, **hints} for name, hints in table_columns.items()]
        declared.update_table(new_table(table, columns=declared_columns))
    return declared


def decimal_to_minor(amount: Any, currency: Any, exponents: dict[str, int]) -> tuple[int, str]:
    """(amount in minor units, currency) of a decimal string such as "990.00", exactly: Decimal, never float.

    Args:
        exponents: the provider's minor-unit exponent per currency (they differ from ISO 4217 at times).

    Raises:
        ValueError: an unknown currency, not a decimal string, or more decimals than the currency has.
    """
    if currency not in exponents:
        raise ValueError(f"unknown currency {currency!r}")
    if not isinstance(amount, str) or not DECIMAL.match(amount):
        raise ValueError(f"expected a decimal string, got {amount!r}")
    try:
        scaled = Decimal(amount).scaleb(exponents[currency])
    except InvalidOperation as exc:
        raise ValueError(f"expected a decimal string, got {amount!r}") from exc
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than {currency} allows")
    return int(scaled), currency


def quarantined(source: str, endpoint: str, record_id: str | None, field: str, error: str, payload: Any):
    """A bad record routed to `raw_<source>.quarantine` instead of being dropped.

    Yield the returned item from a resource; dlt merges it into the quarantine table in the same load
    as the good records, so both land or neither does, and a re-run does not quarantine it twice.
    A resource with an incremental cursor must declare it with `on_cursor_value_missing="include"`,
    since a quarantine row does not carry the cursor field. dlt gives the quarantine table variant the
    resource's column hints too (dlt 1.31, checked: explicit columns do not override them), so such a
    resource must not declare `nullable: False` columns; type hints alone are fine.
    """
    body = json.dumps(payload, default=str, sort_keys=True)
    key = f"{endpoint}|{record_id if record_id is not None else body}|{field}"
    row = {
        "quarantine_id": hashlib.sha256(key.encode()).hexdigest()[:32],
        "source": source,
        "endpoint": endpoint,
        "record_id": None if record_id is None else str(record_id),
        "field": field,
        "error": error,
        "payload": body[:10_000],
    }
    return dlt.mark.with_hints(
        row,
        dlt.mark.make_hints(
            table_name=QUARANTINE_TABLE, write_disposition="merge", primary_key="quarantine_id", merge_key=()
        ),
        create_table_variant=True,
    )


def pseudonymise(value: str | None) -> str | None:
    """A keyed hash of a customer identifier (e-mail, name, customer id).

    The key is $STATEX_BI_PSEUDONYM_KEY and is required: an unkeyed or publicly known key would let
    anyone re-identify e-mail addresses by hashing guesses. The same key gives the same pseudonym
    across loads and providers, so customers stay joinable while no identifier is stored in clear.
    `statex-bi demo` supplies a demo key of its own.
    """
    if value is None or value == "":
        return None
    key = require_env("STATEX_BI_PSEUDONYM_KEY", "pseudonymising customer identifiers at load").encode()
    digest = hmac.new(key, str(value).strip().lower().encode(), hashlib.sha256).hexdigest()
    return f"cus_{digest[:24]}"
