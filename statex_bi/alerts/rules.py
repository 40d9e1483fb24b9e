"""Alert rules: `params/alerts.yaml` read and validated into `Rule`s and the notification routing.

A rules file (see params/alerts.yaml)::

    rules:
      - name: api_error_rate            # unique; becomes monitoring_alerts.alert_name
        kind: threshold                 # threshold | change | anomaly | forecast
        metric: api.error_rate          # a KPI name of docs/metrics.md
        where: {route: all}             # optional tag filter (equality)
        subject: [route]                # optional tags naming the subject: one alert per value
        above: 0.05                     # threshold: above / below a number, or above_tag / below_tag
        sample_tag: requests            # optional: the tag holding the sample size ...
        min_sample: 100                 # ... below which the subject has too little data
        events_tag: failed              # optional, rates: the events counted, for an exact test at `alpha`
        bound_tag: ci_low               # optional: compare the value's confidence bound, not the value
        series_tag: day                 # optional: each row of a subject is a point, judged on its own
        severity: CRITICAL              # LOW | MEDIUM | HIGH | CRITICAL
        title: API error rate above 5%  # optional, for people
        explained_by: ai.cost           # optional: the KPI whose `driver` tag (why it moved) the message
                                        # quotes; default the rule's own metric
    notify:
      routes: {CRITICAL: [slack, email, pagerduty, sms], HIGH: [slack, email, pagerduty], MEDIUM: [slack], LOW: []}
      retries: 3                        # attempts after the first, per channel and message
      backoff_s: 1.0                    # first wait; doubles each retry
      timeout_s: 10                     # one send, connect to answer, TLS included
      deadline_s: 60                    # every send and wait of one run together

Kinds:
  threshold  the current run's value against a fixed number (`above`/`below`) or against one of the
             row's own tags (`above_tag: budget_usd`). `sample_tag` names the tag holding the sample
             size and `min_sample` its minimum: a smaller sample is "too little data" (no alert opens or
             resolves). For a rate, `events_tag` names the tag counting the events (failures): the rule
             then fires when an exact one-sided binomial test at `alpha` (default 0.05) puts the rate
             beyond the limit (its one-sided exact bound clears the limit), with the false discovery
             rate controlled across the rule's subjects (Benjamini-Hochberg). `bound_tag` names the tag
             holding the value's confidence bound on the limit's side (`ci_low` for `above`): the rule
             then fires when that bound is beyond the limit (the KPI's three-way verdict "fails"), and a
             row without one (no order statistic bounds a small sample's percentile) is too little data.
             With `series_tag` (e.g. `day`), a subject's rows are the points of a series, each judged
             (the false discovery rate controlled over all of them): the subject's alert holds when any
             point does, and stays one alert across periods.
  change     a rate against the previous period's (`direction: down|up`), on the `numerator`/
             `denominator` tags and the `previous_numerator`/`previous_denominator` tags (the report
             reads both periods from the warehouse; without them, the previous period's run): one-sided
             score test widened by the row's `dispersion` tag (over-dispersion), Fisher's exact test
             for small counts, false discovery rate controlled at `alpha` across subjects. The change
             must also reach `min_change` (absolute, in rate units) and `min_relative_change` (a share
             of the previous rate).
  forecast   a month-end spend forecast against its budget (tags `budget_usd`, `mtd_cost_usd`,
             `exceed_probability`, `forecast_low_usd`, `forecast_high_usd`): fires when the chance of
             exceeding the budget reaches `probability` (default 0.8), or when the spend so far
             alone has reached the budget.
  anomaly    each point of the current period against its trailing history (alerts/anomaly.py):
             for a daily `series_tag`, the residual of a weekly-seasonal robust STL fit over the
             `window` calendar days before the period (`min_history` days needed); without one, the
             periods of earlier runs against their median. Robust z (MAD), `direction: up|down|both`;
             `z` sets the level, Benjamini-Hochberg adjusted over every point of the period.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statex_bi import targets
from statex_bi.config import read_yaml
from statex_bi.exceptions import ParamsError
from statex_bi.metrics import registry

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
KINDS = ("threshold", "change", "anomaly", "forecast")
CHANNELS = ("slack", "email", "webhook", "sentry", "pagerduty", "sms")
SMS_SEVERITIES = ("CRITICAL",)  # a text message wakes someone: the seed keeps it for critical alerts
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_TAG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# The values a KPI of each unit can take (docs/metrics.md: rates are fractions between 0 and 1); a
# threshold outside them would fire on every run or never.
_UNIT_RANGES = {"fraction": (0.0, 1.0), "count": (0.0, math.inf), "tokens": (0.0, math.inf),
                "ms": (0.0, math.inf), "s": (0.0, math.inf), "hours": (0.0, math.inf)}

_COMMON = {"name", "kind", "metric", "where", "subject", "severity", "title", "explained_by"}
_ALLOWED = {
    "threshold": _COMMON | {"above", "below", "above_tag", "below_tag", "sample_tag", "min_sample", "events_tag",
                            "bound_tag", "series_tag",
                            "alpha"},
    "change": _COMMON | {"direction", "alpha", "min_change", "min_relative_change"},
    "anomaly": _COMMON | {"direction", "z", "window", "min_history", "series_tag"},
    "forecast": _COMMON | {"probability"},
}


@dataclass(frozen=True)
class Rule:
    """One validated alert rule."""

    name: str
    kind: str
    metric: str
    severity: str
    title: str
    where: dict[str, str] = field(default_factory=dict)
    subject: tuple[str, ...] = ()
    above: float | None = None
    below: float | None = None
    above_tag: str | None = None
    below_tag: str | None = None
    direction: str = "down"
    alpha: float = 0.01
    min_change: float = 0.0
    min_relative_change: float = 0.0
    sample_tag: str | None = None
    min_sample: int = 0
    events_tag: str | None = None
    bound_tag: str | None = None
    z: float = 3.5
    window: int = 28
    min_history: int = 14
    series_tag: str | None = None
    explained_by: str | None = None
    probability: float = 0.8


@dataclass(frozen=True)
class Routing:
    """Which channels each severity goes to, and how hard to try."""

    routes: dict[str, tuple[str, ...]]
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 10.0
    deadline_s: float = 60.0

    def channels(self, severity: str) -> tuple[str, ...]:
        return self.routes.get(severity, ())


@dataclass(frozen=True)
class AlertConfig:
    path: Path
    rules: list[Rule]
    routing: Routing


def load(path: Path) -> AlertConfig:
    """Read and validate a rules file.

    Raises:
        ParamsError: naming the file, the rule and the key at fault.
    """
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ParamsError(f"alert rules {path}: must be a mapping with a 'rules' list")
    unknown = sorted(set(map(str, data)) - {"rules", "notify"})
    if unknown:
        raise ParamsError(f"alert rules {path}: unknown key {unknown[0]!r}; allowed: rules, notify")
    rules, seen = [], set()
    for i, raw in enumerate(data["rules"]):
        rule = _rule(raw, f"alert rules {path}: rules[{i}]")
        if rule.name in seen:
            raise ParamsError(f"alert rules {path}: rules[{i}]: name {rule.name!r} is used twice")
        seen.add(rule.name)
        rules.append(rule)
    return AlertConfig(path, rules, _routing(data.get("notify") or {}, f"alert rules {path}: notify"))


def _number(raw: dict, key: str, where: str, default: float | None = None, positive: bool = False) -> float | None:
    value = targets.resolve(raw.get(key, default), f"{where}: {key!r}")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParamsError(f"{where}: {key!r} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ParamsError(f"{where}: {key!r} must be positive, got {value!r}")
    return float(value)


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: must be a mapping with name, kind, metric and severity")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParamsError(f"{where}: 'name' must be lower_snake_case text, got {name!r}")
    where = f"{where} ({name})"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ParamsError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(map(str, raw)) - _ALLOWED[kind])
    if unknown:
        raise ParamsError(f"{where}: key {unknown[0]!r} is not allowed for kind {kind}; "
                          f"allowed: {', '.join(sorted(_ALLOWED[kind]))}")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric.strip():
        raise ParamsError(f"{where}: 'metric' must be a KPI name such as 'api.error_rate'")
    kpi = _kpi(metric.strip(), where)
    severity = raw.get("severity")
    if severity not in SEVERITIES:
        raise ParamsError(f"{where}: 'severity' must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    filters = raw.get("where") or {}
    if not isinstance(filters, dict) or not all(_TAG.match(str(k)) for k in filters):
        raise ParamsError(f"{where}: 'where' must map tag names to values, got {filters!r}")
    subject = raw.get("subject") or []
    if isinstance(subject, str):
        subject = [subject]
    if not isinstance(subject, list) or not all(isinstance(s, str) and _TAG.match(s) for s in subject):
        raise ParamsError(f"{where}: 'subject' must be a tag name or a list of them, got {subject!r}")
    explained_by = raw.get("explained_by")
    if explained_by is not None and (not isinstance(explained_by, str) or not explained_by.strip()):
        raise ParamsError(f"{where}: 'explained_by' must be a KPI name such as 'ai.cost', got {explained_by!r}")
    if explained_by is not None:
        _kpi(explained_by.strip(), where, "explained_by")
    rule: dict[str, Any] = {
        "name": name, "kind": kind, "metric": metric.strip(), "severity": severity,
        "explained_by": explained_by.strip() if explained_by else None,
        "title": str(raw.get("title") or name.replace("_", " ")),
        "where": {str(k): str(v) for k, v in filters.items()}, "subject": tuple(subject),
    }
    if kind == "threshold":
        limits = {k: raw.get(k) for k in ("above", "below", "above_tag", "below_tag") if raw.get(k) is not None}
        if len(limits) != 1:
            raise ParamsError(f"{where}: give exactly one of above, below, above_tag, below_tag")
        (key, value), = limits.items()
        if key.endswith("_tag"):
            if not isinstance(value, str) or not _TAG.match(value):
                raise ParamsError(f"{where}: {key!r} must be a tag name, got {value!r}")
            rule[key] = value
        else:
            rule[key] = _within_unit(_number(raw, key, where), kpi, f"{where}: {key!r}")
        rule |= _sample_keys(raw, where)
        rule["series_tag"] = _series_tag(raw, where)
    elif kind == "change":
        rule["direction"] = _choice(raw, "direction", ("down", "up"), "down", where)
        rule["alpha"] = _alpha(raw, where, 0.01)
        rule["min_change"] = min_change = _number(raw, "min_change", where, 0.0)
        if not 0 <= min_change < 1:
            raise ParamsError(f"{where}: 'min_change' is a difference of rates, from 0 to below 1, got {min_change}")
        rule["min_relative_change"] = _number(raw, "min_relative_change", where, 0.0)
    elif kind == "forecast":
        probability = _number(raw, "probability", where, 0.8, positive=True)
        if probability >= 1:
            raise ParamsError(f"{where}: 'probability' must be between 0 and 1, got {probability}")
        rule["probability"] = probability
    else:
        rule["direction"] = _choice(raw, "direction", ("up", "down", "both"), "up", where)
        rule["z"] = _number(raw, "z", where, 3.5, positive=True)
        for key, default in (("window", 28), ("min_history", 14)):
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 3:
                raise ParamsError(f"{where}: {key!r} must be a whole number of points, at least 3, got {value!r}")
            rule[key] = value
        if rule["min_history"] > rule["window"]:
            raise ParamsError(f"{where}: 'min_history' ({rule['min_history']}) exceeds 'window' ({rule['window']})")
        rule["series_tag"] = _series_tag(raw, where)
    return Rule(**rule)


def _series_tag(raw: dict, where: str) -> str | None:
    tag = raw.get("series_tag")
    if tag is not None and (not isinstance(tag, str) or not _TAG.match(tag)):
        raise ParamsError(f"{where}: 'series_tag' must be a tag name, got {tag!r}")
    return tag


def _kpi(name: str, where: str, key: str = "metric") -> registry.KpiDef:
    """The registry's KPI of that name; a misspelt name would show "no data" forever, so it is refused."""
    known = registry.kpis()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; see docs/metrics.md"
        raise ParamsError(f"{where}: {key!r} {name!r} is not a KPI of the registry{hint}")
    return known[name]


def _within_unit(value: float, kpi: registry.KpiDef, where: str) -> float:
    low, high = _UNIT_RANGES.get(kpi.unit, (-math.inf, math.inf))
    if not low <= value <= high:
        span = f"from {low:g} to {high:g}" if high < math.inf else f"{low:g} or more"
        raise ParamsError(f"{where}: {value:g} is outside what {kpi.name} ({kpi.unit}) can be, {span}")
    return value


def _alpha(raw: dict, where: str, default: float) -> float:
    alpha = _number(raw, "alpha", where, default, positive=True)
    if alpha >= 0.5:
        raise ParamsError(f"{where}: 'alpha' must be below 0.5, got {alpha}")
    return alpha


def _sample_keys(raw: dict, where: str) -> dict[str, Any]:
    """A threshold's sample: `sample_tag` and `min_sample` (below it: too little data), and for a rate
    `events_tag`, which makes the rule an exact test at `alpha` (false-discovery controlled over subjects)."""
    keys: dict[str, Any] = {}
    for key in ("sample_tag", "events_tag", "bound_tag"):
        tag = raw.get(key)
        if tag is not None and (not isinstance(tag, str) or not _TAG.match(tag)):
            raise ParamsError(f"{where}: {key!r} must be a tag name, got {tag!r}")
        keys[key] = tag
    minimum = raw.get("min_sample", 0)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise ParamsError(f"{where}: 'min_sample' must be a whole number, got {minimum!r}")
    keys["min_sample"] = minimum
    if (minimum or keys["events_tag"]) and not keys["sample_tag"]:
        raise ParamsError(f"{where}: 'min_sample' and 'events_tag' need 'sample_tag' (the tag holding the sample size)")
    if keys["events_tag"] and keys["bound_tag"]:
        raise ParamsError(f"{where}: 'bound_tag' and 'events_tag' are two ways to judge: give one")
    if keys["events_tag"] and any(k in raw for k in ("above_tag", "below_tag")):
        raise ParamsError(f"{where}: a rate test ('events_tag') needs a fixed 'above' or 'below' limit")
    if "alpha" in raw and not keys["events_tag"]:
        raise ParamsError(f"{where}: 'alpha' is the rate test's level: it needs 'events_tag'")
    if keys["events_tag"]:
        keys["alpha"] = _alpha(raw, where, 0.05)
    return keys


def _choice(raw: dict, key: str, allowed: tuple[str, ...], default: str, where: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ParamsError(f"{where}: {key!r} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _routing(raw: Any, where: str) -> Routing:
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: must be a mapping with 'routes'")
    allowed = ("routes", "retries", "backoff_s", "timeout_s", "deadline_s")
    unknown = sorted(set(map(str, raw)) - set(allowed))
    if unknown:
        raise ParamsError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    routes_raw = raw.get("routes") or {}
    if not isinstance(routes_raw, dict):
        raise ParamsError(f"{where}.routes: must map a severity to a list of channels")
    routes = {}
    for severity, channels in routes_raw.items():
        if severity not in SEVERITIES:
            raise ParamsError(f"{where}.routes: {severity!r} is not a severity ({', '.join(SEVERITIES)})")
        channels = channels or []
        bad = [c for c in channels if c not in CHANNELS] if isinstance(channels, list) else [channels]
        if bad:
            raise ParamsError(f"{where}.routes.{severity}: {bad[0]!r} is not a channel ({', '.join(CHANNELS)})")
        if "sms" in channels and severity not in SMS_SEVERITIES:
            raise ParamsError(f"{where}.routes.{severity}: 'sms' is for CRITICAL alerts only")
        routes[severity] = tuple(channels)
    retries = raw.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise ParamsError(f"{where}.retries: must be a whole number from 0 to 10, got {retries!r}")
    backoff = _number(raw, "backoff_s", where, 1.0)
    timeout = _number(raw, "timeout_s", where, 10.0, positive=True)
    deadline = _number(raw, "deadline_s", where, 60.0, positive=True)
    if backoff < 0:
        raise ParamsError(f"{where}.backoff_s: must not be negative, got {backoff}")
    return Routing(routes, retries, backoff, timeout, deadline)
