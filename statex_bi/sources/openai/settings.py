"""Constants of the OpenAI usage source: endpoints, grouping, paging, history and retry limits."""

from __future__ import annotations

SOURCE = "openai"
DEFAULT_BASE_URL = "https://api.openai.com"
USAGE_PATH = "/v1/organization/usage/completions"
COSTS_PATH = "/v1/organization/costs"

# Grouping by every key of the table makes each result one row of it.
USAGE_GROUP_BY = ("model", "project_id", "batch", "service_tier")
COSTS_GROUP_BY = ("line_item", "project_id")
USAGE_LIMIT = 31  # daily buckets a page: the maximum for bucket_width=1d
COSTS_LIMIT = 180  # the costs endpoint's maximum

DEFAULT_HISTORY_DAYS = 90  # first load without --start
REFETCH_DAYS = 2  # today's bucket is partial and late usage lands in recent days: re-read them each run

REQUEST_MAX_ATTEMPTS = 6
RETRY_BACKOFF_S = 1.0  # exponential: 1, 2, 4, ... seconds when the response gives no Retry-After
MAX_RETRY_WAIT_S = 60.0
REQUEST_TIMEOUT_S = 60.0

USAGE_COLUMNS: dict[str, dict] = {
    "bucket_start": {"data_type": "timestamp", "timezone": False},
    "bucket_end": {"data_type": "timestamp", "timezone": False},
    "model": {"data_type": "text"},
    "project_id": {"data_type": "text"},
    "batch": {"data_type": "bool"},
    "service_tier": {"data_type": "text"},
    "input_tokens": {"data_type": "bigint"},
    "input_cached_tokens": {"data_type": "bigint"},
    "output_tokens": {"data_type": "bigint"},
    "num_model_requests": {"data_type": "bigint"},
}
USAGE_KEY = ("bucket_start", "model", "project_id", "batch", "service_tier")

COSTS_COLUMNS: dict[str, dict] = {
    "bucket_start": {"data_type": "timestamp", "timezone": False},
    "bucket_end": {"data_type": "timestamp", "timezone": False},
    "line_item": {"data_type": "text"},
    "project_id": {"data_type": "text"},
    "amount": {"data_type": "double"},
    "currency": {"data_type": "text"},
}
COST_CURRENCIES = frozenset({"USD"})  # what OpenAI bills in
COSTS_KEY = ("bucket_start", "line_item", "project_id")
