"""Constants of the Sentry source: endpoints, span fields and columns, paging and retry limits."""

from __future__ import annotations

SOURCE = "sentry"
DEFAULT_BASE_URL = "https://sentry.io"
EVENTS_PATH = "/api/0/organizations/{org}/events/"
SPANS_ENDPOINT = "events?dataset=spans"

GEN_AI_QUERY = "span.op:gen_ai.*"
PER_PAGE = 100  # the endpoint's maximum
DEFAULT_HISTORY_DAYS = 90  # first load without --start
LATE_SPAN_LAG_S = 3600  # spans arrive late and out of order: each run re-reads the last hour

# Retries (dlt's requests helper): 429 and 5xx, dropped or truncated connections.
REQUEST_MAX_ATTEMPTS = 6
RETRY_BACKOFF_S = 1.0  # exponential: 1, 2, 4, ... seconds when the response gives no Retry-After
MAX_RATE_LIMIT_WAIT_S = 60.0  # a 429's wait until X-Sentry-Rate-Limit-Reset / Retry-After is capped here
REQUEST_TIMEOUT_S = 60.0

# The app's own span attributes that carry the prototype and the tier of a call: settings, because they
# are whatever the app's instrumentation calls them (also the keys of the ai-calls JSONL records).
PROTOTYPE_ATTRIBUTE_ENV = "SENTRY_PROTOTYPE_ATTRIBUTE"
DEFAULT_PROTOTYPE_ATTRIBUTE = "prototype_id"
TIER_ATTRIBUTE_ENV = "SENTRY_TIER_ATTRIBUTE"
DEFAULT_TIER_ATTRIBUTE = "ai_tier"
# A span without a tier gets it from gen_ai.system (OpenTelemetry's values; "azure.*" and the older
# "az.ai.openai" are Azure OpenAI), and `ai_tier_inferred` says so.
TIERS_BY_SYSTEM = {"ollama": "ollama", "openai": "openai", "az.ai.openai": "azure"}
AZURE_SYSTEM_PREFIX = "azure."

# raw_sentry.gen_ai_spans column -> the span field requested from the events endpoint (dataset=spans).
# `gen_ai.usage.*` are integer attributes of Sentry's EAP spans dataset, `gen_ai.system` and
# `gen_ai.request.model` string attributes, both addressable by their plain names; prototype_id and
# ai_tier are the app's own string attributes, named by the settings above (`helpers.span_fields`).
# `precise.start_ts` is the start in epoch seconds with sub-second precision (`timestamp` is only to
# the second).
SPAN_FIELDS: dict[str, str] = {
    "span_id": "id",
    "trace_id": "trace",
    "started_at": "precise.start_ts",
    "duration_ms": "span.duration",
    "op": "span.op",
    "status": "span.status",
    "system": "gen_ai.system",
    "request_model": "gen_ai.request.model",
    "input_tokens": "gen_ai.usage.input_tokens",
    "cached_input_tokens": "gen_ai.usage.input_tokens.cached",
    "output_tokens": "gen_ai.usage.output_tokens",
    "prototype_id": DEFAULT_PROTOTYPE_ATTRIBUTE,
    "ai_tier": DEFAULT_TIER_ATTRIBUTE,
    "project": "project",
}
SORT_FIELD = "precise.start_ts"

TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "output_tokens")
# dlt column hints: the types of the contract, so that columns exist even when a load has only nulls.
SPAN_COLUMNS: dict[str, dict] = {
    "span_id": {"data_type": "text"},
    "trace_id": {"data_type": "text"},
    "started_at": {"data_type": "timestamp", "timezone": False},
    "duration_ms": {"data_type": "double"},
    "op": {"data_type": "text"},
    "status": {"data_type": "text"},
    "system": {"data_type": "text"},
    "request_model": {"data_type": "text"},
    "input_tokens": {"data_type": "bigint"},
    "cached_input_tokens": {"data_type": "bigint"},
    "output_tokens": {"data_type": "bigint"},
    "prototype_id": {"data_type": "text"},
    "ai_tier": {"data_type": "text"},
    "project": {"data_type": "text"},
    "ai_tier_inferred": {"data_type": "bool"},
}
