"""Cloudflare GraphQL Analytics API plumbing: configuration, the retrying POST, errors, parsing the groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from dlt.sources.helpers.requests import RequestException, Session

from statex_bi.config import env
from statex_bi.exceptions import ConfigError, RecordError, SourceError
from statex_bi.sources.cloudflare import settings
from statex_bi.sources.common import retrying_session


@dataclass(frozen=True)
class CloudflareConfig:
    token: str
    account_id: str
    base_url: str

    @property
    def endpoint(self) -> str:
        return self.base_url + settings.GRAPHQL_PATH


def read_config() -> CloudflareConfig:
    """The settings from the environment: $CLOUDFLARE_API_TOKEN (an API token with Account Analytics: Read),
    $CLOUDFLARE_ACCOUNT_ID, $CLOUDFLARE_API_BASE (default https://api.cloudflare.com/client/v4).

    Raises:
        ConfigError: the token or the account id is not set.
    """
    token, account = env("CLOUDFLARE_API_TOKEN"), env("CLOUDFLARE_ACCOUNT_ID")
    for name, value in (("CLOUDFLARE_API_TOKEN", token), ("CLOUDFLARE_ACCOUNT_ID", account)):
        if not value:
            raise ConfigError(f"${name} is not set; the cloudflare source needs an API token with the "
                              "Account Analytics: Read permission and the account id (see docs/configuration.md)")
    base = env("CLOUDFLARE_API_BASE", settings.DEFAULT_BASE_URL).rstrip("/")
    return CloudflareConfig(token, account, base.removesuffix(settings.GRAPHQL_PATH))


def make_session() -> Session:
    """A requests session that retries 429 (honouring Retry-After), 5xx and dropped connections."""
    return retrying_session(settings.REQUEST_TIMEOUT_S, settings.REQUEST_MAX_ATTEMPTS, settings.RETRY_BACKOFF_S,
                            settings.MAX_RETRY_WAIT_S)


def query(session: Session, config: CloudflareConfig, text: str, variables: Mapping[str, Any], dataset: str
          ) -> list[dict]:
    """The groups of `dataset` that one GraphQL query returns for the account.

    Raises:
        SourceError: the request failed for good, the API answered with `errors` (authentication,
            authorization, limits), or the result reached the page limit (it would be truncated).
    """
    endpoint = f"{settings.GRAPHQL_PATH} {dataset}"
    try:
        response = session.post(config.endpoint, json={"query": text, "variables": dict(variables)},
                                headers={"Authorization": f"Bearer {config.token}"})
        body = response.json()
    except (RequestException, ValueError) as exc:  # ValueError: a body that is not JSON
        raise SourceError(settings.SOURCE, endpoint, f"{type(exc).__name__}: {exc}") from exc
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if errors:
        messages = "; ".join(str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors)
        hint = (" (check $CLOUDFLARE_API_TOKEN: it needs Account Analytics: Read, and $CLOUDFLARE_ACCOUNT_ID)"
                if response.status_code in (401, 403) or "auth" in messages.lower() else "")
        raise SourceError(settings.SOURCE, endpoint, f"HTTP {response.status_code}: {messages}{hint}")
    if response.status_code != 200:
        raise SourceError(settings.SOURCE, endpoint, f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        accounts = body["data"]["viewer"]["accounts"]
    except (KeyError, TypeError):
        raise SourceError(settings.SOURCE, endpoint, f"no data.viewer.accounts in the answer: {str(body)[:300]}"
                          ) from None
    if not accounts:
        raise SourceError(settings.SOURCE, endpoint, f"account {config.account_id} not found for this token")
    groups = accounts[0].get(dataset) or []
    if len(groups) >= int(variables["limit"]):
        raise SourceError(settings.SOURCE, endpoint, f"{len(groups)} groups reached the limit of "
                          f"{variables['limit']}: narrow settings.WINDOW_DAYS so that nothing is cut off")
    return groups


def _count(group: Mapping[str, Any], part: str, name: str, record: str, required: bool = True) -> int | None:
    value = (group.get(part) or {}).get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RecordError(settings.SOURCE, "r2", record, f"{part}.{name}", f"not a whole number: {value!r}")
    return value


def parse_operations(group: Mapping[str, Any], account_id: str) -> dict:
    """One r2OperationsAdaptiveGroups group as a raw_cloudflare.r2_operations row.

    Raises:
        RecordError: the date is not a date, or a count is not a whole number.
    """
    dims = group.get("dimensions") or {}
    record = f"{dims.get('date')}/{dims.get('bucketName')}/{dims.get('actionType')}"
    try:
        day = date.fromisoformat(str(dims.get("date")))
    except ValueError:
        raise RecordError(settings.SOURCE, "r2OperationsAdaptiveGroups", record, "dimensions.date",
                          f"not a date: {dims.get('date')!r}") from None
    status = dims.get("responseStatusCode")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise RecordError(settings.SOURCE, "r2OperationsAdaptiveGroups", record, "dimensions.responseStatusCode",
                          f"not an integer: {status!r}")
    return {
        "account_id": account_id, "date": day, "bucket_name": str(dims.get("bucketName") or ""),
        "action_type": str(dims.get("actionType") or ""), "action_status": str(dims.get("actionStatus") or ""),
        "response_status_code": status if status is not None else -1,
        "storage_class": str(dims.get("storageClass") or "Standard"),
        "requests": _count(group, "sum", "requests", record),
        "response_bytes": _count(group, "sum", "responseBytes", record),
        "response_object_size": _count(group, "sum", "responseObjectSize", record, required=False),
    }


def parse_storage(group: Mapping[str, Any], account_id: str) -> dict:
    """One r2StorageAdaptiveGroups sample as a raw_cloudflare.r2_storage row.

    Raises:
        RecordError: the datetime does not parse, or a size is not a whole number.
    """
    dims = group.get("dimensions") or {}
    record = f"{dims.get('datetime')}/{dims.get('bucketName')}"
    try:
        moment = datetime.fromisoformat(str(dims.get("datetime")))
    except ValueError:
        raise RecordError(settings.SOURCE, "r2StorageAdaptiveGroups", record, "dimensions.datetime",
                          f"not a datetime: {dims.get('datetime')!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return {
        "account_id": account_id, "sampled_at": moment, "date": moment.date(),
        "bucket_name": str(dims.get("bucketName") or ""), "storage_class": str(dims.get("storageClass") or "Standard"),
        "payload_size": _count(group, "max", "payloadSize", record),
        "metadata_size": _count(group, "max", "metadataSize", record),
        "object_count": _count(group, "max", "objectCount", record, required=False),
        "upload_count": _count(group, "max", "uploadCount", record, required=False),
    }
