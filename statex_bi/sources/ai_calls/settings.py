"""Constants of the ai-calls JSONL import: the record keys and the table's columns."""

from __future__ import annotations

from statex_bi.sources.sentry.settings import GEN_AI_ATTRIBUTES, SPAN_COLUMNS

SOURCE = "ai-calls"
TABLE = "calls"

# raw_ai_calls.calls column -> the key in a JSONL record. Top-level span fields keep the names of
# Sentry's span JSON (span_id, trace_id, start_timestamp, op, status); the attributes keep their
# span attribute names, exactly as the app sets them on the gen_ai span.
RECORD_KEYS: dict[str, str] = {
    "span_id": "span_id",
    "trace_id": "trace_id",
    "started_at": "start_timestamp",
    "duration_ms": "duration_ms",
    "op": "op",
    "status": "status",
    **GEN_AI_ATTRIBUTES,
    "prototype_id": "prototype_id",  # $SENTRY_PROTOTYPE_ATTRIBUTE (sentry.helpers.span_fields)
    "ai_tier": "ai_tier",  # $SENTRY_TIER_ATTRIBUTE
    "project": "project",
}
SNIFF_BYTES = 65_536  # how much of a file is looked at before loading, to refuse one that is not JSONL

COLUMNS: dict[str, dict] = {
    **SPAN_COLUMNS,
    "source_file": {"data_type": "text"},
    "source_line": {"data_type": "bigint"},
}
