"""The JSONL import of AI calls: good lines load with their file and line, bad lines go to quarantine."""

from __future__ import annotations

import json
from datetime import UTC, date

import duckdb
import pytest

from statex_bi.demo.ai import call_record, simulate_ai
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import ConfigError
from statex_bi.ingest import load_source
from statex_bi.sources import ai_calls
from statex_bi.sources.contract import IngestRequest

COLUMNS = ("span_id, trace_id, started_at, duration_ms, op, status, system, request_model, input_tokens, "
           "cached_input_tokens, output_tokens, prototype_id, ai_tier, project, source_file, source_line")


@pytest.fixture(scope="module")
def calls():
    config = WorldConfig(date(2026, 3, 2), date(2026, 3, 8), seed=5)
    return simulate_ai(config, World(config).growth.prototype_requests).calls[:60]


def _row(call, path, line):
    return (call.span_id, call.trace_id, call.started_at, call.duration_ms, call.op, call.status, call.system,
            call.request_model, call.input_tokens, call.cached_input_tokens, call.output_tokens, call.prototype_id,
            call.ai_tier, call.project, str(path), line)


def _load(db, path):
    return load_source(ai_calls.SPEC, IngestRequest(file=path, progress=lambda message: None), db)


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_good_lines_load_and_bad_lines_are_quarantined_with_file_and_line(calls, tmp_path, db_file):
    path = tmp_path / "calls.jsonl"
    lines, expected = [], []
    bad = {}  # line number -> (field, words the error must contain)
    for index, call in enumerate(calls):
        record = call_record(call)
        if index == 1:  # epoch seconds are a timestamp too
            record["start_timestamp"] = call.started_at.replace(tzinfo=UTC).timestamp()
        if index == 2:  # naive ISO means UTC
            record["start_timestamp"] = call.started_at.isoformat()
        if index == 5:
            lines.append('{"span_id": "abc", "op": "gen_ai.chat"')
            bad[len(lines)] = ("line", "invalid JSON")
        if index == 9:
            lines.append("")  # blank lines are skipped, but still counted
        if index == 12:
            lines.append(json.dumps({k: v for k, v in record.items() if k != "span_id"}))
            bad[len(lines)] = ("span_id", "missing span id")
            continue
        if index == 20 and "gen_ai.usage.input_tokens" in record:
            lines.append(json.dumps({**record, "gen_ai.usage.output_tokens": "12k"}))
            bad[len(lines)] = ("gen_ai.usage.output_tokens", "'12k'")
            continue
        if index == 30:
            lines.append(json.dumps({**record, "start_timestamp": "yesterday"}))
            bad[len(lines)] = ("start_timestamp", "'yesterday'")
            continue
        if index == 40:
            lines.append(json.dumps([record]))
            bad[len(lines)] = ("line", "not a JSON object")
            continue
        lines.append(json.dumps(record))
        expected.append(_row(call, path, len(lines)))
    path.write_text("\n".join(lines) + "\n")
    assert len(bad) == 5

    result = _load(db_file, path)
    assert result.status == "succeeded", result.error
    assert _rows(db_file, f"SELECT {COLUMNS} FROM raw_ai_calls.calls ORDER BY source_line") == expected
    quarantine = _rows(db_file, "SELECT source, endpoint, record_id, field, error, payload "
                                "FROM raw_ai_calls.quarantine")
    assert sorted(int(q[2].removeprefix("line ")) for q in quarantine) == sorted(bad)
    for source, endpoint, record_id, field, error, payload in quarantine:
        number = int(record_id.removeprefix("line "))
        assert (source, endpoint, field) == ("ai-calls", str(path), bad[number][0])
        assert str(path) in error and f"line {number}" in error and bad[number][1] in error
        assert json.loads(payload)["source_line"] == number
        kept = json.loads(payload)["record"]
        try:
            written = json.loads(lines[number - 1])
        except ValueError:
            written = None
        assert kept == (written if isinstance(written, dict) else {}), "the record's declared fields, as written"

    # Re-importing the file replaces rows and quarantine entries instead of adding them.
    assert _load(db_file, path).status == "succeeded"
    assert _rows(db_file, "SELECT count(*) FROM raw_ai_calls.calls") == [(len(expected),)]
    assert _rows(db_file, "SELECT count(*) FROM raw_ai_calls.quarantine") == [(len(bad),)]


def test_a_file_is_required(tmp_path):
    with pytest.raises(ConfigError, match="--file"):
        ai_calls.SPEC.build(IngestRequest())
    with pytest.raises(ConfigError, match="not a file"):
        ai_calls.SPEC.build(IngestRequest(file=tmp_path / "missing.jsonl"))


@pytest.mark.parametrize(("content", "reason"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40, "binary data"),
    (b"span_id,start_timestamp\nabc,2026-03-02\n" * 500, "first line is not a JSON object"),
    # Windows tools export UTF-16: say so, rather than "binary data" (with a byte-order mark, and without)
    (b"\xff\xfe{\x00\"\x00" * 100, "it is UTF-16 text, not UTF-8"),
    ('{"span_id": "a1"}\n'.encode("utf-16-be") * 50, "it is UTF-16 text, not UTF-8"),
])
def test_a_file_that_is_not_jsonl_is_refused_at_once_with_one_message(tmp_path, db_file, content, reason):
    """Before: every line of it became a quarantine row."""
    path = tmp_path / "export.bin"
    path.write_bytes(content)
    result = _load(db_file, path)
    assert result.status == "failed"
    assert reason in result.error and "is not a JSONL log of AI calls" in result.error
    assert _rows(db_file, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw_ai_calls' "
                          "AND table_name = 'quarantine'") == [(0,)]


def test_lines_are_read_one_at_a_time(calls):
    """The reader takes a line, yields its row, then takes the next: memory does not grow with the file."""
    consumed = []

    def lines():
        for number, call in enumerate(calls, start=1):
            consumed.append(number)
            yield (json.dumps(call_record(call)) + "\n").encode()

    fields = ai_calls.span_fields(ai_calls.settings.RECORD_KEYS)
    reader = ai_calls._read(lines(), "calls.jsonl", fields, lambda message: None)
    first = next(reader)
    assert first["span_id"] == calls[0].span_id and consumed == [1]
    next(reader)
    assert consumed == [1, 2]


def test_tier_attribute_names_are_settings_and_a_missing_tier_is_inferred(calls, tmp_path, db_file, monkeypatch):
    monkeypatch.setenv("SENTRY_PROTOTYPE_ATTRIBUTE", "app.prototype")
    monkeypatch.setenv("SENTRY_TIER_ATTRIBUTE", "app.tier")
    systems = {"ollama": "ollama", "openai": "openai", "azure": "azure.ai.openai"}
    path = tmp_path / "calls.jsonl"
    lines = []
    for index, call in enumerate(calls[:12]):
        record = {k: v for k, v in call_record(call).items() if k not in ("prototype_id", "ai_tier")}
        record["app.prototype"] = call.prototype_id
        if index % 3:
            record["app.tier"] = call.ai_tier
        record["gen_ai.system"] = "az.ai.openai" if index == 3 and call.ai_tier == "azure" else systems[call.ai_tier]
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + "\n")
    assert _load(db_file, path).status == "succeeded"
    loaded = dict(((s, (p, t, i)) for s, p, t, i in _rows(
        db_file, "SELECT span_id, prototype_id, ai_tier, ai_tier_inferred FROM raw_ai_calls.calls")))
    assert loaded == {call.span_id: (call.prototype_id, call.ai_tier, index % 3 == 0)
                      for index, call in enumerate(calls[:12])}


def test_a_start_far_in_the_future_and_a_conflicting_repeat_are_quarantined(calls, tmp_path, db_file):
    path = tmp_path / "calls.jsonl"
    records = [call_record(call) for call in calls[:5]]
    records[1]["start_timestamp"] = "2100-01-01T00:00:00Z"
    records.append({**records[2], "duration_ms": 1.0})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = _load(db_file, path)
    assert (result.status, result.rows, result.quarantined) == ("succeeded", 4, 2)
    assert _rows(db_file, "SELECT record_id, field FROM raw_ai_calls.quarantine ORDER BY record_id") == [
        ("line 2", "started_at"), ("line 6", "span_id")]
    assert _rows(db_file, "SELECT rows_loaded, rows_quarantined FROM ops.source_loads") == [(4, 2)]


def test_quarantine_keeps_a_records_declared_fields_never_the_line_or_personal_data(calls, tmp_path, db_file):
    """Before: the raw line was the payload, with the user's name, address and free-text numbers."""
    personal = {"first_name": "Alice", "last_name": "Liddell", "username": "aliddell", "ip_address": "203.0.113.9",
                "user_note": "call +44 20 7946 0958, card 4111 1111 1111 1111"}
    record = {**call_record(calls[0]), **personal, "gen_ai.usage.output_tokens": "twelve"}
    path = tmp_path / "calls.jsonl"
    broken = '{"span_id": "x", "first_name": "Alice", "note": "4111 1111 1111 1111"'
    path.write_text(json.dumps(record) + "\n" + broken + "\n" + json.dumps(call_record(calls[1])) + "\n")
    result = _load(db_file, path)
    assert (result.status, result.rows, result.quarantined) == ("succeeded", 1, 2)
    stored = _rows(db_file, "SELECT record_id, field, error, payload FROM raw_ai_calls.quarantine ORDER BY record_id")
    assert [(record_id, field) for record_id, field, _, _ in stored] == [
        ("line 1", "gen_ai.usage.output_tokens"), ("line 2", "line")]
    text = json.dumps(stored)
    for value in ("Alice", "Liddell", "aliddell", "203.0.113.9", "7946", "4111", "first_name", "ip_address"):
        assert value not in text
    kept = json.loads(stored[0][3])["record"]
    assert kept["gen_ai.usage.output_tokens"] == "twelve" and kept["span_id"] == calls[0].span_id


def test_a_huge_line_is_quarantined_unread_and_bad_lines_past_the_limit_are_only_counted(
        calls, tmp_path, db_file, monkeypatch):
    """Before: a line was read whole whatever its size, and every bad line kept and printed."""
    monkeypatch.setenv("STATEX_BI_QUARANTINE_PER_FILE", "5")
    huge = json.dumps({**call_record(calls[0]), "op": "x" * 3_000_000})
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join([json.dumps(call_record(calls[1])), huge, *["{broken"] * 40,
                               json.dumps(call_record(calls[2]))]) + "\n")
    printed = []
    result = load_source(ai_calls.SPEC, IngestRequest(file=path, progress=printed.append), db_file)
    assert (result.status, result.rows, result.quarantined) == ("succeeded", 2, 6)
    assert len(printed) < 15
    kept = dict(_rows(db_file, "SELECT record_id, error FROM raw_ai_calls.quarantine"))
    assert sorted(kept) == ["file", "line 2", "line 3", "line 4", "line 5", "line 6"]
    assert "a line of 3,0" in kept["line 2"] and "it was not read" in kept["line 2"]
    assert "41 bad lines" in kept["file"] and "the first 5 are quarantined" in kept["file"]


def test_a_file_past_the_size_cap_is_refused_before_anything_loads(calls, tmp_path, db_file, monkeypatch):
    monkeypatch.setenv("STATEX_BI_MAX_FILE_MB", "1")
    path = tmp_path / "calls.jsonl"
    path.write_text("".join(json.dumps(call_record(call)) + "\n" for call in calls) * 50)
    assert path.stat().st_size > 1_000_000
    result = _load(db_file, path)
    assert result.status == "failed" and "$STATEX_BI_MAX_FILE_MB" in result.error and "\n" not in result.error
    assert _rows(db_file, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw_ai_calls'") == [
        (0,)]
