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
# The gen_ai attributes, by column: the same names in the events endpoint's fields and in the app's own
# JSONL export (statex_bi.sources.ai_calls).
GEN_AI_ATTRIBUTES: dict[str, str] = {
    "system": "gen_ai.system",
    "request_model": "gen_ai.request.model",
    "input_tokens": "gen_ai.usage.input_tokens",
    "cached_input_tokens": "gen_ai.usage.input_tokens.cached",
    "output_tokens": "gen_ai.usage.output_tokens",
}
SPAN_FIELDS: dict[str, str] = {
    "span_id": "id",
    "trace_id": "trace",
    "started_at": "precise.start_ts",
    "duration_ms": "span.duration",
    "op": "span.op",
    "status": "span.status",
    **GEN_AI_ATTRIBUTES,
    "prototype_id": DEFAULT_PROTOTYPE_ATTRIBUTE,
    "ai_tier": DEFAULT_TIER_ATTRIBUTE,
    "project": "project",
}
SORT_FIELD = "precise.start_ts"

# --- Web and API performance (performance.py) ---
ISSUES_PATH = "/api/0/organizations/{org}/issues/"
ISSUE_PATH = "/api/0/organizations/{org}/issues/{issue_id}/"
STATS_PATH = "/api/0/organizations/{org}/stats_v2/"
# stats_v2 fields: sum(quantity) is bytes for attachments and the event count for other categories;
# sum(times_seen) counts attachments (and unique sessions); for errors and transactions both agree.
STATS_FIELDS = ("sum(quantity)", "sum(times_seen)")
ALL_PROJECTS = "-1"  # Sentry's ALL_ACCESS_PROJECTS: every project the token can see
TIMESERIES_PATH = "/api/0/organizations/{org}/events-timeseries/"
TOP_GROUPS = 10  # events-timeseries returns at most 10 groups (topEvents), by count
ISSUES_ENDPOINT = "issues"
ISSUE_ENDPOINT = "issues/{id}"
STATS_ENDPOINT = "stats_v2"
ROUTES_ENDPOINT = "events?dataset=spans&query=span.op:http.server"
VITALS_ENDPOINT = "events?dataset=spans&query=span.op:pageload|ui.interaction.click"
DAILY_ENDPOINT = "events-timeseries?dataset=spans"
RETENTION_DAYS = 90  # Sentry keeps spans 30-90 days by plan; older windows come back empty
ALL = "(all)"  # the route / page / device of a row aggregated over all of them
# Activity types that resolve an issue (sentry/types/activity.py, lowercased enum names).
RESOLVE_ACTIVITIES = ("set_resolved", "set_resolved_in_release", "set_resolved_in_commit",
                      "set_resolved_in_pull_request", "set_resolved_by_age")
ROUTE_FIELD = "transaction"  # the span's segment name: the Fastify route, e.g. "GET /api/prototypes/:id"
ROUTE_AGGREGATES = {
    "requests": "count()",
    "p50_ms": "p50(span.duration)",
    "p95_ms": "p95(span.duration)",
    "avg_ms": "avg(span.duration)",  # the seed's "average response time", shown beside the p95
    "failure_rate": "failure_rate()",
}


def ladder(field: str, quantile: float, named: str, levels: tuple[float, ...]) -> dict[float, str]:
    """Quantile level -> Sentry aggregate of `field`: the rungs a quantile's order-statistic interval is read
    off (performance.quantile_interval): 0 and 1 are the smallest and largest value, `quantile` itself is
    the `named` function (p95, p75) the row already asks for."""
    return {0.0: f"min({field})", **{level: f"percentile({field},{level:g})" for level in levels},
            quantile: f"{named}({field})", 1.0: f"max({field})"}


# With the route and the aggregates above, a route query selects 19 fields (the events endpoint takes at
# most 20); a vitals query (page, device, count, p75, good, 15 rungs) 20.
P95_LADDER = ladder("span.duration", 0.95, "p95", (0.85, 0.9, 0.92, 0.93, 0.94, 0.945, 0.955, 0.96, 0.97, 0.98, 0.99))
P75_LEVELS = (0.55, 0.6, 0.65, 0.7, 0.72, 0.74, 0.745, 0.755, 0.76, 0.78, 0.8, 0.85, 0.9)
DEFAULT_DEVICE_ATTRIBUTE = "device.type"  # $SENTRY_DEVICE_ATTRIBUTE: the app's mobile|desktop span attribute
# metric -> (span op, measurement, "good" threshold: web.dev, LCP/INP in ms)
VITALS = {
    "lcp": ("pageload", "measurements.lcp", 2500),
    "cls": ("pageload", "measurements.cls", 0.1),
    "inp": ("ui.interaction.click", "measurements.inp", 200),
}
ROUTE_COLUMNS: dict[str, dict] = {
    "grain": {"data_type": "text"},
    "period_start": {"data_type": "date"},
    "period_end": {"data_type": "date"},
    "route": {"data_type": "text"},
    "requests": {"data_type": "bigint"},
    "p50_ms": {"data_type": "double"},
    "p95_ms": {"data_type": "double"},
    "p95_low_ms": {"data_type": "double"},
    "p95_high_ms": {"data_type": "double"},
    "avg_ms": {"data_type": "double"},
    "failure_rate": {"data_type": "double"},
}
VITALS_COLUMNS: dict[str, dict] = {
    "grain": {"data_type": "text"},
    "period_start": {"data_type": "date"},
    "period_end": {"data_type": "date"},
    "page": {"data_type": "text"},
    "device": {"data_type": "text"},
    "metric": {"data_type": "text"},
    "p75": {"data_type": "double"},
    "p75_low": {"data_type": "double"},
    "p75_high": {"data_type": "double"},
    "samples": {"data_type": "bigint"},
    "good_samples": {"data_type": "bigint"},
}
ISSUE_COLUMNS: dict[str, dict] = {
    "issue_id": {"data_type": "text"},
    "short_id": {"data_type": "text"},
    "title": {"data_type": "text"},
    "level": {"data_type": "text"},
    "status": {"data_type": "text"},
    "first_seen": {"data_type": "timestamp", "timezone": False},
    "last_seen": {"data_type": "timestamp", "timezone": False},
    "event_count": {"data_type": "bigint"},
    "user_count": {"data_type": "bigint"},
    "project": {"data_type": "text"},
    "resolved_at": {"data_type": "timestamp", "timezone": False},
    "resolved_by": {"data_type": "text"},
}
EVENT_VOLUME_COLUMNS: dict[str, dict] = {
    "day": {"data_type": "date"},
    "category": {"data_type": "text"},
    "outcome": {"data_type": "text"},
    "quantity": {"data_type": "bigint"},
    "times_seen": {"data_type": "bigint"},
}

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

# --- Background jobs, database queries, user feedback (operations.py) ---
QUEUE_FIELD = "messaging.destination.name"  # the BullMQ queue
JOBS_ENDPOINT = "events?dataset=spans&query=span.op:queue.process|queue.publish"
QUERIES_ENDPOINT = "events?dataset=spans&query=span.category:db"
FEEDBACK_ENDPOINT = "issues?query=issue.category:feedback"
# Sentry's Queries page: db spans with a normalised description (wave3-facts 2b); the sandbox knows the
# first two terms, real Sentry also excludes Room and Redis spans, which a Node app does not send.
DB_QUERY = "span.category:db has:sentry.normalized_description"
FEEDBACK_QUERY = "issue.category:feedback"
SLOW_QUERY_TARGET = "slow_query_ms"  # params/targets.yaml: the seed's "Prisma queries >500ms", counted by Sentry
# raw column -> aggregate of queue.process spans; a first attempt has retry count 0.
PROCESS_AGGREGATES = {
    "attempts": "count()",
    "processed": "count_if(messaging.message.retry.count,equals,0)",
    "retries": "count_if(messaging.message.retry.count,greater,0)",
    "failure_rate": "failure_rate()",
    "p50_ms": "p50(span.duration)",
    "p95_ms": "p95(span.duration)",
    "wait_p95_ms": "p95(messaging.message.receive.latency)",
}
PUBLISH_AGGREGATES = {"published": "count()"}
# raw column -> aggregate of db spans; `slow_calls` is added with the slow-query target (operations.py).
QUERY_AGGREGATES = {
    "calls": "count()",
    "p95_ms": "p95(span.duration)",
    "total_ms": "sum(span.duration)",
}
JOB_COLUMNS: dict[str, dict] = {
    "grain": {"data_type": "text"},
    "period_start": {"data_type": "date"},
    "period_end": {"data_type": "date"},
    "queue": {"data_type": "text"},
    "published": {"data_type": "bigint"},
    "processed": {"data_type": "bigint"},
    "attempts": {"data_type": "bigint"},
    "retries": {"data_type": "bigint"},
    "failure_rate": {"data_type": "double"},
    "p50_ms": {"data_type": "double"},
    "p95_ms": {"data_type": "double"},
    "wait_p95_ms": {"data_type": "double"},
}
QUERY_COLUMNS: dict[str, dict] = {
    "grain": {"data_type": "text"},
    "period_start": {"data_type": "date"},
    "period_end": {"data_type": "date"},
    "query_group": {"data_type": "text"},
    "query": {"data_type": "text"},
    "route": {"data_type": "text"},
    "calls": {"data_type": "bigint"},
    "p95_ms": {"data_type": "double"},
    "total_ms": {"data_type": "double"},
    "slow_calls": {"data_type": "bigint"},
}
FEEDBACK_COLUMNS: dict[str, dict] = {
    "feedback_id": {"data_type": "text"},
    "received_at": {"data_type": "timestamp", "timezone": False},
    "page": {"data_type": "text"},
    "message": {"data_type": "text"},
    "contact": {"data_type": "text"},
    "project": {"data_type": "text"},
    "status": {"data_type": "text"},
}
