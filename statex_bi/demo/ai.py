"""The simulated AI work behind each prototype, and the OpenAI bill it causes.

Every prototype request runs a short pipeline of generation steps (spec, code generation, then
optional review / tests / fix steps: 2-6 steps). Each step is routed by the 3-tier strategy:

    simple steps   Ollama first (free, local, slow); on an Ollama failure or timeout the step falls
                   back to the paid tier
    complex steps  the paid tier directly
    paid tier      OpenAI, or Azure OpenAI (EU Data Zone deployment of gpt-4o) for the prototypes
                   whose customer needs EU data residency; failed paid calls are retried

Every model call is one Sentry span (op `gen_ai.*`) in the prototype's trace. The trace also holds a
`http.server` span (the request that queued the job) and a `queue.process` span (the worker job), so
that the `span.op:gen_ai.*` filter of the connector matters.

What the spans show and what the provider bills differ, as they do for real:
- a call that timed out on the client (`deadline_exceeded`) has no token counts on its span (the
  client never received the usage), but OpenAI processed it and bills its input and the output it
  generated before the client hung up;
- a rate-limited (`resource_exhausted`) or failed (`internal_error`) call is not billed;
- the daily costs are list prices (genai-prices, at the bucket's date) of the billed tokens, off by a
  per-day billing adjustment of at most +/-3 %, plus a small `web search tool calls` line item on
  some days that no span records.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cached_property
from pathlib import Path

import numpy as np

from statex_bi.demo.entities import PrototypeRequest, WorldConfig
from statex_bi.demo.growth import PrototypeRequests
from statex_bi.demo.openai_bill import CostLine, UsageBucket, costs_of

API_PROJECT = "statex-api"  # Sentry project of the Fastify app
WORKER_PROJECT = "statex-worker"  # Sentry project of the generation worker, where the AI calls happen

# The span attributes in which the app records the prototype and the tier of a call: the connectors'
# defaults ($SENTRY_PROTOTYPE_ATTRIBUTE, $SENTRY_TIER_ATTRIBUTE). The `spec` step's model client predates
# the tier attribute and leaves it out: the connectors infer those tiers from gen_ai.system.
PROTOTYPE_ATTRIBUTE = "prototype_id"
TIER_ATTRIBUTE = "ai_tier"
UNTIERED_STEPS = frozenset({"spec"})

# gen_ai.system values: OpenTelemetry GenAI semantic conventions ("openai"; "azure.ai.openai", which
# replaced the older "az.ai.openai"); Ollama has no registered value, the provider's own name is used.
SYSTEMS = {"ollama": "ollama", "openai": "openai", "azure": "azure.ai.openai"}

# Model snapshots the providers report for the aliases the app requests (usage is billed per snapshot).
SNAPSHOTS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
}

OLLAMA_TIMEOUT_S = 120.0  # the worker gives the local model two minutes
PAID_TIMEOUT_S = 180.0  # long code generations stream for minutes
PAID_ATTEMPTS = 3  # first call plus two retries
EU_RESIDENCY_SHARE = 0.3  # prototypes whose data must stay in the EU: paid tier = Azure EU Data Zone

# Failure rates per call of a paid tier: status -> probability.
PAID_FAILURES = {
    "openai": {"resource_exhausted": 0.025, "deadline_exceeded": 0.01, "internal_error": 0.007},
    "azure": {"resource_exhausted": 0.03, "deadline_exceeded": 0.01, "internal_error": 0.005},
}
OLLAMA_CRASH_RATE = 0.03  # model load failures, out of memory: `internal_error`
OUTPUT_TOKENS_PER_S = {"gpt-4o-mini": (70, 110), "gpt-4.1-mini": (60, 100), "gpt-4o": (40, 80)}


@dataclass(frozen=True)
class Step:
    name: str
    simple: bool  # simple steps try Ollama first
    input_median: int
    output_median: int
    ollama_model: str | None = None


SPEC = Step("spec", True, 2500, 900, "llama3.1:8b")
CODEGEN = Step("codegen", False, 9000, 3200)
REVIEW = Step("review", True, 7000, 700, "qwen2.5-coder:7b")
TESTS = Step("tests", True, 5000, 1500, "qwen2.5-coder:7b")
FIX = Step("fix", False, 11000, 1800)


@dataclass(frozen=True)
class AiCall:
    """One model call: one `gen_ai.*` span. Token fields are what the span carries (None when the
    client never received usage); `billed_*` are what the provider charges for (0 for Ollama)."""

    span_id: str  # 16 hex
    trace_id: str  # 32 hex, one trace per prototype
    parent_span_id: str
    started_at: datetime  # UTC, naive, millisecond precision
    duration_ms: float
    op: str
    status: str  # ok | deadline_exceeded | resource_exhausted | internal_error
    system: str  # gen_ai.system
    request_model: str
    response_model: str | None
    input_tokens: int | None  # includes the cached ones, as OpenAI counts them
    cached_input_tokens: int | None
    output_tokens: int | None
    prototype_id: str
    ai_tier: str  # ollama | openai | azure
    project: str
    step: str
    billed_input_tokens: int = 0
    billed_cached_input_tokens: int = 0
    billed_output_tokens: int = 0

    @property
    def billed(self) -> bool:
        return self.billed_input_tokens > 0

    @property
    def tier_attribute(self) -> str | None:
        """The tier the span carries (None: the step's client does not set it)."""
        return None if self.step in UNTIERED_STEPS else self.ai_tier


@dataclass(frozen=True)
class OtherSpan:
    """A non-AI span of the same traces (the HTTP request and the worker job)."""

    span_id: str
    trace_id: str
    started_at: datetime
    duration_ms: float
    op: str
    status: str
    project: str
    description: str


class AiData:
    """The AI side of the simulated company, generated day by day on demand.

    The prototypes requested on one day run on a generator of their own (`config.rng("ai/<day>")`), so any
    day regenerates alone, equal to that day within the whole period, and a sandbox answering for a window
    generates that window's days only (`spans_on`). One pass over the days totals the billed tokens by day,
    tier and model (`billed`), behind OpenAI's usage and costs (a few rows a day). `calls` and `other_spans`
    concatenate every day: for tests of small worlds.
    """

    def __init__(self, config: WorldConfig, prototype_requests: Sequence[PrototypeRequest]) -> None:
        self.config = config
        self.spike = cost_spike_day(config)
        self._request_days, self._requests_on = _by_day(prototype_requests)
        self._recent: dict[date, tuple[list[AiCall], list[OtherSpan]]] = {}
        self._billed: dict[tuple[str, date, str], list[int]] | None = None

    def days(self) -> list[date]:
        """The days on which spans start: a prototype's pipeline may run past midnight."""
        if not self._request_days:
            return []
        first, last = self._request_days[0], self._request_days[-1]
        return [first + timedelta(days=i) for i in range((last - first).days + 2)]

    def generated(self, day: date) -> tuple[list[AiCall], list[OtherSpan]]:
        """The calls and other spans of the prototypes requested on `day` (and, on the cost spike's day, of the
        re-queued ones), in generation order. The last three days asked are kept."""
        generated = self._recent.get(day)  # one read: the server's threads may ask at once
        if generated is None:
            generated = self._generate(day)
            self._recent = {**dict(list(self._recent.items())[-2:]), day: generated}
        return generated

    def _generate(self, day: date) -> tuple[list[AiCall], list[OtherSpan]]:
        rng = self.config.rng(f"ai/{day.isoformat()}")
        calls: list[AiCall] = []
        others: list[OtherSpan] = []
        for request in self._requests_on(day):
            _prototype(rng, request, calls, others, all_gpt_4o=day == self.spike)
        if day == self.spike:
            # The incident also re-queues the last REQUEUED_PROTOTYPES earlier prototypes, every 10 minutes
            # from 02:00; drawn after the day's own, so nothing else changes.
            # The re-run jobs continue the prototypes' original traces (no new HTTP request).
            earlier = self._earlier_requests(day)
            traces = self._traces({r.requested_at.date() for r in earlier})
            night = datetime.combine(day, datetime.min.time()) + timedelta(hours=2)
            for i, request in enumerate(earlier):
                requeued = replace(request, requested_at=night + timedelta(minutes=10 * i))
                _prototype(rng, requeued, calls, others, all_gpt_4o=True, trace=traces.get(request.prototype_id))
        return calls, others

    def _earlier_requests(self, day: date) -> list[PrototypeRequest]:
        earlier: list[PrototypeRequest] = []
        for requested in reversed([d for d in self._request_days if d < day]):
            earlier = self._requests_on(requested) + earlier
            if len(earlier) >= REQUEUED_PROTOTYPES:
                break
        return earlier[-REQUEUED_PROTOTYPES:]

    def _traces(self, days: set[date]) -> dict[str, str]:
        traces: dict[str, str] = {}
        for day in sorted(days):
            for call in reversed(self._generate(day)[0]):
                traces[call.prototype_id] = call.trace_id
        return traces

    def spans_on(self, day: date) -> tuple[list[AiCall], list[OtherSpan]]:
        """The calls and other spans starting on `day` (UTC), by start."""
        both = [self.generated(day - timedelta(days=1)), self.generated(day)]
        calls = [c for generated, _ in both for c in generated if c.started_at.date() == day]
        others = [s for _, generated in both for s in generated if s.started_at.date() == day]
        calls.sort(key=lambda c: (c.started_at, c.span_id))
        others.sort(key=lambda s: (s.started_at, s.span_id))
        return calls, others

    @property
    def calls(self) -> list[AiCall]:
        return [call for day in self.days() for call in self.spans_on(day)[0]]

    @property
    def other_spans(self) -> list[OtherSpan]:
        return [span for day in self.days() for span in self.spans_on(day)[1]]

    def billed(self) -> dict[tuple[str, date, str], list[int]]:
        """(tier, UTC day, model snapshot) -> [billed input tokens (cached included), cached, output, calls],
        from one pass over the days."""
        if self._billed is None:
            totals: dict[tuple[str, date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
            for day in self.days():
                for call in self.generated(day)[0]:
                    if call.billed:
                        row = totals[(call.ai_tier, call.started_at.date(), SNAPSHOTS[call.request_model])]
                        row[0] += call.billed_input_tokens
                        row[1] += call.billed_cached_input_tokens
                        row[2] += call.billed_output_tokens
                        row[3] += 1
            self._billed = dict(totals)
        return self._billed

    @cached_property
    def usage(self) -> list[UsageBucket]:
        """OpenAI completions usage by day and model snapshot (billed calls only)."""
        return [UsageBucket(day, model, *values) for (tier, day, model), values in sorted(self.billed().items())
                if tier == "openai"]

    @cached_property
    def costs(self) -> list[CostLine]:
        """OpenAI costs by day and line item."""
        return costs_of(self.config, self.usage)


def _by_day(requests: Sequence[PrototypeRequest]) -> tuple[list[date], Callable[[date], list[PrototypeRequest]]]:
    """The days with requests, in order, and the requests of a day: from the world's columns, or grouped from a
    list (tests)."""
    if isinstance(requests, PrototypeRequests):
        return requests.days(), requests.on
    grouped: dict[date, list[PrototypeRequest]] = defaultdict(list)
    for request in requests:
        grouped[request.requested_at.date()].append(request)
    return sorted(grouped), lambda day: grouped.get(day, [])


def simulate_ai(config: WorldConfig, prototype_requests: Sequence[PrototypeRequest]) -> AiData:
    """The AI calls of every prototype request and OpenAI's usage and costs for them, generated on demand.

    Args:
        config: the world; randomness comes from `config.rng("ai/<day>")` and `config.rng("ai/costs/<day>")`.
        prototype_requests: the requests to serve, in request order.

    Returns:
        The calls (spans), the other spans of their traces, and OpenAI's daily usage and costs.
    """
    return AiData(config, prototype_requests)


# Planted incident (alerts demo): on one day a deploy points every paid step at gpt-4o, which costs
# 6-16x the models it replaces, and re-queues earlier prototypes; the `ai_cost_spike` anomaly rule of
# params/alerts.yaml should catch it. The day is config.end - 6, which lies in the last full week
# before the day after config.end (the weekly review's period when the demo ends yesterday). No
# extra random draws before the re-queued ones: every other call is unchanged.
COST_SPIKE_DAYS_BEFORE_END = 6
REQUEUED_PROTOTYPES = 40


def cost_spike_day(config: WorldConfig) -> date | None:
    """The day of the planted AI cost spike, or None when the simulation is too short to hold it."""
    day = config.end - timedelta(days=COST_SPIKE_DAYS_BEFORE_END)
    return day if day - timedelta(days=28) >= config.start else None


def _hex(rng: np.random.Generator, digits: int) -> str:
    return rng.bytes(digits // 2).hex()


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _prototype(rng: np.random.Generator, request: PrototypeRequest, calls: list[AiCall], others: list[OtherSpan],
               all_gpt_4o: bool = False, trace: str | None = None):
    trace_id = _hex(rng, 32)
    trace_id = trace or trace_id  # drawn either way: a re-queued job continues its trace
    http_span = OtherSpan(_hex(rng, 16), trace_id, _ms(request.requested_at), round(float(rng.uniform(40, 300)), 3),
                          "http.server", "ok", API_PROJECT, "POST /api/prototypes")
    job_id = _hex(rng, 16)
    job_start = _ms(request.requested_at + timedelta(seconds=float(rng.uniform(1, 30))))
    eu = bool(rng.random() < EU_RESIDENCY_SHARE)
    steps = [SPEC, CODEGEN]
    if rng.random() < 0.9:
        steps.append(REVIEW)
    if rng.random() < 0.5:
        steps.append(TESTS)
    steps.extend([FIX] * min(int(rng.poisson(0.6)), 6 - len(steps)))

    clock = job_start
    used_providers: set[str] = set()
    prototype_calls: list[AiCall] = []
    for step in steps:
        input_tokens = int(np.clip(rng.lognormal(np.log(step.input_median), 0.45), 1000, 20000))
        output_tokens = int(np.clip(rng.lognormal(np.log(step.output_median), 0.5), 300, 6000))
        context = _Context(rng, request.prototype_id, trace_id, job_id, step, input_tokens, output_tokens)
        done = False
        if step.simple:
            call = context.ollama(clock)
            prototype_calls.append(call)
            clock = _after(rng, call, 0.2, 1.0)
            done = call.status == "ok"
        if not done:
            tier = "azure" if eu else "openai"
            model = "gpt-4o" if all_gpt_4o else _paid_model(step, input_tokens, eu)
            for attempt in range(PAID_ATTEMPTS):
                repeat = attempt > 0 or tier in used_providers
                call = context.paid(clock, tier, model, repeat, retry=attempt > 0)
                prototype_calls.append(call)
                used_providers.add(tier)
                clock = _after(rng, call, 1.0 * (attempt + 1), 4.0 * (attempt + 1))
                if call.status == "ok":
                    done = True
                    break
        if not done:
            break  # the job gives up; the prototype fails
    job_end = clock
    job_status = "ok" if done else "internal_error"
    job_span = OtherSpan(job_id, trace_id, job_start, round((job_end - job_start).total_seconds() * 1000, 3),
                         "queue.process", job_status, WORKER_PROJECT, "generate-prototype")
    calls.extend(prototype_calls)
    others.extend([job_span] if trace else [http_span, job_span])


def _after(rng: np.random.Generator, call: AiCall, low: float, high: float) -> datetime:
    return _ms(call.started_at + timedelta(milliseconds=call.duration_ms, seconds=float(rng.uniform(low, high))))


def _paid_model(step: Step, input_tokens: int, eu: bool) -> str:
    if eu:
        return "gpt-4o"  # the one EU Data Zone deployment
    if step.simple:
        return "gpt-4o-mini"
    return "gpt-4o" if input_tokens > 15000 else "gpt-4.1-mini"


@dataclass
class _Context:
    rng: np.random.Generator
    prototype_id: str
    trace_id: str
    parent_span_id: str
    step: Step
    input_tokens: int
    output_tokens: int

    def _call(self, **values) -> AiCall:
        return AiCall(span_id=_hex(self.rng, 16), trace_id=self.trace_id, parent_span_id=self.parent_span_id,
                      prototype_id=self.prototype_id, project=WORKER_PROJECT, step=self.step.name, **values)

    def ollama(self, start: datetime) -> AiCall:
        rng = self.rng
        load = float(rng.uniform(5, 15)) if rng.random() < 0.1 else float(rng.uniform(0, 1.5))
        seconds = load + self.input_tokens / rng.uniform(400, 900) + self.output_tokens / rng.uniform(15, 35)
        status = "ok"
        if rng.random() < OLLAMA_CRASH_RATE:
            status, seconds = "internal_error", load + float(rng.uniform(0.05, 2))
        elif seconds > OLLAMA_TIMEOUT_S:
            status, seconds = "deadline_exceeded", OLLAMA_TIMEOUT_S + float(rng.uniform(0, 0.05))
        ok = status == "ok"
        return self._call(
            started_at=start, duration_ms=round(seconds * 1000, 3), op="gen_ai.generate_text", status=status,
            system=SYSTEMS["ollama"], request_model=self.step.ollama_model,
            response_model=self.step.ollama_model if ok else None,
            input_tokens=self.input_tokens if ok else None, cached_input_tokens=None,
            output_tokens=self.output_tokens if ok else None, ai_tier="ollama",
        )

    def paid(self, start: datetime, tier: str, model: str, repeat: bool, retry: bool) -> AiCall:
        rng = self.rng
        draw = rng.random()
        status = "ok"
        for failure, rate in PAID_FAILURES[tier].items():
            if draw < rate:
                status = failure
                break
            draw -= rate
        # OpenAI and Azure cache prompt prefixes of 1024+ tokens in steps of 128: a retry repeats the
        # whole prompt, a later step of the same prototype repeats the system prompt and the spec.
        share = rng.uniform(0.8, 0.95) if retry else (rng.uniform(0.3, 0.7) if repeat else 0.0)
        cached = int(self.input_tokens * share) // 128 * 128 if self.input_tokens >= 1024 else 0
        low, high = OUTPUT_TOKENS_PER_S[model]
        slower = 0.85 if tier == "azure" else 1.0
        seconds = float(rng.uniform(0.3, 1.2)) + self.input_tokens / 5000 + self.output_tokens / (
            rng.uniform(low, high) * slower)
        if status == "ok" and seconds > PAID_TIMEOUT_S:
            status = "deadline_exceeded"
        billed_in = billed_cached = billed_out = 0
        if status == "ok":
            billed_in, billed_cached, billed_out = self.input_tokens, cached, self.output_tokens
        elif status == "deadline_exceeded":
            generated = int(self.output_tokens * rng.uniform(0.5, 1.0))
            billed_in, billed_cached, billed_out = self.input_tokens, cached, generated
            seconds = PAID_TIMEOUT_S + float(rng.uniform(0, 0.05))
        else:
            seconds = float(rng.uniform(0.05, 0.4))
        ok = status == "ok"
        return self._call(
            started_at=start, duration_ms=round(seconds * 1000, 3), op="gen_ai.chat", status=status,
            system=SYSTEMS[tier], request_model=model, response_model=SNAPSHOTS[model] if ok else None,
            input_tokens=self.input_tokens if ok else None, cached_input_tokens=cached if ok else None,
            output_tokens=self.output_tokens if ok else None, ai_tier=tier,
            billed_input_tokens=billed_in, billed_cached_input_tokens=billed_cached, billed_output_tokens=billed_out,
        )


def call_record(call: AiCall) -> dict:
    """One call as the app logs it to JSONL (the `ingest ai-calls` format; see sources/ai_calls).

    Attributes the call does not carry (tokens of a failed call) are left out, as the SDK leaves
    unset span attributes out.
    """
    record = {
        "span_id": call.span_id,
        "trace_id": call.trace_id,
        "start_timestamp": call.started_at.isoformat(timespec="milliseconds") + "Z",
        "duration_ms": call.duration_ms,
        "op": call.op,
        "status": call.status,
        "project": call.project,
        "gen_ai.system": call.system,
        "gen_ai.request.model": call.request_model,
        "gen_ai.usage.input_tokens": call.input_tokens,
        "gen_ai.usage.input_tokens.cached": call.cached_input_tokens,
        "gen_ai.usage.output_tokens": call.output_tokens,
        PROTOTYPE_ATTRIBUTE: call.prototype_id,
        TIER_ATTRIBUTE: call.tier_attribute,
    }
    return {key: value for key, value in record.items() if value is not None}


def write_calls_jsonl(calls: Iterable[AiCall], path: Path) -> Path:
    """Write calls as the app's JSONL log, one record a line.

    Returns:
        The path written.
    """
    with path.open("w", encoding="utf-8") as out:
        for call in calls:
            out.write(json.dumps(call_record(call)) + "\n")
    return path
