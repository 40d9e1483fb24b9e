"""Constants of the Cloudflare R2 usage source: endpoint, GraphQL query, windows, limits and the raw tables."""

from __future__ import annotations

SOURCE = "cloudflare"
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
GRAPHQL_PATH = "/graphql"

DEFAULT_HISTORY_DAYS = 31  # the R2 analytics datasets keep 31 days
REFETCH_DAYS = 2  # today is partial and adaptive datasets settle late: re-read the last days each run
WINDOW_DAYS = 7  # days per query
PAGE_LIMIT = 10_000  # groups per dataset per query; a result that reaches it is an error, never truncated

REQUEST_MAX_ATTEMPTS = 6
RETRY_BACKOFF_S = 1.0
MAX_RETRY_WAIT_S = 60.0
REQUEST_TIMEOUT_S = 60.0

# Operations per day, bucket, action and status code; storage samples as reported (several a day).
OPERATIONS_QUERY = """query R2Operations($accountTag: string!, $start: Date!, $end: Date!, $limit: uint64!) {
  viewer {
    accounts(filter: {accountTag: $accountTag}) {
      r2OperationsAdaptiveGroups(limit: $limit, filter: {date_geq: $start, date_leq: $end}, orderBy: [date_ASC]) {
        sum { requests responseBytes responseObjectSize }
        dimensions { date bucketName actionType actionStatus responseStatusCode storageClass }
      }
    }
  }
}"""
STORAGE_QUERY = """query R2Storage($accountTag: string!, $start: Time!, $end: Time!, $limit: uint64!) {
  viewer {
    accounts(filter: {accountTag: $accountTag}) {
      r2StorageAdaptiveGroups(limit: $limit, filter: {datetime_geq: $start, datetime_lt: $end},
        orderBy: [datetime_ASC]) {
        max { payloadSize metadataSize objectCount uploadCount }
        dimensions { datetime bucketName storageClass }
      }
    }
  }
}"""

_TIME = {"data_type": "timestamp", "timezone": False}
COLUMNS: dict[str, dict[str, dict]] = {
    "r2_operations": {
        "account_id": {"data_type": "text"},
        "date": {"data_type": "date"},
        "bucket_name": {"data_type": "text"},
        "action_type": {"data_type": "text"},
        "action_status": {"data_type": "text"},
        "response_status_code": {"data_type": "bigint"},
        "storage_class": {"data_type": "text"},
        "requests": {"data_type": "bigint"},
        "response_bytes": {"data_type": "bigint"},
        "response_object_size": {"data_type": "bigint"},
    },
    "r2_storage": {
        "account_id": {"data_type": "text"},
        "sampled_at": _TIME,
        "date": {"data_type": "date"},
        "bucket_name": {"data_type": "text"},
        "storage_class": {"data_type": "text"},
        "payload_size": {"data_type": "bigint"},
        "metadata_size": {"data_type": "bigint"},
        "object_count": {"data_type": "bigint"},
        "upload_count": {"data_type": "bigint"},
    },
}
OPERATIONS_KEY = ("account_id", "date", "bucket_name", "action_type", "action_status", "response_status_code",
                  "storage_class")
STORAGE_KEY = ("account_id", "sampled_at", "bucket_name", "storage_class")
