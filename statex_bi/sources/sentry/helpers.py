"""Sentry plumbing: configuration, the REST client with Link paging and rate-limit waits, span parsing.

`parse_span` is shared with the ai-calls JSONL import, whose records are the same spans.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dlt.sources.helpers.requests import HTTPError, RequestException, Response
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator

from statex_bi.config import env
from statex_bi.exceptions import ConfigError, RecordError, SourceError
from statex_bi.sources.common import RecordGuard, retrying_session
from statex_bi.sources.sentry import settings


@dataclass(frozen=True)
class SentryConfig:
    token: str
    org: str
    base_url: str
    projects: tuple[str, ...] = (settings.ALL_PROJECTS,)  # the `project` query values of every request


def read_config() -> SentryConfig:
    """The Sentry settings from the environment.

    Returns:
        Token ($SENTRY_AUTH_TOKEN), organization slug ($SENTRY_ORG), base URL ($SENTRY_BASE_URL,
        default https://sentry.io; https://de.sentry.io for the EU region) and projects: $SENTRY_PROJECTS,
        comma-separated project ids, else -1 (every project the token can see; Sentry reads a request without
        `project` as "my projects" only).

    Raises:
        ConfigError: naming every required variable that is not set, or a project that is not an id.
    """
    missing = [name for name in ("SENTRY_AUTH_TOKEN", "SENTRY_ORG") if env(name) is None]
    if missing:
        raise ConfigError(
            f"{' and '.join('$' + name for name in missing)} not set; the sentry source needs an auth token "
            "with org:read and the organization slug (see docs/configuration.md)"
        )
    projects = tuple(p.strip() for p in (env("SENTRY_PROJECTS") or "").split(",") if p.strip())
    bad = [p for p in projects if not p.lstrip("-").isdigit()]
    if bad:
        raise ConfigError(f"$SENTRY_PROJECTS: {', '.join(bad)} is not a project id (Settings > Projects > the "
                          "project's ID; comma-separated)")
    return SentryConfig(
        token=env("SENTRY_AUTH_TOKEN"),
        org=env("SENTRY_ORG"),
        base_url=env("SENTRY_BASE_URL", settings.DEFAULT_BASE_URL).rstrip("/"),
        projects=projects or (settings.ALL_PROJECTS,),
    )


class SentryLinkPaginator(HeaderLinkPaginator):
    """Follows `rel="next"` while it says `results="true"`.

    Sentry's Link header always carries a next link, even on the last page; only its `results`
    attribute tells whether there is more, so the plain HeaderLinkPaginator would never stop.
    """

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        link = response.links.get("next", {})
        self._next_reference = link.get("url") if link.get("results") == "true" else None


def make_client(config: SentryConfig) -> RESTClient:
    """A REST client that authenticates, pages by Link header and retries 429 / 5xx / dropped connections."""
    session = retrying_session(settings.REQUEST_TIMEOUT_S, settings.REQUEST_MAX_ATTEMPTS, settings.RETRY_BACKOFF_S,
                               settings.MAX_RATE_LIMIT_WAIT_S)
    return RESTClient(base_url=config.base_url, auth=BearerTokenAuth(config.token), session=session,
                      paginator=SentryLinkPaginator(), data_selector="data")


def wait_for_rate_limit_reset(response: Response, *args: Any, **kwargs: Any) -> None:
    """A response hook: a 429 without Retry-After gets one computed from X-Sentry-Rate-Limit-Reset.

    dlt's retry honours Retry-After (capped at MAX_RATE_LIMIT_WAIT_S); Sentry documents only its own
    reset header (epoch seconds of the end of the rate-limit window).
    """
    if response.status_code != 429 or response.headers.get("Retry-After"):
        return
    reset = response.headers.get("X-Sentry-Rate-Limit-Reset")
    try:
        wait = math.ceil(float(reset) - time.time()) if reset else 1
    except ValueError:
        wait = 1
    response.headers["Retry-After"] = str(int(min(max(wait, 1), settings.MAX_RATE_LIMIT_WAIT_S)))


def raise_for_status(response: Response, *args: Any, **kwargs: Any) -> None:
    """A response hook: error statuses raise (after the retries), carrying the response."""
    response.raise_for_status()


HOOKS = {"response": [wait_for_rate_limit_reset, raise_for_status]}


@contextmanager
def _source_errors(endpoint: str) -> Iterator[None]:
    """A request that failed for good (after retries) becomes a SourceError naming the endpoint and status."""
    try:
        yield
    except HTTPError as exc:
        response = exc.response
        hint = " (check $SENTRY_AUTH_TOKEN and $SENTRY_ORG)" if response.status_code in (401, 403, 404) else ""
        raise SourceError(settings.SOURCE, endpoint,
                          f"HTTP {response.status_code}{hint}: {response.text[:300]}") from exc
    except (RequestException, ValueError) as exc:  # ValueError: a body that is not JSON
        raise SourceError(settings.SOURCE, endpoint, f"{type(exc).__name__}: {exc}") from exc


def paginate(client: RESTClient, path: str, params: Mapping[str, Any], endpoint: str,
             data_selector: str = "data") -> Iterator[list[dict]]:
    """Every page of `path`, following Link headers.

    Args:
        data_selector: where the records are in a page: `data` for the events endpoint, `$` for an array.

    Raises:
        SourceError: a request failed for good (after retries), naming the endpoint and the status.
    """
    with _source_errors(endpoint):
        yield from client.paginate(path, params=dict(params), hooks=HOOKS, data_selector=data_selector)


def get_json(client: RESTClient, path: str, params: Mapping[str, Any], endpoint: str) -> Any:
    """One GET's JSON body, with the same retries and errors as `paginate`."""
    with _source_errors(endpoint):
        return client.get(path, params=dict(params), hooks=HOOKS).json()


def span_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """`fields` (column -> span field) with the prototype and tier attributes named by the settings
    $SENTRY_PROTOTYPE_ATTRIBUTE and $SENTRY_TIER_ATTRIBUTE (defaults prototype_id and ai_tier)."""
    return {
        **fields,
        "prototype_id": env(settings.PROTOTYPE_ATTRIBUTE_ENV, settings.DEFAULT_PROTOTYPE_ATTRIBUTE),
        "ai_tier": env(settings.TIER_ATTRIBUTE_ENV, settings.DEFAULT_TIER_ATTRIBUTE),
    }


def tier_of_system(system: str | None) -> str | None:
    """The tier a gen_ai.system value means: ollama, openai or azure (`az.ai.openai`, `azure.*`)."""
    if system is None:
        return None
    name = system.strip().lower()
    if name.startswith(settings.AZURE_SYSTEM_PREFIX):
        return "azure"
    return settings.TIERS_BY_SYSTEM.get(name)


def guard(source: str, endpoint: str) -> RecordGuard:
    """The checks a span passes before it loads (and moves the cursor): a believable start."""
    return RecordGuard(source, endpoint, ("span_id",), timestamps=("started_at",))


def parse_span(raw: Mapping[str, Any], fields: Mapping[str, str], source: str, endpoint: str,
               record_id: str | None = None) -> dict:
    """One span as a raw_sentry.gen_ai_spans row; a span without a tier gets the one its gen_ai.system
    means, with `ai_tier_inferred` true.

    Args:
        raw: the span as the API or log has it, keyed by its own field names.
        fields: column -> the field name in `raw` (names the field in errors).
        source, endpoint: for errors.
        record_id: names the record in errors (default: the span id).

    Returns:
        The row: the contract's columns, tokens as int, `started_at` naive UTC.

    Raises:
        RecordError: a field is missing or does not parse.
    """
    span_id = raw.get(fields["span_id"])
    record = record_id or (str(span_id) if span_id else "?")

    def fail(column: str, message: str) -> RecordError:
        return RecordError(source, endpoint, record, fields[column], message)

    if not isinstance(span_id, str) or not span_id.strip():
        raise fail("span_id", "missing span id")
    row: dict[str, Any] = {}
    for column, name in fields.items():
        value = raw.get(name)
        if column == "started_at":
            row[column] = parse_timestamp(value)
            if row[column] is None:
                raise fail(column, f"not a timestamp: {value!r}")
            continue
        parse = _count if column in settings.TOKEN_COLUMNS else _number if column == "duration_ms" else _text
        try:
            row[column] = parse(value)
        except ValueError as exc:
            raise fail(column, f"{exc}: {value!r}") from None
    row["ai_tier_inferred"] = False
    if row.get("ai_tier") in (None, ""):
        row["ai_tier"] = tier_of_system(row.get("system"))
        row["ai_tier_inferred"] = row["ai_tier"] is not None
    return row


def parse_timestamp(value: Any) -> datetime | None:
    """Epoch seconds or an ISO 8601 string (naive = UTC) as a naive UTC datetime; None if neither.

    Years outside 2000-2100 count as unparseable: they come from milliseconds taken for seconds.
    """
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return moment.replace(tzinfo=None) if 2000 <= moment.year <= 2100 else None


# A token count is stored as BIGINT: a larger one is a bad record, not a failed load.
MAX_COUNT = 2 ** 63 - 1


def _count(value: Any) -> int | None:
    """A token count (None when absent); integral floats and digit strings are accepted."""
    if value is None:
        return None
    digits = isinstance(value, str) and value.strip().isdigit()
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and float(value).is_integer() and value >= 0
    if not (digits or number):
        raise ValueError("not a whole number of tokens")
    count = int(value)
    if count > MAX_COUNT:
        raise ValueError("out of range for a token count")
    return count


def _number(value: Any) -> float | None:
    """A non-negative duration in milliseconds (None when absent)."""
    if value is None:
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise ValueError("not a duration in milliseconds")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("not a text value")
    return str(value)
