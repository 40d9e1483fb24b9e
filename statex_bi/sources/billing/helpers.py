"""Reading FOCUS files: discovery, hashing, CSV / Parquet rows, one row's validation and normalisation."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from statex_bi.exceptions import RecordError
from statex_bi.sources import files
from statex_bi.sources.billing import settings

_ALLOWED_LOWER = {column: {v.lower(): v for v in values} for column, values in settings.ALLOWED.items()}
# csv refuses a cell over 128 KB with an error that names no column and leaves the reader mid-record; a
# record is bounded by MAX_LINE_BYTES here instead, and parse_row names the column of a cell that is too long.
csv.field_size_limit(files.MAX_LINE_BYTES)


def find_files(folder: Path) -> list[Path]:
    """Every FOCUS file (CSV, gzipped CSV, Parquet) under `folder`, recursively, in path order.

    An `aws s3 sync` of AWS Data Exports nests them as `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/`.
    """
    files = {path for pattern in settings.FILE_PATTERNS for path in folder.rglob(pattern) if path.is_file()}
    return sorted(files)


def find_manifests(folder: Path) -> list[Path]:
    """Every provider manifest (AWS `<export>-Manifest.json`, Azure `manifest.json`) under `folder`."""
    return sorted(path for path in folder.rglob(settings.MANIFEST_PATTERN) if path.is_file())


def billing_period_key(row: Mapping[str, Any]) -> str:
    """"start|end|currency" of a row's billing period (its charge's calendar month when the file has no
    BillingPeriodStart/End): the unit a re-delivery's totals are compared by."""
    start = row["billing_period_start"] or row["charge_period_start"].replace(day=1, hour=0, minute=0, second=0,
                                                                               microsecond=0)
    end = row["billing_period_end"] or (start + timedelta(days=32)).replace(day=1)
    return f"{start.isoformat()}|{end.isoformat()}|{row['billing_currency']}"


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the identity of an export file, whatever its name or folder."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_format(path: Path) -> str:
    return "parquet" if path.name.lower().endswith(".parquet") else "csv"


def read_header(path: Path, limit: int) -> list[str]:
    """The file's column names.

    Raises:
        RecordError: the header line is over MAX_LINE_BYTES or not UTF-8 (UTF-16 is named as such).
        FileTooLargeError: a Parquet file holds more than `limit` bytes uncompressed.
    """
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    for _, record in _csv_records(path, limit):
        if isinstance(record, RecordError):
            raise record
        return record
    return []


def read_rows(path: Path, limit: int) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    """(line, record) for each data row: the CSV line the record starts on (the header is line 1), or the
    Parquet row number (1-based). Empty CSV cells are None. A CSV record that cannot be read (a line over
    MAX_LINE_BYTES, not UTF-8, more cells than the header) comes as a RecordError naming its line, and
    ends the file: where the next record starts is not known.

    Args:
        limit: the most bytes the file may hold after decompression.

    Raises:
        FileTooLargeError: the file holds more than `limit` bytes after decompression.
        ValueError, OSError, EOFError: the file cannot be read at all (bad gzip, a broken Parquet file).
    """
    endpoint = str(path)
    if file_format(path) == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        metadata = parquet.metadata
        if sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)) > limit:
            raise files.too_large(settings.SOURCE, path, limit)
        number = 0
        for batch in parquet.iter_batches(batch_size=10_000):
            for record in batch.to_pylist():
                number += 1
                yield number, record
        return
    records = _csv_records(path, limit)
    _, header = next(records, (1, []))
    if isinstance(header, RecordError):
        return
    for line, cells in records:
        if isinstance(cells, RecordError):
            yield line, cells
            return
        if not cells:
            continue
        if len(cells) > len(header):
            yield line, RecordError(settings.SOURCE, endpoint, f"line {line}", "(line)",
                                    f"{len(cells)} cells, the header has {len(header)}")
            return
        yield line, {name: (cell if cell != "" else None) for name, cell in zip(header, cells, strict=False)}


class _Unreadable(Exception):
    """A CSV line that cannot be read, raised out of the csv reader's input."""

    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(message)
        self.line, self.field = line, field


def _csv_records(path: Path, limit: int) -> Iterator[tuple[int, list[str] | RecordError]]:
    """(first line, cells) of each CSV record, read a line at a time, each record at most MAX_LINE_BYTES
    (a quoted cell may span lines); a RecordError instead ends the file."""
    endpoint, number, record_bytes = str(path), 0, 0

    def text() -> Iterator[str]:
        nonlocal number, record_bytes
        with files.open_binary(path) as stream:
            for raw in files.Lines(stream, settings.SOURCE, path, limit):
                number += 1
                if isinstance(raw, files.LongLine):
                    raise _Unreadable(number, "(line)", files.long_line_message(raw))
                record_bytes += len(raw)
                if record_bytes > files.MAX_LINE_BYTES:
                    raise _Unreadable(number, "(line)", f"a record over {files.MAX_LINE_BYTES:,} bytes "
                                      "(a quote never closed?)")
                if number == 1 and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise _Unreadable(number, "(encoding)", "UTF-16 text, not UTF-8: export the file as UTF-8")
                try:
                    yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise _Unreadable(number, "(encoding)", f"not UTF-8 text (byte {exc.start} of the line)") \
                        from None

    reader = csv.reader(text())
    while True:
        start = number + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _Unreadable as exc:
            yield exc.line, RecordError(settings.SOURCE, endpoint, f"line {exc.line}", exc.field, str(exc))
            return
        except csv.Error as exc:
            yield start, RecordError(settings.SOURCE, endpoint, f"line {start}", "(line)", f"not CSV: {exc}")
            return
        record_bytes = 0
        yield start, cells


def column_map(header: list[str]) -> dict[str, list[str]]:
    """raw_billing.charges column -> the file's columns that fill it, in order of preference (names matched
    case-insensitively); a row takes the first of them that holds a value (a 1.3 file may carry both
    ServiceProviderName and ProviderName, an export both SkuMeter and an empty x_UsageType)."""
    lower = {name.lower(): name for name in header}
    found = {}
    for column, names in settings.COLUMN_NAMES.items():
        present = [lower[name.lower()] for name in names if name.lower() in lower]
        if present:
            found[column] = present
    return found


def focus_version(header: list[str]) -> str:
    """The FOCUS versions a header fits, from the provider column: 1.3+ wrote ServiceProviderName."""
    names = {name.lower() for name in header}
    if "serviceprovidername" in names:
        return "1.3-1.4" if "providername" not in names else "1.3"
    return "1.0-1.2"


def missing_columns(columns: Mapping[str, list[str]]) -> list[str]:
    """The required FOCUS columns a file lacks, by their FOCUS names."""
    return [" or ".join(settings.COLUMN_NAMES[c]) for c in settings.REQUIRED_COLUMNS if c not in columns]


def parse_row(record: Mapping[str, Any], columns: Mapping[str, list[str]], endpoint: str, record_id: str) -> dict:
    """One FOCUS record as a raw_billing.charges row (without the file columns).

    Decimals stay Decimal (never float); datetimes become naive UTC; enumerations take the spec's
    spelling whatever the file's case; amounts keep their sign.

    Raises:
        RecordError: a required value is missing, a number or datetime does not parse, or an
            enumeration holds a value FOCUS does not allow (names the FOCUS column).
    """
    row: dict[str, Any] = {}
    for column in settings.COLUMN_NAMES:
        names = columns.get(column, [])
        name, value = (names[0] if names else None), None
        for candidate in names:
            value = record.get(candidate)
            if isinstance(value, str):
                value = value.strip()
                value = None if value in ("", settings.NULL_TEXT) else value
            if value is not None:
                name = candidate
                break
        if isinstance(value, str) and len(value) > settings.MAX_CELL_CHARS:
            raise RecordError(settings.SOURCE, endpoint, record_id, name,
                              f"a value of {len(value):,} characters, over the {settings.MAX_CELL_CHARS:,} allowed")
        if value is None:
            if column in settings.NOT_NULL:
                raise RecordError(settings.SOURCE, endpoint, record_id, name or column, "required value is missing")
            row[column] = None
            continue
        try:
            row[column] = _convert(column, value)
        except ValueError as exc:
            raise RecordError(settings.SOURCE, endpoint, record_id, name, str(exc)) from None
    if row["charge_period_end"] < row["charge_period_start"]:
        raise RecordError(settings.SOURCE, endpoint, record_id, columns["charge_period_end"][0],
                          "ChargePeriodEnd is before ChargePeriodStart")
    return row


def _convert(column: str, value: Any) -> Any:
    if column in settings.DECIMALS:
        return to_decimal(value)
    if column in settings.DATETIMES:
        return to_utc(value)
    if column == "tags":
        return tags_json(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"expected text, got a {type(value).__name__}")
    text = str(value)
    if column in _ALLOWED_LOWER:
        allowed = _ALLOWED_LOWER[column]
        if text.lower() not in allowed:
            raise ValueError(f"{text!r} is not an allowed value ({', '.join(settings.ALLOWED[column])})")
        return allowed[text.lower()]
    if column == "billing_currency":
        if len(text) != 3 or not text.isalpha():
            raise ValueError(f"{text!r} is not an ISO 4217 currency code")
        return text.upper()
    return text


def to_decimal(value: Any) -> Decimal:
    """A FOCUS decimal (text, int, float or Decimal) as an exact Decimal."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    if abs(number) >= settings.DECIMAL_LIMIT:
        raise ValueError(f"{value} is out of range: an amount or quantity must be below 1E+20 in magnitude")
    return number


def to_utc(value: Any) -> datetime:
    """A FOCUS datetime (ISO 8601 text, with or without Z / offset; or a datetime) as naive UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"not an ISO 8601 datetime: {value!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def tags_json(value: Any) -> str:
    """FOCUS Tags as a JSON object text, whatever the file wrote: CSV's JSON text, Parquet's
    `map<string,string>` (read as (key, value) pairs) or struct (a dict).

    Raises:
        ValueError: the value is not a JSON object of tags.
    """
    if isinstance(value, str):
        try:
            tags = json.loads(value)
        except ValueError:
            raise ValueError(f"Tags is not JSON: {value[:80]!r}") from None
    else:
        try:  # a Parquet map reads as (key, value) pairs, a struct as a dict
            tags = dict(value)
        except (TypeError, ValueError):
            raise ValueError("expected key-value tags") from None
    if not isinstance(tags, dict):
        raise ValueError(f"Tags is not a JSON object: {str(value)[:80]!r}")
    try:
        return json.dumps(tags, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        raise ValueError("expected key-value tags") from None
