"""FOCUS billing exports from a folder -> raw_billing (`statex-bi ingest billing --dir PATH`).

Reads every `*.csv`, `*.csv.gz` and `*.parquet` under the folder, recursively (an `aws s3 sync` of AWS
Data Exports, an Azure Cost Management FOCUS export, ...), as FOCUS 1.0 to 1.4 Cost and Usage data as
providers really write it:

- the provider from `ServiceProviderName` (1.3+) or `ProviderName` (1.0-1.2, removed in 1.4);
- the meter from `SkuMeter` (1.1+, AWS 1.2), `x_UsageType` (AWS 1.0) or `x_SkuMeterName` (Azure 1.0);
- AWS's `x_ServiceCode`, `x_Operation`; Azure's `x_PricingBlockSize` (quantities in "Units");
- column names and the enumerations ChargeCategory, ChargeClass, ChargeFrequency and ServiceCategory
  compared case-insensitively ("Usage-based" is Usage-Based) and stored in the spec's spelling;
- amounts as exact decimals with their sign: credits, refunds and reversals are rows like any other.

Validation. A file that lacks a required column (provider, BillingCurrency, ChargePeriodStart/End,
ChargeCategory, ServiceName, BilledCost) or cannot be read is rejected. A row with a required value
missing, a number or datetime that does not parse, or a value FOCUS does not allow goes to
raw_billing.quarantine (endpoint = the file, record = `line N`, the CSV line; `row N` for Parquet; payload =
the record's FOCUS columns read here, never its other columns), and
its file is rejected: a file is loaded whole or not at all, since part of an invoice would misstate it.
Only the first $STATEX_BI_QUARANTINE_PER_FILE bad rows of a file are quarantined; raw_billing.files counts
them all. raw_billing.files records every file read, loaded or rejected, with the reason.

Bounded input (sources/files.py). Files are read a record at a time, twice (validate, then load). A CSV
line over 1 MB, one not UTF-8 or with more cells than the header is quarantined by its line and ends the
file's reading; a file that holds more than $STATEX_BI_MAX_FILE_MB after decompression is refused.

Re-deliveries (deliveries.py). Each export's billing period (its partition folder; else a file's path)
is a *slot* holding one delivery: the newest execution, by the provider's manifest where present. A newer
delivery replaces every earlier row of its slot (rows merge on (file_hash, source_line), and dlt deletes
the slot's rows first: merge key delivery_slot); an unchanged delivery, a copy of a loaded file, or an
older delivery than the one loaded adds nothing; superseded files are recorded, not loaded. Replacing a
billing period that has closed (settings.PERIOD_CLOSES_AFTER_DAYS after its end) is recorded in
raw_billing.corrections with the billed totals before and after. --start/--end do not apply: a file is
loaded whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dlt

from statex_bi.exceptions import ConfigError, FileTooLargeError, RecordError
from statex_bi.sources import files
from statex_bi.sources.billing import deliveries, helpers, settings
from statex_bi.sources.common import declared_fields, declared_schema, public_error, quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec


def build(request: IngestRequest):
    """The billing dlt source for the folder of an ingest request.

    Args:
        request: `dir` is the folder of FOCUS files.

    Returns:
        The dlt source `billing` (tables charges, files, corrections, quarantine).

    Raises:
        ConfigError: no folder was given, or it is not a folder.
    """
    if request.dir is None:
        raise ConfigError("billing imports FOCUS files from a folder: pass it with --dir PATH")
    folder = Path(request.dir).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"billing: {folder} is not a folder")

    def charges() -> Iterator[object]:
        files = helpers.find_files(folder)
        if not files:
            request.progress(f"billing: no FOCUS files (*.csv, *.csv.gz, *.parquet) under {folder}")
        current, superseded = deliveries.plan(files, helpers.find_manifests(folder))
        for path, newer in superseded:
            request.progress(f"billing: superseded {path}: {newer.slot} has a newer delivery "
                             f"({newer.execution or newer.delivered_at})")
            yield _file_row({**_FILE_RECORD, "file_hash": helpers.file_hash(path), "source_file": str(path),
                             "file_format": helpers.file_format(path), "delivery_slot": newer.slot,
                             "status": "superseded", "error": f"superseded by {newer.execution or newer.slot}"})
        loaded = dlt.current.resource_state().setdefault("deliveries", {})
        for delivery in current:
            yield from _load_delivery(delivery, loaded, request.progress)

    @dlt.source(schema=declared_schema(settings.SOURCE, {
        settings.TABLE: settings.CHARGE_COLUMNS, settings.FILES_TABLE: settings.FILE_COLUMNS,
        settings.CORRECTIONS_TABLE: settings.CORRECTION_COLUMNS}), max_table_nesting=0)
    def billing():
        return dlt.resource(charges, name=settings.TABLE, write_disposition="merge", primary_key=settings.CHARGE_KEY,
                            merge_key=settings.SLOT_KEY, file_format=settings.FILE_FORMAT)

    return billing()


_FILE_RECORD = {"focus_version": None, "rows": 0, "quarantined_rows": 0, "first_charge_period": None,
                "last_charge_period": None, "error": None}


def _load_delivery(delivery: deliveries.Delivery, loaded: dict, progress: Callable[[str], None]) -> Iterator[object]:
    """A slot's current delivery, unless it is what the slot holds already, a copy of another slot's
    files, or older than the delivery loaded; `loaded` (the resource state) records what each slot holds."""
    hashes = sorted(helpers.file_hash(path) for path in delivery.files)
    previous = loaded.get(delivery.slot)
    if previous and previous["hashes"] == hashes:
        progress(f"billing: unchanged: {delivery.slot}")
        return
    if previous and delivery.delivered_at.isoformat() < previous["delivered_at"]:
        progress(f"billing: not loaded: {delivery.slot} delivered at {delivery.delivered_at:%Y-%m-%d %H:%M} is older "
                 f"than the delivery loaded ({previous['delivered_at']})")
        return
    owners = {digest: slot for slot, held in loaded.items() if slot != delivery.slot for digest in held["hashes"]}
    if all(digest in owners for digest in hashes):
        progress(f"billing: not loaded again: {delivery.slot} is a copy of {owners[hashes[0]]}")
        return
    totals: dict[str, Decimal] = {}
    for path in delivery.files:
        file_totals = yield from _load_file(path, progress, delivery.slot)
        for key, amount in (file_totals or {}).items():
            totals[key] = totals.get(key, Decimal(0)) + amount
    if not totals:  # every file rejected: the slot keeps the rows it had
        return
    if previous:
        yield from _corrections(delivery, {key: Decimal(v) for key, v in previous["totals"].items()}, totals, progress)
    loaded[delivery.slot] = {"hashes": hashes, "delivered_at": delivery.delivered_at.isoformat(),
                             "totals": {key: str(amount) for key, amount in totals.items()}}


def _corrections(delivery: deliveries.Delivery, before: dict[str, Decimal], after: dict[str, Decimal],
                 progress: Callable[[str], None]) -> Iterator[object]:
    """A raw_billing.corrections row for each closed billing period (and currency) whose billed total the
    new delivery changes: the change is loaded, never silently."""
    now = datetime.now(UTC).replace(tzinfo=None)
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, Decimal(0)), after.get(key, Decimal(0))
        start, end, currency = key.split("|")
        closes = datetime.fromisoformat(end) + timedelta(days=settings.PERIOD_CLOSES_AFTER_DAYS)
        if old == new or closes > now:
            continue
        progress(f"billing: correction to the closed billing period {start[:10]} of {delivery.slot}: billed "
                 f"{old} -> {new} {currency}")
        yield dlt.mark.with_hints(
            {"delivery_slot": delivery.slot, "billing_period_start": datetime.fromisoformat(start),
             "billing_period_end": datetime.fromisoformat(end), "billing_currency": currency,
             "previous_billed_cost": old, "billed_cost": new, "delivered_at": delivery.delivered_at,
             "detected_at": now},
            dlt.mark.make_hints(table_name=settings.CORRECTIONS_TABLE, write_disposition="merge",
                                primary_key=settings.CORRECTION_KEY, merge_key=()),
            create_table_variant=True,
        )


def _load_file(path: Path, progress: Callable[[str], None], slot: str | None = None) -> Iterator[object]:
    """A file's rows, or its quarantined rows and nothing else; then its raw_billing.files record.

    Two passes, a record at a time: the first validates every row (so that a bad row rejects the file
    before any row of it is yielded) and keeps only the first `quarantine_per_file()` bad ones, the
    second yields the rows. Memory does not grow with the file.

    Returns:
        BilledCost per "billing period start|end|currency" of the rows loaded; None when rejected.
    """
    endpoint = str(path)
    digest = helpers.file_hash(path)
    slot = slot or deliveries.slot_of(path)[0]  # the file read alone: the slot its path puts it in
    record = {**_FILE_RECORD, "file_hash": digest, "source_file": endpoint, "file_format": helpers.file_format(path),
              "delivery_slot": slot, "status": "rejected"}
    limit, keep = files.max_file_bytes(), files.quarantine_per_file()
    bad, bad_count, count, first, last, totals = [], 0, 0, None, None, {}
    fields: Counter = Counter()  # the FOCUS columns at fault, for the commonest reason
    try:
        header = helpers.read_header(path, limit)
        columns = helpers.column_map(header)
        record["focus_version"] = helpers.focus_version(header)
        missing = helpers.missing_columns(columns)
        if missing:
            raise RecordError(settings.SOURCE, endpoint, "line 1", missing[0],
                              f"required FOCUS column missing: {', '.join(missing)}")
        declared = [name for names in columns.values() for name in names]
        for line, raw in helpers.read_rows(path, limit):
            count += 1
            try:
                if isinstance(raw, RecordError):
                    raise raw
                row = helpers.parse_row(raw, columns, endpoint, _record_id(path, line))
            except RecordError as exc:
                bad_count += 1
                fields[exc.field] += 1
                if len(bad) < keep:  # made into its (cut, redacted) quarantine record now: the raw row is let go
                    progress(f"billing: quarantined: {public_error(str(exc), foreign=False)}")
                    payload = {"source_file": endpoint, "source_line": line,
                               "record": declared_fields(raw, declared)}
                    bad.append((exc, quarantined(settings.SOURCE, endpoint, exc.record_id, exc.field, str(exc),
                                                 payload)))
                continue
            start = row["charge_period_start"]
            first, last = min(first or start, start), max(last or start, start)
            key = helpers.billing_period_key(row)
            totals[key] = totals.get(key, Decimal(0)) + row["billed_cost"]
    except RecordError as exc:
        said = public_error(str(exc), foreign=False)
        progress(f"billing: rejected {endpoint}: {said}")
        yield quarantined(settings.SOURCE, endpoint, exc.record_id, exc.field, str(exc), {"source_file": endpoint})
        yield _file_row({**record, "error": said})
        return None
    except FileTooLargeError as exc:
        progress(str(exc))
        yield quarantined(settings.SOURCE, endpoint, "file", "file", str(exc), {"source_file": endpoint})
        yield _file_row({**record, "error": str(exc)})
        return None
    except (ValueError, OSError, EOFError) as exc:  # unreadable: bad gzip or Parquet
        message = public_error(f"billing: {endpoint}: unreadable: {type(exc).__name__}: {exc}", foreign=True)
        progress(f"billing: rejected {endpoint}: {message}")
        yield quarantined(settings.SOURCE, endpoint, "file", "file", message, {"source_file": endpoint})
        yield _file_row({**record, "error": message})
        return None
    record.update(rows=count, first_charge_period=first, last_charge_period=last)
    if bad:
        yield from (item for _, item in bad)
        more = f"; the first {keep} are quarantined" if bad_count > keep else ""
        field, hits = fields.most_common(1)[0]
        example = public_error(str(next((exc for exc, _ in bad if exc.field == field), bad[0][0])), foreign=False)
        error = (f"{bad_count:,} of {count:,} rows break the FOCUS spec{more}, commonest: {field} on {hits:,} rows "
                 f"(e.g. {example}); the file is not loaded")
        progress(f"billing: rejected {endpoint}: {error}")
        yield _file_row({**record, "quarantined_rows": bad_count, "error": error})
        return None
    for line, raw in helpers.read_rows(path, limit):
        row = helpers.parse_row(raw, columns, endpoint, _record_id(path, line))
        yield {"file_hash": digest, "source_line": line, "source_file": endpoint,
               "focus_version": record["focus_version"], settings.SLOT_KEY: slot, **row}
    progress(f"billing: loaded {endpoint}: {count:,} rows (FOCUS {record['focus_version']})")
    yield _file_row({**record, "status": "loaded"})
    return totals


def _record_id(path: Path, line: int) -> str:
    return f"{'row' if helpers.file_format(path) == 'parquet' else 'line'} {line}"


def _file_row(record: dict):
    return dlt.mark.with_hints(
        record,
        dlt.mark.make_hints(table_name=settings.FILES_TABLE, write_disposition="merge", primary_key="file_hash",
                            merge_key=()),
        create_table_variant=True,
    )


SPEC = SourceSpec(
    name="billing", build=build, watermark_sql="SELECT max(charge_period_start) FROM raw_billing.charges",
    bookkeeping=(settings.FILES_TABLE, settings.CORRECTIONS_TABLE),
    # A file none of whose rows could be loaded fails the ingest (the other files still load).
    failures_sql=f"""SELECT source_file, 'all ' || rows || ' rows quarantined; ' || error
                     FROM raw_billing.{settings.FILES_TABLE}
                     WHERE _dlt_load_id = ? AND status = 'rejected' AND rows > 0 AND quarantined_rows = rows
                     ORDER BY source_file""",
)
