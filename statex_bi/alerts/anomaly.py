"""The anomaly rule: each point of a run's period against what its trailing history predicts.

A daily series (the rule's `series_tag` holds a date) is laid out over calendar days: from its first
point, a day without a row of a COUNTER KPI (e.g. the day's AI cost) counted nothing, so it is 0; a
missing day of a GAUGE KPI is interpolated and does not count as history. Each day from the third week
on is predicted from the days before it by a robust STL fit (statsmodels; period 7): the last trend
value plus that weekday's season, so a Monday is compared with what Mondays cost, not with the week's
median. The prediction errors of the history's days (at least a week of them: 21 days of history)
give the scale (MAD / 0.6745), and each day of the period gets the robust z of its own error. (The
in-sample residuals of a robust STL fit are no scale: the fit bends towards the last days, a spike on
the period's last day included, and its residuals' MAD is a fraction of the noise.)

A series of periods (no `series_tag`: one point per earlier run as long as this one) has no weekly
season: its values themselves are compared with the trailing points' median and MAD.

Both give a robust z per point of the period, with a one-sided (or two-sided) normal tail probability.
The rule's `z` sets the level (alpha = the tail beyond z); the p-values of every point of the period
and every subject are adjusted together (Benjamini-Hochberg), so the worst of 7 or 30 days is not
an uncorrected test. The finding names the most surprising point.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.tsa.seasonal import STL

from statex_bi.alerts.findings import TABLE, Evaluation, Finding, about, filters, rows_of, subject_sql
from statex_bi.alerts.rules import Rule
from statex_bi.formatting import value_or_na
from statex_bi.kpis.stats import false_discovery
from statex_bi.periods import Period

SEASON_DAYS = 7
# Two weeks to fit the first prediction, one more week of predictions to measure their errors.
MIN_HISTORY_DAYS = 3 * SEASON_DAYS
MAD_TO_SD = 0.6745
MEAN_AD_TO_SD = 1.2533


def _spread(residuals: np.ndarray) -> float:
    """A robust standard deviation: MAD / 0.6745, else 1.2533 x mean absolute deviation, else 0."""
    centre = np.median(residuals)
    mad = float(np.median(np.abs(residuals - centre)))
    if mad > 0:
        return mad / MAD_TO_SD
    return MEAN_AD_TO_SD * float(np.mean(np.abs(residuals - centre)))


def _tail(z: np.ndarray, direction: str) -> np.ndarray:
    if direction == "up":
        return stats.norm.sf(z)
    if direction == "down":
        return stats.norm.cdf(z)
    return 2 * stats.norm.sf(np.abs(z))


def _one_day_ahead(values: np.ndarray, day: int) -> float:
    """What the days before `day` predict for it: the last trend value plus the same weekday's season
    of a robust weekly STL fit."""
    fit = STL(values[:day], period=SEASON_DAYS, robust=True).fit()
    return float(fit.trend[-1] + fit.seasonal[day - SEASON_DAYS])


def _daily(points: pd.DataFrame, rule: Rule, period: Period) -> tuple[pd.DataFrame, int] | str:
    """The period's days with their one-day-ahead expected values and robust z, and the number of
    history days; or why they cannot be judged."""
    points = points.assign(k=pd.to_datetime(points["k"])).set_index("k").sort_index()
    first = max(points.index.min(), pd.Timestamp(period.start - timedelta(days=rule.window)))
    days = pd.date_range(first, pd.Timestamp(period.end), freq="D")
    counter = bool((points["metric_type"] == "COUNTER").all())
    series = points["v"].reindex(days)
    observed = series.notna().to_numpy()
    values = (series.fillna(0.0) if counter else series.interpolate(limit_direction="both")).to_numpy(float)
    history = np.asarray(days < pd.Timestamp(period.start))
    n_history = int(history.sum() if counter else (observed & history).sum())
    needed = max(rule.min_history, MIN_HISTORY_DAYS)
    if n_history < needed or not history[: 2 * SEASON_DAYS].all():
        return f"has {n_history} calendar day(s) of history before this period, needs {needed}"
    # Every day from the third week on is predicted from the days before it; the history's prediction
    # errors give the scale, so a period day is judged exactly as the history's days were.
    expected = np.array([_one_day_ahead(values, day) for day in range(2 * SEASON_DAYS, len(days))])
    errors = values[2 * SEASON_DAYS:] - expected
    judged = ~history[2 * SEASON_DAYS:]
    scale = _spread(errors[~judged])
    if scale <= 0:
        return "its history's prediction errors do not vary: no decision"
    frame = pd.DataFrame({"k": days[2 * SEASON_DAYS:], "v": values[2 * SEASON_DAYS:], "expected": expected,
                          "z": errors / scale, "scale": scale})
    return frame[judged & (observed[2 * SEASON_DAYS:] | counter)], n_history


def _periods(points: pd.DataFrame, rule: Rule, period: Period) -> tuple[pd.DataFrame, int] | str:
    """Period points (one per run period): each current point against the `window` points before it."""
    points = points.sort_values("k").reset_index(drop=True)
    history = points[points["k"] < period.start].tail(rule.window)
    current = points[(points["k"] >= period.start) & (points["k"] <= period.end)]
    if len(history) < rule.min_history:
        return f"has {len(history)} point(s) of history before its points in this period, needs {rule.min_history}"
    values = history["v"].to_numpy(float)
    scale = _spread(values)
    if scale <= 0:
        return "its history does not vary: no decision"
    centre = float(np.median(values))
    frame = current.assign(expected=centre, z=(current["v"] - centre) / scale, scale=scale)
    return frame[["k", "v", "expected", "z", "scale"]], len(history)


def anomaly(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str, period: Period) -> Evaluation:
    """Evaluate an anomaly rule on the run's period (see the module's docstring)."""
    where, args = filters(rule)
    subject = subject_sql(rule)
    if rule.series_tag:
        key = f"TRY_CAST(json_extract_string(tags, '$.{rule.series_tag}') AS DATE)"
        scope, scope_args = "TRUE", []
    else:
        key = "period_end"
        scope = "abs(datediff('day', period_start, period_end) - ?) <= 3"
        scope_args = [(period.end - period.start).days]
    sql = f"""
        WITH pts AS (
            SELECT {subject} AS subject, {key} AS k, CAST(value AS DOUBLE) AS v, unit, report,
                   CAST(metric_type AS VARCHAR) AS metric_type,
                   row_number() OVER (PARTITION BY {subject}, {key} ORDER BY recorded_at DESC, run_id DESC) AS rn
            FROM {TABLE} WHERE {where} AND {scope}
        )
        SELECT subject, k, v, unit, report, metric_type FROM pts
        WHERE rn = 1 AND k IS NOT NULL AND k <= ? ORDER BY subject, k
    """
    points = pd.DataFrame(rows_of(con, sql, [*args, *scope_args, period.end]),
                          columns=["subject", "k", "v", "unit", "report", "metric_type"])
    judged: list[tuple[str, pd.DataFrame, int, dict[str, Any]]] = []
    missing = []
    for name, group in points.groupby("subject", sort=True):
        if not ((group["k"] >= period.start) & (group["k"] <= period.end)).any():
            continue
        result = _daily(group, rule, period) if rule.series_tag else _periods(group, rule, period)
        if isinstance(result, str):
            missing.append(f"[{name}] {result}")
            continue
        frame, n_history = result
        if not frame.empty:
            judged.append((str(name), frame, n_history, group.iloc[-1].to_dict()))
    if not judged:
        return Evaluation(rule, [], "; ".join(missing) or "no points in this period")
    alpha = float(_tail(np.array([rule.z if rule.direction != "down" else -rule.z]), rule.direction)[0])
    tails = [_tail(frame["z"].to_numpy(float), rule.direction) for _, frame, _, _ in judged]
    adjusted = iter(false_discovery(np.concatenate(tails), alpha))
    tested = sum(len(t) for t in tails)
    findings = []
    for (name, frame, n_history, last), tail in zip(judged, tails, strict=True):
        frame = frame.assign(p=tail, p_adjusted=[next(adjusted) for _ in tail])
        worst = frame.sort_values(["p_adjusted", "p"]).iloc[0]
        holds = bool(worst["p_adjusted"] < alpha)
        # the value one point alone would need: its tail below alpha / (points tested), BH's first step
        z_needed = float(stats.norm.isf(alpha / tested / (2 if rule.direction == "both" else 1)))
        sign = -1 if rule.direction == "down" or (rule.direction == "both" and worst["z"] < 0) else 1
        limit = float(worst["expected"] + sign * z_needed * worst["scale"])
        when = worst["k"].date() if isinstance(worst["k"], pd.Timestamp) else worst["k"]
        when = when.isoformat() if isinstance(when, date) else str(when)
        unit = last["unit"]
        basis = ("the weekly-seasonal STL fit" if rule.series_tag else "the median") + \
            f" over {n_history} {'calendar day(s)' if rule.series_tag else 'point(s)'} of history"
        message = (
            f"{about(rule, name)}: {value_or_na(float(worst['v']), unit)} on {when} against an expected "
            f"{value_or_na(float(worst['expected']), unit)} ({basis}; robust z = {worst['z']:.1f}, false-discovery "
            f"adjusted p = {worst['p_adjusted']:.4f} over {tested} point(s), level {alpha:.2g} from z {rule.z:g}; "
            f"one point alone needs {value_or_na(limit, unit)})"
        )
        context = {"point": when, "expected": float(worst["expected"]), "scale": float(worst["scale"]),
                   "z": float(worst["z"]), "p_value": float(worst["p"]), "p_adjusted": float(worst["p_adjusted"]),
                   "history": n_history, "tested_points": tested, "unit": unit}
        findings.append(Finding(rule, name, holds, float(worst["v"]), limit, message, last["report"], context))
    return Evaluation(rule, findings, "; ".join(missing) or None)
