"""The simulated AI calls: the 3-tier strategy, realistic spans, and an OpenAI bill that follows from them."""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest
from genai_prices import Usage, calc_price

from statex_bi.demo.ai import call_record, simulate_ai, write_calls_jsonl
from statex_bi.demo.world import PrototypeRequest, WorldConfig

CONFIG = WorldConfig(date(2026, 1, 1), date(2026, 4, 30), seed=11)


def _requests(config: WorldConfig, per_day: int = 6) -> list[PrototypeRequest]:
    requests = []
    for offset, day in enumerate(config.days()):
        for index in range(per_day):
            moment = datetime(day.year, day.month, day.day, 8) + timedelta(minutes=97 * index + offset % 50)
            requests.append(PrototypeRequest(f"proto-{offset:03d}-{index}", moment, "Direct", f"cust_{offset:04d}"))
    return requests


@pytest.fixture(scope="module")
def requests_():
    return _requests(CONFIG)


@pytest.fixture(scope="module")
def ai(requests_):
    return simulate_ai(CONFIG, requests_)


def _by_prototype(calls):
    grouped = defaultdict(list)
    for call in calls:
        grouped[call.prototype_id].append(call)
    return grouped


def test_the_simulation_is_deterministic_per_seed(requests_, ai):
    again = simulate_ai(CONFIG, requests_)
    assert again.calls == ai.calls and again.costs == ai.costs
    other = simulate_ai(WorldConfig(CONFIG.start, CONFIG.end, seed=12), requests_)
    assert [c.span_id for c in other.calls] != [c.span_id for c in ai.calls]


def test_every_prototype_gets_calls_in_one_trace_after_its_request(requests_, ai):
    by_prototype = _by_prototype(ai.calls)
    assert set(by_prototype) == {r.prototype_id for r in requests_}
    requested = {r.prototype_id: r.requested_at for r in requests_}
    for prototype_id, calls in by_prototype.items():
        assert len({c.trace_id for c in calls}) == 1
        assert all(c.started_at > requested[prototype_id] for c in calls)
        steps = [c.step for c in calls]
        assert steps[0] == "spec" and "codegen" in steps or calls[-1].status != "ok"
        assert 2 <= len(dict.fromkeys(steps)) <= 5 or calls[-1].status != "ok"
    assert len({c.span_id for c in ai.calls}) == len(ai.calls)
    assert all(re.fullmatch(r"[0-9a-f]{16}", c.span_id) and re.fullmatch(r"[0-9a-f]{32}", c.trace_id)
               for c in ai.calls)
    assert all(c.op.startswith("gen_ai.") for c in ai.calls)
    assert {s.op for s in ai.other_spans} == {"http.server", "queue.process"}


def test_three_tier_routing_falls_back_and_retries(ai):
    assert {c.ai_tier for c in ai.calls} == {"ollama", "openai", "azure"}
    assert {c.system for c in ai.calls} == {"ollama", "openai", "azure.ai.openai"}
    assert not any(c.ai_tier == "ollama" for c in ai.calls if c.step in ("codegen", "fix"))
    assert {c.request_model for c in ai.calls if c.ai_tier == "azure"} == {"gpt-4o"}
    fallbacks = retries = 0
    for calls in _by_prototype(ai.calls).values():
        for current, following in zip(calls, calls[1:], strict=False):
            if current.status == "ok":
                continue
            assert following.step == current.step, "a failed call is followed by another try of its step"
            assert following.ai_tier != "ollama", "the next try is on the paid tier"
            assert following.started_at >= current.started_at + timedelta(milliseconds=current.duration_ms)
            fallbacks += current.ai_tier == "ollama"
            retries += current.ai_tier != "ollama"
    assert fallbacks > 20 and retries > 5
    statuses = {c.status for c in ai.calls}
    assert statuses == {"ok", "deadline_exceeded", "resource_exhausted", "internal_error"}


def test_token_counts_and_latencies_are_realistic(ai):
    ok = [c for c in ai.calls if c.status == "ok"]
    assert all(1000 <= c.input_tokens <= 20000 and 300 <= c.output_tokens <= 6000 for c in ok)
    assert all(c.input_tokens is None and c.output_tokens is None for c in ai.calls if c.status != "ok")
    paid = [c for c in ok if c.ai_tier != "ollama"]
    assert all(0 <= c.cached_input_tokens <= c.input_tokens and c.cached_input_tokens % 128 == 0 for c in paid)
    assert sum(c.cached_input_tokens > 0 for c in paid) > len(paid) / 4
    ms_per_output_token = {
        tier: statistics.median(c.duration_ms / c.output_tokens for c in ok if c.ai_tier == tier)
        for tier in ("ollama", "openai", "azure")
    }
    assert ms_per_output_token["ollama"] > ms_per_output_token["openai"]
    timed_out = [c for c in ai.calls if c.status == "deadline_exceeded" and c.ai_tier == "ollama"]
    assert timed_out and all(c.duration_ms >= 120_000 for c in timed_out)


def test_openai_usage_is_what_openai_billed_which_spans_partly_miss(ai):
    expected = defaultdict(lambda: [0, 0, 0, 0])
    for call in ai.calls:
        # OpenAI bills calls it processed: completed ones and client timeouts, not 429s or 500s.
        if call.ai_tier == "openai" and call.status in ("ok", "deadline_exceeded"):
            row = expected[(call.started_at.date(), call.request_model)]
            row[0] += call.billed_input_tokens
            row[1] += call.billed_cached_input_tokens
            row[2] += call.billed_output_tokens
            row[3] += 1
    got = {(b.day, b.model.rsplit("-", 3)[0]): [b.input_tokens, b.input_cached_tokens, b.output_tokens,
                                               b.num_model_requests] for b in ai.usage}
    assert got == dict(expected)
    assert all(re.fullmatch(r".+-\d{4}-\d{2}-\d{2}", b.model) for b in ai.usage), "usage reports snapshots"
    span_input = sum(c.input_tokens for c in ai.calls if c.ai_tier == "openai" and c.status == "ok")
    assert sum(b.input_tokens for b in ai.usage) > span_input, "timed-out calls are billed but carry no tokens"


def test_costs_are_list_price_within_three_percent_plus_a_small_line_item(ai):
    by_day_model = defaultdict(float)
    extra = 0.0
    for line in ai.costs:
        if line.line_item.endswith((", input", ", output")):
            by_day_model[(line.day, line.line_item.rsplit(", ", 1)[0])] += line.amount_usd
        else:
            extra += line.amount_usd
    listed = 0.0
    for bucket in ai.usage:
        price = calc_price(Usage(input_tokens=bucket.input_tokens, cache_read_tokens=bucket.input_cached_tokens,
                                 output_tokens=bucket.output_tokens), model_ref=bucket.model, provider_id="openai",
                           genai_request_timestamp=datetime(bucket.day.year, bucket.day.month, bucket.day.day, 12))
        billed = by_day_model.pop((bucket.day, bucket.model))
        assert billed == pytest.approx(float(price.total_price), rel=0.0301)
        listed += float(price.total_price)
    assert not by_day_model
    total = sum(line.amount_usd for line in ai.costs)
    assert total != pytest.approx(listed, rel=1e-4), "the bill differs from list price"
    assert 0 < extra < 0.03 * total
    assert {line.line_item for line in ai.costs if ", " not in line.line_item} == {"web search tool calls"}


def test_calls_are_logged_as_jsonl_with_span_attribute_names(ai, tmp_path):
    path = write_calls_jsonl(ai.calls[:50], tmp_path / "calls.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 50
    first = json.loads(lines[0])
    assert first == call_record(ai.calls[0])
    assert first["span_id"] == ai.calls[0].span_id
    assert first["gen_ai.usage.input_tokens"] == ai.calls[0].input_tokens
    failed = next(c for c in ai.calls if c.status != "ok")
    assert "gen_ai.usage.input_tokens" not in call_record(failed)
