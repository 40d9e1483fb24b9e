"""OpenAI organization API plumbing: configuration, the REST client with `next_page` paging, parsing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dlt.sources.helpers.requests import HTTPError, RequestException
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator

from statex_bi.config import env
from statex_bi.exceptions import ConfigError, RecordError, SourceError
from statex_bi.sources.common import retrying_session
from statex_bi.sources.openai import settings


@dataclass(frozen=True)
class OpenAiConfig:
    admin_key: str
    base_url: str


def read_config() -> OpenAiConfig:
    """The OpenAI settings from the environment.

    Returns:
        The admin key ($OPENAI_ADMIN_KEY) and base URL ($OPENAI_API_BASE, default https://api.openai.com).

    Raises:
        ConfigError: $OPENAI_ADMIN_KEY is not set.
    """
    key = env("OPENAI_ADMIN_KEY")
    if key is None:
        raise ConfigError("$OPENAI_ADMIN_KEY is not set; the openai source needs an organization admin key "
                          "(sk-admin-..., not a project key) for the Usage and Costs APIs (see docs/configuration.md)")
    base_url = env("OPENAI_API_BASE", settings.DEFAULT_BASE_URL).rstrip("/")
    return OpenAiConfig(key, base_url.removesuffix("/v1"))


def make_client(config: OpenAiConfig) -> RESTClient:
    """A REST client that authenticates, pages by `next_page` and retries 429 / 5xx / dropped connections."""
    session = retrying_session(settings.REQUEST_TIMEOUT_S, settings.REQUEST_MAX_ATTEMPTS, settings.RETRY_BACKOFF_S,
                               settings.MAX_RETRY_WAIT_S)
    return RESTClient(
        base_url=config.base_url,
        auth=BearerTokenAuth(config.admin_key),
        session=session,
        paginator=JSONResponseCursorPaginator(cursor_path="next_page", cursor_param="page"),
        data_selector="data",
    )


def paginate(client: RESTClient, path: str, params: Mapping[str, Any]) -> Iterator[list[dict]]:
    """Every page of buckets of `path`.

    Raises:
        SourceError: a request failed for good (after retries), with OpenAI's error message.
    """
    try:
        yield from client.paginate(path, params=dict(params))
    except HTTPError as exc:
        response = exc.response
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        hint = " (check $OPENAI_ADMIN_KEY: an organization admin key is needed)" if response.status_code in (
            401, 403) else ""
        raise SourceError(settings.SOURCE, path, f"HTTP {response.status_code}{hint}: {message}") from exc
    except (RequestException, ValueError) as exc:  # ValueError: a body that is not JSON
        raise SourceError(settings.SOURCE, path, f"{type(exc).__name__}: {exc}") from exc


def bucket_times(bucket: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """A bucket's start and end as naive UTC datetimes.

    Raises:
        ValueError: the bucket has no integer start_time / end_time.
    """
    start, end = bucket.get("start_time"), bucket.get("end_time")
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool):
        raise ValueError(f"bucket without integer start_time/end_time: {start!r}, {end!r}")
    return (datetime.fromtimestamp(start, UTC).replace(tzinfo=None),
            datetime.fromtimestamp(end, UTC).replace(tzinfo=None))


def parse_usage(start: datetime, end: datetime, result: Mapping[str, Any]) -> dict:
    """One completions usage result (grouped by model, project, batch, service tier) as a row.

    Group keys the API leaves null become '' (false for batch): they are merge keys.

    Raises:
        RecordError: a token count or the request count is missing or not a whole number.
    """
    model = result.get("model") or ""
    record = f"{start:%Y-%m-%d}/{model}/{result.get('project_id') or ''}"
    row: dict[str, Any] = {
        "bucket_start": start, "bucket_end": end, "model": str(model),
        "project_id": str(result.get("project_id") or ""), "batch": bool(result.get("batch") or False),
        "service_tier": str(result.get("service_tier") or ""),
    }
    for field, required in (("input_tokens", True), ("input_cached_tokens", False), ("output_tokens", True),
                            ("num_model_requests", True)):
        value = result.get(field)
        if value is None and not required:
            row[field] = None
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RecordError(settings.SOURCE, settings.USAGE_PATH, record, field, f"not a whole number: {value!r}")
        row[field] = value
    return row


def parse_cost(start: datetime, end: datetime, result: Mapping[str, Any]) -> dict:
    """One costs result (grouped by line item and project) as a row; the currency in upper case.

    Raises:
        RecordError: the amount has no numeric value or no currency.
    """
    line_item = str(result.get("line_item") or "")
    record = f"{start:%Y-%m-%d}/{line_item}"
    amount = result.get("amount")
    if not isinstance(amount, Mapping):
        raise RecordError(settings.SOURCE, settings.COSTS_PATH, record, "amount", f"not an object: {amount!r}")
    try:
        value = float(amount.get("value"))
    except (TypeError, ValueError):
        raise RecordError(settings.SOURCE, settings.COSTS_PATH, record, "amount.value",
                          f"not a number: {amount.get('value')!r}") from None
    currency = amount.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise RecordError(settings.SOURCE, settings.COSTS_PATH, record, "amount.currency",
                          f"not an ISO 4217 code: {currency!r}")
    return {"bucket_start": start, "bucket_end": end, "line_item": line_item,
            "project_id": str(result.get("project_id") or ""), "amount": value, "currency": currency.upper()}
