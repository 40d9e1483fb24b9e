"""Helpers every source shares: quarantined records and pseudonymised identifiers."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import dlt
import requests
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.common.schema import Schema
from dlt.common.schema.utils import new_table

from statex_bi.config import require_env
from statex_bi.exceptions import RecordError

QUARANTINE_TABLE = "quarantine"
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
# An e-mail address is a run of [\w.+-] (its local part), "@", then a dotted domain. `scrub` finds each
# "@domain" with one regex and walks back over the local part, so every character is looked at a bounded
# number of times: the single pattern `[\w.+-]+@...` is tried from every position of a long run without
# "@", which is quadratic (an 80 KB line took 28 s, a 1 MB line hours).
_AT_DOMAIN = re.compile(r"@[\w-]+(?:\.[\w-]+)+")
_LOCAL_PART = re.compile(r"[\w.+-]*")
_TOKEN = re.compile(r"[\w.+@-]*")
# The longest text a quarantine payload keeps of one value, and the deepest nesting it keeps: cut before
# anything scans them, so a hostile record costs the same as a normal one.
PAYLOAD_TEXT_CHARS = 1_000
PAYLOAD_DEPTH = 20
PAYLOAD_CHARS = 10_000
ERROR_CHARS = 1_000
# A record dated before this, or more than FUTURE_TOLERANCE after now, is not believed.
EARLIEST = datetime(2000, 1, 1)
FUTURE_TOLERANCE = timedelta(days=1)
# Keys whose value identifies a person: pseudonymised in quarantine payloads, like the loaded columns.
PSEUDONYMISED_KEYS = frozenset({
    "email", "email_address", "receipt_email", "customer_email", "payer_email", "customer", "customer_id",
    "payer_id", "account_id", "paypal_account_id", "stripe_customer",
})
# Keys whose value describes a person or a card and is never needed: dropped from quarantine payloads.
DROPPED_KEYS = frozenset({
    "name", "given_name", "surname", "full_name", "alternate_full_name", "customer_name", "payer_name",
    "phone", "phone_number", "address", "shipping", "shipping_info", "fingerprint", "last4", "tax_id",
})


def retrying_session(timeout_s: float, attempts: int, backoff_s: float, max_delay_s: float,
                     retry_condition: Callable[..., bool] | None = None) -> requests.Session:
    """A requests session from dlt's HTTP client: retries 429, 5xx and dropped connections, honours
    Retry-After up to `max_delay_s`, and leaves error statuses to the caller (no raise_for_status).

    Args:
        timeout_s: per-request timeout.
        attempts: tries per request, the first included.
        backoff_s: the exponential backoff factor when the server names no wait.
        max_delay_s: the longest wait, Retry-After included.
        retry_condition: another reason to retry (e.g. GitHub's 403 for an exhausted rate limit).
    """
    from dlt.sources.helpers.requests import Client

    return Client(request_timeout=timeout_s, raise_for_status=False, request_max_attempts=attempts,
                  request_backoff_factor=backoff_s, request_max_retry_delay=max_delay_s,
                  retry_condition=retry_condition).session


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
    The payload is `redact`ed (no e-mail, name, customer or payer id, card fingerprint or last4 in
    clear), in the quarantine table and in dlt's staging copy alike. A resource with an incremental
    cursor must declare it with `on_cursor_value_missing="include"`,
    since a quarantine row does not carry the cursor field. dlt gives the quarantine table variant the
    resource's column hints too (dlt 1.31, checked: explicit columns do not override them), so such a
    resource must not declare `nullable: False` columns; type hints alone are fine.
    """
    body = json.dumps(redact(payload), default=str, sort_keys=True)
    key = f"{endpoint}|{record_id if record_id is not None else body}|{field}"
    row = {
        "quarantine_id": hashlib.sha256(key.encode()).hexdigest()[:32],
        "source": source,
        "endpoint": endpoint,
        "record_id": None if record_id is None else str(record_id),
        "field": field,
        "error": scrub(cut(error, ERROR_CHARS)),
        "payload": cut(body, PAYLOAD_CHARS),
    }
    return dlt.mark.with_hints(
        row,
        dlt.mark.make_hints(
            table_name=QUARANTINE_TABLE, write_disposition="merge", primary_key="quarantine_id", merge_key=()
        ),
        create_table_variant=True,
    )


def declared_fields(record: Any, names: Iterable[str]) -> dict:
    """The fields of `record` that its source reads, for a quarantine payload: they say what is wrong
    with it; its other keys are never needed and may hold anything (a user's name, a phone number in
    free text). Not a mapping (a line that is not a JSON object): nothing."""
    if not isinstance(record, Mapping):
        return {}
    return {name: record[name] for name in names if name in record}


def screened(items: Iterable[Any]) -> Iterator[Any]:
    """A resource's `items` (rows, quarantined records, other marked items) with every marked item that
    comes before the first row held back until that row has passed.

    dlt's incremental with a `lag` (1.31, checked) fails an assertion when an item without the cursor
    field (a quarantined record) reaches it before the first row with one: it then takes the unlagged
    cursor for the lagged start. A resource whose newest record is bad would fail every re-run.
    """
    held: list[Any] = []
    passed = False
    for item in items:
        if not passed and not isinstance(item, dict):
            held.append(item)
            continue
        yield item
        if not passed:
            passed = True
            yield from held
            held.clear()
    yield from held


def already_loaded(table: str, columns: str, where: str = "true") -> list[tuple]:
    """`columns` of the rows of `table` in the running pipeline's dataset that match `where`; none
    before the table's first load.

    Call it inside a resource: guards compare new records with what is loaded (a refund with its payment).
    """
    pipeline = dlt.current.pipeline()
    try:
        with pipeline.sql_client() as client:
            query = f"SELECT {columns} FROM {client.make_qualified_table_name(table)} WHERE {where}"
            with client.execute_query(query) as cursor:
                return list(cursor.fetchall())
    except DestinationUndefinedEntity:
        return []


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


def scrub(text: str) -> str:
    """`text` with every e-mail address in it replaced by its pseudonym, in time linear in its length."""
    if "@" not in text:
        return text
    backwards, size = text[::-1], len(text)
    parts, done = [], 0
    for found in _AT_DOMAIN.finditer(text):
        at = found.start()
        local = _LOCAL_PART.match(backwards, size - at).end() - (size - at)
        start = max(at - local, done)  # an address does not reach back into the one before it
        if start < at:
            parts += (text[done:start], pseudonymise(text[start:found.end()]) or "")
            done = found.end()
    parts.append(text[done:])
    return "".join(parts)


def cut(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters; a word or address the cut splits is dropped whole, so no
    part of an e-mail address survives the cut unscrubbed."""
    if len(text) <= limit:
        return text
    kept = text[:limit]
    split = _TOKEN.match(kept[::-1]).end()
    return f"{kept[:limit - split]}… [{len(text) - limit + split:,} characters cut]"


def public_error(message: str, foreign: bool) -> str:
    """An error message as it may be stored (ops.source_loads) and shown on a page: e-mail addresses
    pseudonymised, cut to ERROR_CHARS, like a quarantine record's error.

    Args:
        foreign: the message comes from a library (DuckDB, dlt, pyarrow), not from statex-bi: only its
            first line is kept, since what follows quotes the data (DuckDB prints the failing INSERT row).
    """
    if foreign:
        message = message.strip().split("\n", 1)[0]
    return scrub(cut(message, ERROR_CHARS))


def redact(value: Any, depth: int = 0) -> Any:
    """A quarantine payload without personal data: identifying keys pseudonymised (as in the loaded
    tables), names, addresses, phones and card details dropped, e-mails inside any text pseudonymised.

    Text is cut to PAYLOAD_TEXT_CHARS and nesting to PAYLOAD_DEPTH levels before it is looked at. A
    payload that is itself JSON text is redacted as JSON, and kept as it was when it held nothing personal.
    """
    if depth > PAYLOAD_DEPTH and isinstance(value, dict | list | tuple):
        return f"… [nested deeper than {PAYLOAD_DEPTH} levels]"
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            name = str(key).lower().rsplit(".", 1)[-1]
            if name in DROPPED_KEYS:
                continue
            if name in PSEUDONYMISED_KEYS and isinstance(item, str | int):
                kept[key] = pseudonymise(str(item))
            else:
                kept[key] = redact(item, depth + 1)
        return kept
    if isinstance(value, list | tuple):
        return [redact(item, depth + 1) for item in value]
    if isinstance(value, str):
        value = cut(value, PAYLOAD_TEXT_CHARS)
        stripped = value.strip()
        if stripped.startswith(("{", "[")):
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict | list):
                cleaned = redact(parsed, depth + 1)
                return value if cleaned == parsed else json.dumps(cleaned, sort_keys=True)
        return scrub(value)
    return value


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    return None


@dataclass
class RecordGuard:
    """The checks a parsed row passes before a resource yields it, so before dlt's incremental sees it:
    a row that fails goes to quarantine and can neither move a cursor nor vanish.

    Attributes:
        source, endpoint: name the record in errors.
        key: the row's natural key columns (names the record; a repeated key with other content in
            the same load is quarantined, the first one loads).
        timestamps: columns that must lie between `earliest` (default EARLIEST) and now +
            FUTURE_TOLERANCE (NULL passes).
        positive: amount columns that must be above zero (NULL passes).
        currencies: the currency codes the provider knows; the `currency` column must be one of them.
        rules: further checks, each returning (field, message) when the row breaks it, else None.
    """

    source: str
    endpoint: str
    key: tuple[str, ...]
    timestamps: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    currencies: Collection[str] | None = None
    rules: tuple[Callable[[dict], tuple[str, str] | None], ...] = ()
    earliest: datetime = EARLIEST
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    seen: dict[tuple, bytes] = field(default_factory=dict, repr=False)

    def record_id(self, row: dict) -> str:
        return "/".join(str(row.get(column)) for column in self.key)

    def check(self, row: dict, record_id: str | None = None) -> dict:
        """The row, when it passes every check.

        Args:
            row: the parsed row.
            record_id: names the record in errors (default: its key values joined by '/').

        Raises:
            RecordError: naming the record, the field and what is wrong with it.
        """
        record_id = record_id or self.record_id(row)

        def fail(column: str, message: str) -> RecordError:
            return RecordError(self.source, self.endpoint, record_id, column, message)

        latest = self.now + FUTURE_TOLERANCE
        for column in self.timestamps:
            moment = _moment(row.get(column))
            if moment is not None and moment < self.earliest:
                raise fail(column, f"{row[column]} is before {self.earliest:%Y-%m-%d}")
            if moment is not None and moment > latest:
                raise fail(column, f"{row[column]} is more than a day in the future "
                                   f"(now {self.now:%Y-%m-%d %H:%M} UTC)")
        for column in self.positive:
            amount = row.get(column)
            if amount is not None and amount <= 0:
                raise fail(column, f"expected an amount above zero, got {amount}")
        if self.currencies is not None and row.get("currency") not in self.currencies:
            raise fail("currency", f"unknown currency {row.get('currency')!r}")
        for rule in self.rules:
            broken = rule(row)
            if broken is not None:
                raise fail(*broken)
        identity = tuple(row.get(column) for column in self.key)
        digest = hashlib.blake2b(json.dumps(row, default=str, sort_keys=True).encode(), digest_size=16).digest()
        earlier = self.seen.setdefault(identity, digest)
        if earlier != digest:
            raise fail(self.key[-1], "the same id came twice in this load with different content; the first loaded")
        return row
