"""A JSONL log of AI calls -> raw_ai_calls.calls (`statex-bi ingest ai-calls --file PATH`).

The same records as the `gen_ai.*` spans in Sentry, written by the app itself, for the history that
outlives Sentry's span retention or for calls never sampled into Sentry. One JSON object a line:

    span_id                           required, the span id (16 hex)
    trace_id                          the trace id (32 hex)
    start_timestamp                   required, ISO 8601 (naive = UTC) or epoch seconds
    duration_ms                       number
    op, status                        e.g. gen_ai.chat, ok | deadline_exceeded | resource_exhausted | ...
    project                           the app or service name
    gen_ai.system                     ollama | openai | azure.ai.openai
    gen_ai.request.model              the model asked for
    gen_ai.usage.input_tokens         whole number, including the cached ones
    gen_ai.usage.input_tokens.cached  whole number
    gen_ai.usage.output_tokens        whole number
    prototype_id                      the prototype the call worked for ($SENTRY_PROTOTYPE_ATTRIBUTE)
    ai_tier                           ollama | openai | azure ($SENTRY_TIER_ATTRIBUTE; when absent, the
                                      tier gen_ai.system means, with ai_tier_inferred true)

Missing optional keys load as NULL; other keys are ignored. Rows merge on span_id (re-importing a
file, or a later file repeating a call, replaces it) and keep `source_file` (the resolved path) and
`source_line`. A line that is not valid JSON, not an object, has no span_id, a token count that is not
a whole number or a start that is not a timestamp goes to raw_ai_calls.quarantine with the file and
line number in its error (endpoint = the file, record = `line N`, payload = the record's fields
listed above, never the line: a log line may carry a user's name or address); the other
lines load. So does a start more than a day in the future or before 2000, or a span id repeated with
other content. A file that is not a JSONL log at all (binary, not UTF-8, or a first line that is not
a JSON object) is refused before anything loads, with one message.

The file is streamed a line at a time and staged as JSONL (not SQL INSERTs): memory stays flat
whatever the file's size (bench/bench_ai_calls_memory.py). A line over 1 MB is quarantined without
being held; only the first $STATEX_BI_QUARANTINE_PER_FILE bad lines are quarantined, then one record
counting them all; a file over $STATEX_BI_MAX_FILE_MB is refused (sources/files.py).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import dlt

from statex_bi.exceptions import ConfigError, RecordError
from statex_bi.sources import files
from statex_bi.sources.ai_calls import settings
from statex_bi.sources.common import RecordGuard, declared_fields, public_error, quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.sentry.helpers import parse_span, span_fields


def build(request: IngestRequest):
    """The ai-calls dlt resource for the file of an ingest request.

    Args:
        request: `file` is the JSONL file to import.

    Returns:
        The `calls` resource.

    Raises:
        ConfigError: no file was given, or it is not a readable file.
    """
    if request.file is None:
        raise ConfigError("ai-calls imports a JSONL file: pass it with --file PATH")
    path = Path(request.file).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"ai-calls: {path} is not a file")
    limit, keep = files.max_file_bytes(), files.quarantine_per_file()
    if path.stat().st_size > limit:
        raise files.too_large(settings.SOURCE, path, limit)
    _check_jsonl(path)
    fields = span_fields(settings.RECORD_KEYS)

    def calls() -> Iterator[dict]:
        with path.open("rb") as stream:
            yield from _read(files.Lines(stream, settings.SOURCE, path, limit), str(path), fields, request.progress,
                             keep)
        request.progress(f"ai-calls: read {path}")

    return dlt.resource(calls, name=settings.TABLE, write_disposition="merge", primary_key="span_id",
                        columns=settings.COLUMNS, file_format="jsonl")


def _utf16(head: bytes) -> bool:
    """UTF-16 text: a byte-order mark, or (without one) a NUL beside every character of ASCII text."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    pairs = len(head) // 2
    return pairs > 0 and pairs in (head[0:pairs * 2:2].count(0), head[1:pairs * 2:2].count(0))


def _check_jsonl(path: Path) -> None:
    """Refuse, with one message, a file that is not a JSONL log at all, before anything loads.

    Raises:
        ConfigError: the file's start is UTF-16, holds a NUL byte or is not UTF-8, or its first line is not
            a JSON object.
    """
    with path.open("rb") as file:
        head = file.read(settings.SNIFF_BYTES)
    why = None
    nul = head.find(b"\0")
    if _utf16(head):
        why = "it is UTF-16 text, not UTF-8 (save or export it as UTF-8)"
    elif nul >= 0:
        why = f"it holds binary data (a NUL byte at offset {nul})"
    else:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
                why = f"it is not UTF-8 text (byte offset {exc.start})"
    if why is None:
        first = next((line for line in head.splitlines() if line.strip()), b"")
        try:
            record = json.loads(first) if first else None
        except ValueError:
            record = None
        if not isinstance(record, dict):
            why = f"its first line is not a JSON object: {first[:60].decode('utf-8', 'replace')!r}"
    if why is not None:
        raise ConfigError(f"ai-calls: {path} is not a JSONL log of AI calls: {why}. Nothing was loaded; "
                          "pass the app's JSONL export (one JSON object a line, see docs/sources.md).")


def _read(lines: Iterable[bytes | files.LongLine], endpoint: str, fields: dict[str, str],
          progress: Callable[[str], None], keep: int = files.DEFAULT_QUARANTINE_PER_FILE) -> Iterator[dict]:
    """A row for each good line, a quarantined record for each of the first `keep` bad ones (then one
    counting them all), a line at a time."""
    guard = RecordGuard(settings.SOURCE, endpoint, ("span_id",), timestamps=("started_at",))
    bad = 0
    for number, raw in enumerate(lines, start=1):
        if not isinstance(raw, files.LongLine) and not raw.strip():
            continue
        record = None
        try:
            if isinstance(raw, files.LongLine):
                raise RecordError(settings.SOURCE, endpoint, f"line {number}", "line", files.long_line_message(raw))
            record = _json_object(raw, endpoint, number)
            row = parse_span(record, fields, settings.SOURCE, endpoint, f"line {number}")
            row = guard.check({**row, "source_file": endpoint, "source_line": number}, f"line {number}")
        except RecordError as exc:
            bad += 1
            if bad <= keep:
                progress(f"ai-calls: quarantined: {public_error(str(exc), foreign=False)}")
                payload = {"source_file": endpoint, "source_line": number,
                           "record": declared_fields(record, fields.values())}
                yield quarantined(settings.SOURCE, endpoint, exc.record_id, exc.field, str(exc), payload)
            continue
        yield row
    if bad > keep:
        message = (f"{bad:,} bad lines in {endpoint}; the first {keep} are quarantined "
                   "($STATEX_BI_QUARANTINE_PER_FILE), the others only counted")
        progress(f"ai-calls: {message}")
        yield quarantined(settings.SOURCE, endpoint, "file", "(lines)", message,
                          {"source_file": endpoint, "bad_lines": bad})


def _json_object(raw: bytes, endpoint: str, number: int) -> dict:
    record_id = f"line {number}"
    try:
        record = json.loads(raw)
    except ValueError as exc:  # also invalid UTF-8
        raise RecordError(settings.SOURCE, endpoint, record_id, "line", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise RecordError(settings.SOURCE, endpoint, record_id, "line", "JSON nested too deeply to read") from None
    if not isinstance(record, dict):
        raise RecordError(settings.SOURCE, endpoint, record_id, "line", "not a JSON object")
    return record


SPEC = SourceSpec(name="ai-calls", build=build, watermark_sql="SELECT max(started_at) FROM raw_ai_calls.calls")
