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
    statex.prototype_id               the prototype the call worked for
    statex.ai_tier                    ollama | openai | azure

Missing optional keys load as NULL; other keys are ignored. Rows merge on span_id (re-importing a
file, or a later file repeating a call, replaces it) and keep `source_file` (the resolved path) and
`source_line`. A line that is not valid JSON, not an object, has no span_id, a token count that is not
a whole number or a start that is not a timestamp goes to raw_ai_calls.quarantine with the file and
line number in its error (endpoint = the file, record = `line N`, payload = the line); the other
lines load.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import dlt

from statex_bi.exceptions import ConfigError, RecordError
from statex_bi.ingest import IngestRequest, SourceSpec
from statex_bi.sources.ai_calls import settings
from statex_bi.sources.common import quarantined
from statex_bi.sources.sentry.helpers import parse_span


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

    def calls() -> Iterator[dict]:
        yield from _read(path, request.progress)
        request.progress(f"ai-calls: read {path}")

    return dlt.resource(calls, name=settings.TABLE, write_disposition="merge", primary_key="span_id",
                        columns=settings.COLUMNS)


def _read(path: Path, progress: Callable[[str], None]) -> Iterator[dict]:
    """A row for each good line, a quarantined record for each bad one."""
    endpoint = str(path)
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                row = _parse_line(raw, endpoint, number)
            except RecordError as exc:
                progress(f"ai-calls: quarantined: {exc}")
                payload = {"source_file": endpoint, "source_line": number, "line": raw.decode("utf-8", "replace")}
                yield quarantined(settings.SOURCE, endpoint, exc.record_id, exc.field, str(exc), payload)
                continue
            yield row


def _parse_line(raw: bytes, endpoint: str, number: int) -> dict:
    record_id = f"line {number}"
    try:
        record = json.loads(raw)
    except ValueError as exc:  # also invalid UTF-8
        raise RecordError(settings.SOURCE, endpoint, record_id, "line", f"invalid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise RecordError(settings.SOURCE, endpoint, record_id, "line", "not a JSON object")
    row = parse_span(record, settings.RECORD_KEYS, settings.SOURCE, endpoint, record_id)
    return {**row, "source_file": endpoint, "source_line": number}


SPEC = SourceSpec(name="ai-calls", build=build, watermark_sql="SELECT max(started_at) FROM raw_ai_calls.calls")
