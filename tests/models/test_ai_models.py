"""The AI models (Sentry spans, JSONL import, OpenAI usage and costs) built from raw tables per docs/raw_tables.md."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from statex_bi import warehouse
from statex_bi.transform import build as project

AI_MODELS = [
    "staging.stg_sentry__gen_ai_spans", "staging.stg_ai_calls__calls", "staging.stg_openai__usage_completions",
    "staging.stg_openai__costs", "core.ai_calls", "marts.ai_prototypes", "marts.openai_billing_daily",
]
SPAN_COLUMNS = """span_id VARCHAR, trace_id VARCHAR, started_at TIMESTAMP, duration_ms DOUBLE, op VARCHAR,
    status VARCHAR, system VARCHAR, request_model VARCHAR, input_tokens BIGINT, cached_input_tokens BIGINT,
    output_tokens BIGINT, prototype_id VARCHAR, ai_tier VARCHAR, project VARCHAR"""
# span, started_at, status, system, tier, prototype, tokens (in, cached, out)
SPANS = [
    ("a1", "2026-04-01 10:00:00", "internal_error", "ollama", "ollama", "A", (900, None, None)),
    ("a2", "2026-04-01 10:00:05", "ok", "openai", "openai", "A", (900, 300, 400)),
    ("a3", "2026-04-02 09:00:00", "ok", "ollama", "ollama", "A", (500, 0, 200)),
    ("b1", "2026-04-02 11:00:00", "deadline_exceeded", "azure.ai.openai", None, "B", (None, None, None)),
]
JSONL = ["a2", "a3"]  # a2 is in both sources; a3 only in the file
# The AI marts with every model upstream, and the tests of them all (not the other reports' models)
AI_MARTS = ("+ai_call_facts", "+ai_prototypes", "+openai_billing_daily", "+azure_ai_billing_daily")


def _load(db, with_jsonl: bool = True, with_openai: bool = True) -> project.BuildResult:
    with warehouse.writer(db) as con:
        _create(con, with_jsonl, with_openai)
    # dbt build also runs every declared test of these models: it raises when one of severity error fails
    return project.build(db, progress=lambda _: None, select=AI_MARTS)


def _create(con, with_jsonl: bool, with_openai: bool) -> None:
    con.execute(f"CREATE SCHEMA raw_sentry; CREATE TABLE raw_sentry.gen_ai_spans ({SPAN_COLUMNS})")
    rows = {span[0]: span for span in SPANS}
    for span, started, status, system, tier, proto, (inp, cached, out) in SPANS:
        if span != "a3":
            con.execute("INSERT INTO raw_sentry.gen_ai_spans VALUES (?, 't', ?, 500, 'gen_ai.chat', ?, ?, 'm', ?, ?, ?,"
                        " ?, ?, 'worker')", [span, started, status, system, inp, cached, out, proto, tier])
    if with_jsonl:
        con.execute(f"CREATE SCHEMA raw_ai_calls; CREATE TABLE raw_ai_calls.calls ({SPAN_COLUMNS}, "
                    "source_file VARCHAR, source_line BIGINT)")
        for n, span in enumerate(JSONL):
            _, started, status, system, tier, proto, (inp, cached, out) = rows[span]
            values = [span, started, status, system, inp, cached, out, proto, tier, n]
            con.execute("INSERT INTO raw_ai_calls.calls VALUES (?, 't', ?, 500, 'gen_ai.chat', ?, ?, 'm', ?, ?, ?, ?,"
                        " ?, 'worker', 'f.jsonl', ?)", values)
    # a column the connector added later: NULL in rows loaded before it, as dlt leaves them
    con.execute("ALTER TABLE raw_sentry.gen_ai_spans ADD COLUMN ai_tier_inferred BOOLEAN")
    if with_jsonl:
        con.execute("ALTER TABLE raw_ai_calls.calls ADD COLUMN ai_tier_inferred BOOLEAN")
    if with_openai:
        con.execute("""CREATE SCHEMA raw_openai;
            CREATE TABLE raw_openai.usage_completions (bucket_start TIMESTAMP, bucket_end TIMESTAMP, model VARCHAR,
                project_id VARCHAR, batch BOOLEAN, service_tier VARCHAR, input_tokens BIGINT,
                input_cached_tokens BIGINT, output_tokens BIGINT, num_model_requests BIGINT);
            CREATE TABLE raw_openai.costs (bucket_start TIMESTAMP, bucket_end TIMESTAMP, line_item VARCHAR,
                project_id VARCHAR, amount DOUBLE, currency VARCHAR);
            INSERT INTO raw_openai.costs VALUES
                ('2026-04-01', '2026-04-02', 'gpt-4o-mini, input', 'p', 0.25, 'usd'),
                ('2026-04-01', '2026-04-02', 'gpt-4o-mini, output', 'p', 0.50, 'usd'),
                ('2026-04-02', '2026-04-03', 'web search tool calls', 'p', 0.01, 'usd');
            INSERT INTO raw_openai.usage_completions VALUES
                ('2026-04-01', '2026-04-02', 'gpt-4o-mini-2024-07-18', 'p', false, 'default', 900, 300, 400, 1),
                ('2026-04-03', '2026-04-04', 'gpt-4o-mini-2024-07-18', 'p', false, 'default', 100, 0, 50, 1);""")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    """Every AI source loaded, built once for the module."""
    db = tmp_path_factory.mktemp("ai_models") / "w.duckdb"
    result = _load(db)
    assert [w.model for w in result.warnings if w.model in AI_MODELS] == []
    with duckdb.connect(str(db), read_only=True) as connection:
        yield connection


def test_calls_are_deduplicated_and_every_declared_test_passes(con):
    built = {row[0] for row in con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()}
    assert set(AI_MODELS) <= built
    rows = con.execute("SELECT span_id, seen_in, tier, input_tokens, cached_input_tokens, uncached_input_tokens "
                       "FROM core.ai_calls ORDER BY span_id").fetchall()
    assert [r[0] for r in rows] == ["a1", "a2", "a3", "b1"]
    assert {r[0]: r[1] for r in rows} == {"a1": "sentry", "a2": "both", "a3": "jsonl", "b1": "sentry"}
    assert rows[3][2] == "azure"  # no ai_tier on the span: derived from gen_ai.system
    flags = dict(con.execute("SELECT span_id, (tier_inferred, usage_reported) FROM core.ai_calls").fetchall())
    assert flags["b1"] == (True, False) and flags["a1"] == (False, True)
    assert rows[1][3:] == (900, 300, 600)
    assert rows[3][3:] == (0, 0, 0)  # a timed-out call reports no usage


def test_core_builds_from_sentry_alone(tmp_path):
    result = _load(tmp_path / "w.duckdb", with_jsonl=False, with_openai=False)
    # The unloaded AI sources build as empty tables; only the loaded one is not listed as empty.
    assert {"ai_calls.calls", "openai.usage_completions", "openai.costs"} <= set(result.empty_sources)
    assert "sentry.gen_ai_spans" not in result.empty_sources
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.ai_calls").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM marts.openai_billing_daily").fetchone()[0] == 0


def test_prototype_mart_names_the_tier_that_served_each_prototype(con):
    rows = con.execute("SELECT prototype_id, calls, successful_calls, final_tier, first_call_at, first_success_at "
                       "FROM marts.ai_prototypes ORDER BY prototype_id").fetchall()
    # A: ollama failed, openai succeeded, then an ollama step succeeded last. B: nothing succeeded.
    assert rows[0][:4] == ("A", 3, 2, "ollama")
    assert rows[0][4:] == (datetime(2026, 4, 1, 10, 0), datetime(2026, 4, 1, 10, 0, 5))
    assert rows[1][:4] == ("B", 1, 0, None)


def test_openai_billing_daily_sums_the_bill_and_usage_per_day(con):
    rows = con.execute("SELECT CAST(day AS VARCHAR), billed_usd, has_cost_bucket, input_tokens, requests "
                       "FROM marts.openai_billing_daily ORDER BY day").fetchall()
    assert rows == [("2026-04-01", pytest.approx(0.75), True, 900, 1), ("2026-04-02", pytest.approx(0.01), True, 0, 0),
                    ("2026-04-03", 0.0, False, 100, 1)]
