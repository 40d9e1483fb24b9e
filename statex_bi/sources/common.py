"""Helpers every source shares: quarantined records and pseudonymised identifiers."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import dlt

from statex_bi.config import env

QUARANTINE_TABLE = "quarantine"


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

    The key is $STATEX_BI_PSEUDONYM_KEY; the same key gives the same pseudonym across loads, so
    customers stay joinable while no identifier reaches the warehouse in clear.
    """
    if value is None or value == "":
        return None
    key = (env("STATEX_BI_PSEUDONYM_KEY") or "statex-bi-demo-key").encode()
    digest = hmac.new(key, str(value).strip().lower().encode(), hashlib.sha256).hexdigest()
    return f"cus_{digest[:24]}"
