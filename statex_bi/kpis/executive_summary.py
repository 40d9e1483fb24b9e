"""The executive summary: headline KPIs against targets, changes, open alerts and the claims ledger.

Everything comes from monitoring.monitoring_metrics (what the run's reports published) and
monitoring.monitoring_alerts (what the alert rules found after them), so a report that starts
publishing a KPI named in `params/targets.yaml` or `params/claims.yaml` appears here with no code
change. The runner runs the summary after the run's other reports have published and the alert
rules were evaluated (notebook metadata `statex_bi.runs_after_reports`), and lists it first.

Definitions:
- *Current value*: the KPI row of the run (`run_id`), else the newest row any run published for this
  very period (the summary run on its own shows what the reports last published, linking to that
  run's pages); rows with more tags than the entry names are matched on the named tags only, and the
  first by report then tags is taken.
- *Previous value*: the row's `previous_value` tag: the report computed the KPI for the previous
  period from the warehouse when it ran (statex_bi.kpis.changes), so a first run or one after a
  skipped period has it too. A row without the tag (published before it existed) falls back to the
  newest row of another run whose period ends the day before this period starts and is as long
  (within 3 days, so months compare with months).
- *Driver*: the row's `driver` tag, the change's top driver in words (statex_bi.kpis.drivers).
- *Interval* of a KPI row: its `ci_low`/`ci_high` tags (a statistical KPI's 95 % confidence
  interval), else its `range_low`/`range_high` tags (a savings KPI's scenario range from the price
  catalog); none for the others. A side tagged null while the other is a number is unbounded (an
  order-statistic or Kaplan-Meier bound that the data cannot reach), never a missing interval. A KPI
  with no honest interval says what its verdict rests on in its `interval_basis` tag (e.g. a census of
  the period's calls at catalog prices), shown in the interval's place.
- *Unverified prices*: a row's `unverified_prices` tag (a savings KPI priced in part by catalog rows
  not checked against the reference) is printed beside its interval, so no such row drives a verdict
  silently.
- *Edges*, one convention for every target: "at least T" is met by a value equal to T, "at most T"
  too (T itself is on the good side), "near N within w" by N x (1 +- w) inclusive.
- *Verdict* (claims and targets): with an interval, *holds* when the whole interval meets the
  target, *fails* when none of it does, *inconclusive* otherwise; without one, holds / fails on the
  value itself. "Not measurable from the data loaded" when the run published no such KPI.
- *Traffic light*: green when the target holds; red when it fails, unless the value (without an
  interval) misses by at most `tolerance` of the target (relative; absolute for a target of 0:
  `tolerance` itself), then amber; amber too when inconclusive. "No data" when the run published
  no such KPI; "no target" when the entry sets none.
- Criteria are printed in the KPI's unit (the registry's, docs/metrics.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from statex_bi import targets
from statex_bi.config import PARAMS_DIR, read_yaml
from statex_bi.exceptions import ParamsError
from statex_bi.formatting import value_or_na
from statex_bi.kpis.drivers import DRIVER_TAG, PREVIOUS_TAG
from statex_bi.kpis.verdicts import FAILS, HOLDS, INCONCLUSIVE, judge
from statex_bi.metrics import registry
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period
from statex_bi.reads import recorded
from statex_bi.tables import anchor

GREEN, AMBER, RED, NO_DATA, NO_TARGET = "green", "amber", "red", "no data", "no target"
NOT_MEASURABLE = "not measurable from the data loaded"
# Tags carrying a KPI row's interval, most specific first, and how the interval is named.
INTERVAL_TAGS = (("ci_low", "ci_high", "95% CI"), ("range_low", "range_high", "scenario range"))
UNVERIFIED_TAG = "unverified_prices"  # price rows behind a figure that were not checked against the reference
# The tag of a KPI row without an honest interval saying what its verdict rests on instead.
INTERVAL_BASIS_TAG = "interval_basis"


def _read(path: str | Path, key: str) -> list[dict[str, Any]]:
    file = Path(path) if Path(path).is_absolute() else PARAMS_DIR.parent / path
    data = read_yaml(file)
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("metric") for e in entries):
        raise ParamsError(f"{file}: must hold a '{key}' list whose entries each name a 'metric'")
    return [_resolved(entry, f"{file}: {entry['metric']}") for entry in entries]


def _resolved(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """The entry with each `{target: NAME}` (params/targets.yaml) replaced by its number."""
    out = {key: targets.resolve(value, f"{where}: {key}") for key, value in entry.items()}
    if isinstance(out.get("holds_if"), dict):
        out["holds_if"] = {key: targets.resolve(value, f"{where}: holds_if.{key}")
                           for key, value in out["holds_if"].items()}
    return out


def resolve_run(con: duckdb.DuckDBPyConnection, period: Period, run_id: str) -> tuple[str | None, str]:
    """The run whose KPIs the summary shows, and a note when it is not the one given.

    Without a run id (a notebook opened in JupyterLab), the newest run that published KPIs for this
    very period is used, and the note says so.
    """
    if run_id:
        return run_id, ""
    rows = con.execute(
        "SELECT run_id FROM monitoring.monitoring_metrics WHERE period_start = ? AND period_end = ? "
        "ORDER BY recorded_at DESC LIMIT 1", [period.start, period.end]).fetchall()
    if not rows:
        return None, f"No run has published KPIs for {period} yet: run `statex-bi run` first."
    return rows[0][0], f"No run id was given: showing the newest run for {period}, {rows[0][0]}."


def _lookup(con: duckdb.DuckDBPyConnection, run_id: str | None, period: Period, metric: str,
            tags: dict[str, Any]) -> tuple[dict[str, Any] | None, float | None]:
    """The KPI's row for the period (value, unit, tags, report, run_id) and the previous period's value.

    The row is the run's own when it published one, else the newest one any run published for this
    very period: the summary run on its own (`--only executive_summary`) shows what the reports last
    published. The previous value is the row's `previous_value` tag (computed from the warehouse when
    the report ran, statex_bi.kpis.changes), else the newest row of an earlier run for the period before.
    """
    where = " AND ".join(["metric_name = ?", *(f"json_extract_string(tags, '$.{k}') = ?" for k in tags)])
    args = [metric, *(str(v) for v in tags.values())]
    current = con.execute(
        f"SELECT CAST(value AS DOUBLE), unit, CAST(tags AS VARCHAR), report, run_id "
        f"FROM monitoring.monitoring_metrics WHERE period_start = ? AND period_end = ? AND {where} "
        "ORDER BY run_id IS NOT DISTINCT FROM ? DESC, recorded_at DESC, report, CAST(tags AS VARCHAR) LIMIT 1",
        [period.start, period.end, *args, run_id]).fetchall()
    if not current:
        return None, None
    value, unit, tag_text, report, row_run = current[0]
    row = {"value": value, "unit": unit, "tags": json.loads(tag_text or "{}"), "report": report, "run_id": row_run}
    if PREVIOUS_TAG in row["tags"]:
        previous = row["tags"][PREVIOUS_TAG]
        return row, None if previous is None else float(previous)
    earlier = con.execute(
        f"SELECT CAST(value AS DOUBLE) FROM monitoring.monitoring_metrics WHERE {where} AND run_id <> ? "
        "AND period_end = ? AND abs(datediff('day', period_start, period_end) - ?) <= 3 "
        "ORDER BY recorded_at DESC LIMIT 1",
        [*args, row_run, period.start - pd.Timedelta(days=1), (period.end - period.start).days]).fetchall()
    return row, (earlier[0][0] if earlier else None)


def _change_text(value: float, previous: float | None, unit: str | None) -> str:
    if previous is None:
        return "no value for the previous period"
    delta = value - previous
    if unit == "fraction":
        return f"{delta * 100:+.2f} pt (was {value_or_na(previous, unit)})"
    relative = f", {delta / abs(previous):+.0%}" if previous else ""
    return f"{'+' if delta >= 0 else '-'}{value_or_na(abs(delta), unit)}{relative} (was {value_or_na(previous, unit)})"


def interval(tags: dict[str, Any]) -> tuple[float, float, str] | None:
    """A row's interval (low, high, name) from its tags (INTERVAL_TAGS), or None; a side tagged null
    beside a numeric other side is unbounded (-inf or inf)."""
    for low_key, high_key, name in INTERVAL_TAGS:
        if low_key not in tags or high_key not in tags:
            continue
        low, high = tags[low_key], tags[high_key]
        if (low is None and high is None) or (low is not None and pd.isna(low)) or (high is not None and pd.isna(high)):
            continue
        return (-math.inf if low is None else float(low)), (math.inf if high is None else float(high)), name
    return None


def interval_text(bounds: tuple[float, float, str] | None, unit: str | None) -> str:
    """"95% CI 3.1% to 5.6%", or "" without an interval."""
    if bounds is None:
        return ""

    def side(end: float) -> str:
        return "no bound" if math.isinf(end) else value_or_na(end, unit)

    return f"{bounds[2]} {side(bounds[0])} to {side(bounds[1])}"


def caveat(tags: dict[str, Any]) -> str:
    """"; rests in part on unverified prices: a, b" for a row priced by unchecked catalog rows, else ""."""
    flagged = tags.get(UNVERIFIED_TAG)
    return f"; rests in part on unverified prices: {flagged}" if flagged else ""


def _light(entry: dict[str, Any], value: float, row_tags: dict[str, Any]) -> tuple[str, float | None, str]:
    """Traffic light, target value and the target's sign."""
    for key, word in (("at_least", "≥"), ("at_most", "≤")):
        target = entry.get(key)
        if f"{key}_tag" in entry:
            target = row_tags.get(entry[f"{key}_tag"])
        if target is None:
            continue
        target = float(target)
        bounds = interval(row_tags)
        verdict = judge(key, target, value, bounds)
        if verdict != FAILS or bounds is not None:
            return {HOLDS: GREEN, INCONCLUSIVE: AMBER, FAILS: RED}[verdict], target, word
        tolerance = float(entry.get("tolerance", 0.1))
        miss = (target - value) if key == "at_least" else (value - target)
        band = tolerance * abs(target) if target else tolerance
        return (AMBER if miss <= band else RED), target, word
    return NO_TARGET, None, ""


@recorded
def scorecard(con: duckdb.DuckDBPyConnection, period: Period, run_id: str | None,
              targets: str | Path = "params/targets.yaml") -> pd.DataFrame:
    """Headline KPIs of every report against their targets, with the change since the previous period.

    Returns:
        One row per target entry: label, report, run_id (the run that published the value), metric,
        value, unit, driver (the change's top driver in words, "" when not split), value_text (with the
        interval, when the row has one), target, target_text, light, previous, change_text.
    """
    rows = []
    for entry in _read(targets, "targets"):
        row, previous = _lookup(con, run_id, period, entry["metric"], entry.get("tags") or {})
        base = {"label": entry.get("label", entry["metric"]), "metric": entry["metric"]}
        if row is None:
            rows.append({**base, "report": entry.get("report"), "run_id": None, "value": None, "unit": None,
                         "driver": "", "value_text": "no data", "target": None, "target_text": "",
                         "light": NO_DATA, "previous": None, "change_text": "not published for this period"})
            continue
        light, target, word = _light(entry, row["value"], row["tags"])
        spread = interval_text(interval(row["tags"]), row["unit"])
        rows.append({**base, "report": row["report"], "run_id": row["run_id"], "value": row["value"],
                     "unit": row["unit"], "driver": str(row["tags"].get(DRIVER_TAG) or ""),
                     "value_text": value_or_na(row["value"], row["unit"])
                     + (f" ({spread}{caveat(row['tags'])})" if spread else ""),
                     "target": target,
                     "target_text": f"{word} {value_or_na(target, row['unit'])}" if word else "", "light": light,
                     "previous": previous, "change_text": _change_text(row["value"], previous, row["unit"])})
    return pd.DataFrame(rows)


def _criterion(rule: dict[str, Any], unit: str | None) -> tuple[str, float, float, str]:
    """The claim's target kind, target, tolerance and the criterion as text in the KPI's unit."""
    for kind, word in (("at_least", "≥"), ("at_most", "≤")):
        if kind in rule:
            return kind, float(rule[kind]), 0.0, f"{word} {value_or_na(float(rule[kind]), unit)}"
    if "near" in rule:
        near, within = float(rule["near"]), float(rule.get("within", 0.1))
        low, high = near - within * abs(near), near + within * abs(near)
        return "near", near, within, (f"{value_or_na(near, unit)} ± {within:.0%} "
                                      f"({value_or_na(low, unit)} to {value_or_na(high, unit)})")
    raise ParamsError(f"claims: holds_if must give at_least, at_most or near, got {rule!r}")


@recorded
def claims_ledger(con: duckdb.DuckDBPyConnection, period: Period, run_id: str | None,
                  claims: str | Path = "params/claims.yaml") -> pd.DataFrame:
    """Each seed claim beside the measured value and its interval, a three-way verdict and the report
    that measured it.

    Returns:
        One row per claim: claim, source, metric, measured, unit, measured_text, interval_text,
        criterion (in the KPI's unit), verdict (holds | fails | inconclusive | not measurable), report,
        run_id (the run that measured it), anchor (the id of the report's table that shows it, from the
        claim's `table`), note, measured_by_run.
    """
    units = {name: kpi.unit for name, kpi in registry.kpis().items()}
    rows = []
    for entry in _read(claims, "claims"):
        row, _ = _lookup(con, run_id, period, entry["metric"], entry.get("tags") or {})
        tags = ", ".join(f"{k}={v}" for k, v in (entry.get("tags") or {}).items())
        base = {"claim": entry.get("claim", entry["metric"]), "source": entry.get("source", ""),
                "metric": f"{entry['metric']}" + (f" [{tags}]" if tags else ""), "note": entry.get("note", ""),
                "anchor": anchor(entry["table"]) if entry.get("table") else ""}
        unit = row["unit"] if row else units.get(entry["metric"])
        kind, target, within, criterion = _criterion(entry.get("holds_if") or {}, unit)
        if row is None:
            rows.append({**base, "measured": None, "unit": unit, "measured_text": "—", "interval_text": "",
                         "criterion": criterion, "verdict": NOT_MEASURABLE, "report": entry.get("report"),
                         "run_id": None, "measured_by_run": False})
            continue
        bounds = interval(row["tags"])
        rows.append({**base, "measured": row["value"], "unit": unit,
                     "measured_text": value_or_na(row["value"], unit),
                     "interval_text": (interval_text(bounds, unit)
                                       or str(row["tags"].get(INTERVAL_BASIS_TAG) or "no interval published"))
                                      + caveat(row["tags"]),
                     "criterion": criterion, "verdict": judge(kind, target, row["value"], bounds, within),
                     "report": row["report"], "run_id": row["run_id"], "measured_by_run": True})
    return pd.DataFrame(rows)


@recorded
def open_alerts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every open alert, most severe first: severity, alert, subject, review (params file), since, message."""
    # Sorted on the ENUM column (CRITICAL > HIGH > MEDIUM > LOW), not on its text, which sorts MEDIUM first.
    return con.execute("""
        SELECT CAST(severity AS VARCHAR) AS severity_name, alert_name AS alert, subject, params AS review,
               strftime(created_at, '%Y-%m-%d %H:%M') AS since, alert_message AS message
        FROM monitoring.monitoring_alerts WHERE resolved_at IS NULL
        ORDER BY monitoring_alerts.severity DESC, created_at, alert_name, subject""").df().rename(
        columns={"severity_name": "severity"})


def sentence(card: pd.DataFrame, alerts: pd.DataFrame, ledger: pd.DataFrame) -> str:
    """One sentence: how many KPIs meet their target, open alerts, claims that hold."""
    lights = card["light"].value_counts()
    judged = int(lights.get(GREEN, 0) + lights.get(AMBER, 0) + lights.get(RED, 0))
    critical = int((alerts["severity"].isin(["CRITICAL", "HIGH"])).sum()) if len(alerts) else 0
    measured = ledger[ledger["verdict"] != NOT_MEASURABLE]
    text = f"{int(lights.get(GREEN, 0))} of {judged} KPIs with a target meet it"
    text += f"; {len(alerts)} open alert{'s' if len(alerts) != 1 else ''}"
    text += f" ({critical} high or critical)" if critical else ""
    counts = measured["verdict"].value_counts()
    text += (f"; {int(counts.get(HOLDS, 0))} of {len(measured)} measurable seed claims hold, "
             f"{int(counts.get(FAILS, 0))} fail and {int(counts.get(INCONCLUSIVE, 0))} are inconclusive"
             f" ({len(ledger) - len(measured)} not measurable from the data loaded).")
    return text


def run_reports(con: duckdb.DuckDBPyConnection, run_id: str | None) -> set[str]:
    """The reports that published KPIs in the run (their pages sit next to the summary's)."""
    rows = con.execute("SELECT DISTINCT report FROM monitoring.monitoring_metrics WHERE run_id = ?",
                       [run_id]).fetchall()
    return {r[0] for r in rows if r[0]}


def headline(con: duckdb.DuckDBPyConnection, period: Period, *, run_id: str = "",
             targets: str | Path = "params/targets.yaml", claims: str | Path = "params/claims.yaml",
             **params: Any) -> str:
    """The report's headline (`sentence`) for the run shown: `run_id`, else the period's newest."""
    shown_run, _ = resolve_run(con, period, run_id)
    return sentence(scorecard(con, period, shown_run, targets), open_alerts(con),
                    claims_ledger(con, period, shown_run, claims))


def notes(con: duckdb.DuckDBPyConnection, period: Period, *, run_id: str = "", **params: Any) -> list[str]:
    """Which run the page shows, when it is not the one asked for."""
    _, note = resolve_run(con, period, run_id)
    return [note] if note else []


def metrics(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[Metric]:
    """None: the summary shows what the other reports published and publishes nothing of its own."""
    return []
