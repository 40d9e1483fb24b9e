"""Publishing KPIs from a notebook without writing to the warehouse.

Every report's KPI module has the same shape: `headline(con, period, **params) -> str`,
`notes(con, period, **params) -> list[str]` and `metrics(con, period, **params) -> list[Metric]`; the
notebook hands what `metrics()` returns to `publish(...)`, which checks every record against the KPI
registry (statex_bi/metrics/definitions/*.yaml) before it writes any, then writes the defined ones.

`metric(...)` appends one JSON line to the sidecar file the report runner names in
$STATEX_BI_SIDECAR; after the notebook succeeds the runner loads the lines into
`monitoring.monitoring_metrics` with the run id and period. In JupyterLab, with no runner, the call
only validates and returns the record, so analysts can run report notebooks freely.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

from statex_bi.exceptions import ParamsError, SidecarError
from statex_bi.metrics import registry
from statex_bi.metrics.record import Metric

if TYPE_CHECKING:
    import pandas as pd

SIDECAR_ENV = "STATEX_BI_SIDECAR"
METRIC_TYPES = ("COUNTER", "GAUGE", "HISTOGRAM", "SUMMARY")


def metric(
    name: str,
    value: float,
    *,
    unit: str | None = None,
    metric_type: str = "GAUGE",
    tags: dict[str, Any] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Publish one KPI value for this run.

    Args:
        name: the KPI's name as listed in docs/metrics.md, e.g. "conversion.signup_rate".
        value: a finite number (rates as fractions 0-1).
        unit: e.g. "fraction", "EUR", "ms", "count".
        metric_type: one of COUNTER, GAUGE, HISTOGRAM, SUMMARY (the seed's metric_type_enum).
        tags: small JSON-able dict, e.g. {"provider": "stripe", "ci_low": 0.02}.
        source: where the data came from, e.g. "ga4".

    Returns:
        The record as written.
    """
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(float(value)):
        raise ParamsError(f"metric {name!r}: value {value!r} is not a finite number")
    if metric_type not in METRIC_TYPES:
        raise ParamsError(f"metric {name!r}: metric_type {metric_type!r} is not one of {', '.join(METRIC_TYPES)}")
    record = {
        "metric_name": name,
        "metric_type": metric_type,
        "value": float(value),
        "unit": unit,
        "tags": _plain(tags or {}),
        "source": source,
    }
    sidecar = os.environ.get(SIDECAR_ENV)
    if sidecar:
        with Path(sidecar).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
    return record


PUBLISHED_COLUMNS = ["metric_name", "label", "breakdown", "value", "unit", "tags", "source", "published", "reason"]


def publish(metrics: Iterable[Metric]) -> pd.DataFrame:
    """Check a report's KPIs against the registry, then publish the defined ones (the single way to publish).

    Args:
        metrics: what the report's KPI module's `metrics()` returns.

    Returns:
        One row per metric: metric_name, label (the registry's), breakdown (the value of the registry's
        breakdown tag, "" when none), value, unit, tags, source, published (bool), reason (why not published);
        it carries the KPIs' models as what it was read from (statex_bi.reads).

    Raises:
        ParamsError: a name is not in the registry or its unit differs from the registry's; nothing
            is published then.
    """
    import pandas as pd

    metrics = list(metrics)
    kpis = registry.check((item.name, item.unit) for item in metrics)
    rows = []
    for item in metrics:
        breakdown = kpis[item.name].breakdown_key
        tags = _plain(item.tags)
        row = {"metric_name": item.name, "label": kpis[item.name].label,
               "breakdown": str(tags.get(breakdown, "")) if breakdown else "",
               "value": None, "unit": item.unit, "tags": tags, "source": item.source, "published": False,
               "reason": item.reason or "undefined for the period (nothing to divide by)"}
        if item.defined and not item.reason:
            record = metric(item.name, float(item.value), unit=item.unit, metric_type=item.metric_type,
                            tags=tags, source=item.source)
            row |= {"value": record["value"], "published": True, "reason": ""}
        rows.append(row)
    from statex_bi.reads import Reads, stamp

    # A table of these rows was read from the KPIs' models (the registry's `models`).
    models = {model for item in metrics for model in kpis[item.name].models}
    return stamp(pd.DataFrame.from_records(rows, columns=PUBLISHED_COLUMNS), Reads(models))


def _plain(tags: dict[str, Any]) -> dict[str, Any]:
    """Tags as JSON-safe values (numpy scalars become floats, everything else strings)."""
    out = {}
    for key, val in tags.items():
        if val is None or isinstance(val, (str, bool, int)):
            out[str(key)] = val
        elif isinstance(val, Real):
            out[str(key)] = float(val) if math.isfinite(float(val)) else None
        else:
            out[str(key)] = str(val)
    return out


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a double
        return False


def _check(record: Any) -> str | None:
    """What is wrong with one sidecar record, or None when it can be loaded as it is."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    name = record.get("metric_name")
    if not isinstance(name, str) or not name.strip():
        return f"metric_name {name!r} is not a non-empty string"
    value = record.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        return f"metric {name!r}: value {value!r} is not a finite number"
    if record.get("metric_type") not in METRIC_TYPES:
        return f"metric {name!r}: metric_type {record.get('metric_type')!r} is not one of {', '.join(METRIC_TYPES)}"
    for key in ("unit", "source"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"metric {name!r}: {key} {record[key]!r} is not a string"
    if record.get("tags") is not None and not isinstance(record["tags"], dict):
        return f"metric {name!r}: tags {record['tags']!r} is not a JSON object"
    return None


def read_sidecar(path: Path) -> list[dict[str, Any]]:
    """The records a notebook published (empty when it published none), each checked as `metric` checks it.

    The file is written by code running in the notebook, which may bypass `metric`; nothing it holds
    reaches the warehouse unchecked.

    Raises:
        SidecarError: a line is not JSON, or not a record `metric` would write (names file, line, field).
    """
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise SidecarError(path.name, number, f"not JSON ({exc})") from None
        problem = _check(record)
        if problem:
            raise SidecarError(path.name, number, problem)
        records.append(record)
    return records
