"""Evaluate alert rules as SQL over monitoring.monitoring_metrics, for one run.

Each rule gives one `Finding` per subject that the current run published (the condition holds or
not), or a "no data" reason: the metric is not published by this run (a report not installed yet,
or left out with --only), or there is too little history to decide. No data is never an error and
never resolves an open alert.

- threshold: the run's value of each subject against the limit (several rows of one subject: the
  worst one counts).
- change: the run's `numerator`/`denominator` tags against those of the previous period by a
  one-sided two-proportion z test with the pooled standard error. The previous counts are the row's
  own `previous_numerator`/`previous_denominator` tags (computed from the warehouse when the report
  ran, so a first run is tested too), else those of the newest run whose period ends the day before
  this one starts and is as long (within 3 days).
- every finding whose KPI row of the run (or, with `explained_by`, that KPI's row) carries a `driver`
  tag (statex_bi.kpis.changes: the change's top driver in words) quotes it at the end of its message.
- anomaly: each point of the run's period against the `window` points before it. A series point is
  a `series_tag` value (a date, e.g. `day`) or, without one, a period as long as this run's; when
  several runs published a point the newest one counts. Robust z = 0.6745 (x - median) / MAD; when
  the MAD is 0, (x - median) / (1.2533 x mean absolute deviation); both 0: no decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import timedelta
from statistics import NormalDist
from typing import Any

import duckdb

from statex_bi.alerts.rules import Rule
from statex_bi.formatting import value_or_na
from statex_bi.periods import Period

TABLE = "monitoring.monitoring_metrics"


@dataclass(frozen=True)
class Finding:
    """One rule and subject, evaluated on one run."""

    rule: Rule
    subject: str
    holds: bool
    current: float | None
    threshold: float | None
    message: str
    report: str | None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """What one rule found: its findings, or why it could not be evaluated."""

    rule: Rule
    findings: list[Finding]
    no_data: str | None = None


def _filters(rule: Rule) -> tuple[str, list[Any]]:
    # Tag names are validated identifiers (rules.py), so they can sit in the JSON path literally.
    clauses, args = ["metric_name = ?"], [rule.metric]
    for key, value in rule.where.items():
        clauses.append(f"json_extract_string(tags, '$.{key}') = ?")
        args.append(value)
    return " AND ".join(clauses), args


def _subject(rule: Rule) -> str:
    if not rule.subject:
        return "'all'"
    parts = [f"'{key}=' || coalesce(json_extract_string(tags, '$.{key}'), '(none)')" for key in rule.subject]
    return f"concat_ws(', ', {', '.join(parts)})"


def about(rule: Rule, subject: str) -> str:
    """The start of a finding's message: the rule's title and, unless it covers everything, its subject.

    People read these (mail, Slack, the executive summary), so the KPI's code name stays out of them.
    """
    return rule.title if subject in ("all", "") else f"{rule.title} ({subject})"


def _rows(con: duckdb.DuckDBPyConnection, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _missing(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str) -> str | None:
    """Why the run has no row for the rule's metric, or None when it has."""
    where, args = _filters(rule)
    count = con.execute(f"SELECT count(*) FROM {TABLE} WHERE run_id = ? AND {where}", [run_id, *args]).fetchall()
    if count[0][0]:
        return None
    ever = con.execute(f"SELECT count(*) FROM {TABLE} WHERE metric_name = ?", [rule.metric]).fetchall()[0][0]
    tags = f" with {rule.where}" if rule.where else ""
    if ever:
        return f"{rule.metric}{tags} is not published by this run"
    return (f"{rule.metric} has never been published (its report is not installed or not in this run, "
            "or its source is not loaded)")


def _threshold(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str) -> Evaluation:
    where, args = _filters(rule)
    if rule.above is not None or rule.below is not None:
        limit, limit_args = "CAST(? AS DOUBLE)", [rule.above if rule.above is not None else rule.below]
    else:
        limit, limit_args = f"TRY_CAST(json_extract_string(tags, '$.{rule.above_tag or rule.below_tag}') AS DOUBLE)", []
    upward = rule.above is not None or rule.above_tag is not None
    worst = "arg_max" if upward else "arg_min"
    sql = f"""
        WITH cur AS (
            SELECT {_subject(rule)} AS subject, CAST(value AS DOUBLE) AS value, {limit} AS threshold, unit, report
            FROM {TABLE} WHERE run_id = ? AND {where}
        )
        SELECT subject, {worst}(value, value) AS value, {worst}(threshold, value) AS threshold,
               any_value(unit) AS unit, any_value(report) AS report,
               {worst}(value, value) {'>' if upward else '<'} {worst}(threshold, value) AS holds
        FROM cur GROUP BY subject ORDER BY subject
    """
    findings = []
    for row in _rows(con, sql, [*limit_args, run_id, *args]):
        if row["threshold"] is None:
            continue  # the row lacks the tag holding its limit: nothing to compare with
        word = "above" if upward else "below"
        state = f"is {word}" if row["holds"] else f"is not {word}"
        value, limit = value_or_na(row["value"], row["unit"]), value_or_na(row["threshold"], row["unit"])
        if value == limit and row["value"] != row["threshold"]:  # rounding hides the difference: show it
            value, limit = f"{row['value']:,.4f}", f"{row['threshold']:,.4f}"
        message = f"{about(rule, row['subject'])}: {value}, {state} the limit of {limit}"
        findings.append(Finding(rule, row["subject"], bool(row["holds"]), row["value"], row["threshold"], message,
                                row["report"], {"unit": row["unit"]}))
    if not findings:
        return Evaluation(rule, [], f"{rule.metric} rows carry no '{rule.above_tag or rule.below_tag}' tag to compare")
    return Evaluation(rule, findings)


def _change(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str, period: Period) -> Evaluation:
    where, args = _filters(rule)
    subject = _subject(rule)
    counts = ("TRY_CAST(json_extract_string(tags, '$.numerator') AS DOUBLE) AS x, "
              "TRY_CAST(json_extract_string(tags, '$.denominator') AS DOUBLE) AS n")
    own_previous = ("TRY_CAST(json_extract_string(tags, '$.previous_numerator') AS DOUBLE) AS px, "
                    "TRY_CAST(json_extract_string(tags, '$.previous_denominator') AS DOUBLE) AS pn")
    sql = f"""
        WITH cur AS (
            SELECT {subject} AS subject, {counts}, {own_previous}, report, unit FROM {TABLE}
            WHERE run_id = ? AND {where}
        ), prev AS (
            SELECT {subject} AS subject, {counts}, run_id,
                   row_number() OVER (PARTITION BY {subject} ORDER BY recorded_at DESC, run_id DESC) AS rn
            FROM {TABLE}
            WHERE {where} AND run_id <> ? AND period_end = ? AND abs(datediff('day', period_start, period_end) - ?) <= 3
        ), pair AS (
            SELECT cur.subject, cur.report, cur.unit, cur.x AS x1, cur.n AS n1,
                   CASE WHEN cur.pn IS NOT NULL THEN cur.px ELSE prev.x END AS x0,
                   CASE WHEN cur.pn IS NOT NULL THEN cur.pn ELSE prev.n END AS n0,
                   CASE WHEN cur.pn IS NULL THEN prev.run_id END AS previous_run_id
            FROM cur LEFT JOIN prev ON prev.subject = cur.subject AND prev.rn = 1
        )
        SELECT *, x1 / n1 AS p1, x0 / n0 AS p0, (x1 + x0) / (n1 + n0) AS pooled,
               (x1 / n1 - x0 / n0) / sqrt(((x1 + x0) / (n1 + n0)) * (1 - (x1 + x0) / (n1 + n0)) * (1 / n1 + 1 / n0))
                   AS z
        FROM pair ORDER BY subject
    """
    length = (period.end - period.start).days
    rows = _rows(con, sql, [run_id, *args, *args, run_id, period.start - timedelta(days=1), length])
    critical = NormalDist().inv_cdf(1 - rule.alpha)
    findings, missing = [], []
    for row in rows:
        if not row["n1"] or row["x1"] is None:
            missing.append(f"[{row['subject']}] has no numerator/denominator tags")
            continue
        if row["n0"] is None or row["x0"] is None or not row["n0"]:
            missing.append(f"[{row['subject']}] has no previous period ({period.previous()}) in the history")
            continue
        if row["z"] is None or row["pooled"] in (0, 1):
            missing.append(f"[{row['subject']}] both periods are all or nothing: no test possible")
            continue
        z, delta = float(row["z"]), float(row["p1"] - row["p0"])
        down = rule.direction == "down"
        p_value = NormalDist().cdf(z) if down else 1 - NormalDist().cdf(z)
        holds = (z <= -critical and -delta >= rule.min_change) if down else (z >= critical and delta >= rule.min_change)
        verdict = "significant" if p_value < rule.alpha else "not significant"
        message = (
            f"{about(rule, row['subject'])}: went from {row['p0']:.2%} "
            f"({row['x0']:,.0f} of {row['n0']:,.0f}) in the previous period to {row['p1']:.2%} "
            f"({row['x1']:,.0f} of {row['n1']:,.0f}); one-sided two-proportion z test: z = {z:.2f}, "
            f"p {'< 0.0001' if p_value < 0.0001 else f'= {p_value:.4f}'}, {verdict} at alpha {rule.alpha:g}"
        )
        context = {"x1": row["x1"], "n1": row["n1"], "x0": row["x0"], "n0": row["n0"], "z": z, "p_value": p_value,
                   "previous_run_id": row["previous_run_id"], "unit": row["unit"]}
        findings.append(Finding(rule, row["subject"], holds, float(row["p1"]), float(row["p0"]), message,
                                row["report"], context))
    if not findings:
        return Evaluation(rule, [], "; ".join(missing) or "no rows")
    return Evaluation(rule, findings)


def _anomaly(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str, period: Period) -> Evaluation:
    where, args = _filters(rule)
    subject = _subject(rule)
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
                   row_number() OVER (PARTITION BY {subject}, {key} ORDER BY recorded_at DESC, run_id DESC) AS rn
            FROM {TABLE} WHERE {where} AND {scope}
        ), series AS (
            SELECT subject, k, v, unit, report, row_number() OVER (PARTITION BY subject ORDER BY k) AS i
            FROM pts WHERE rn = 1 AND k IS NOT NULL
        ), cur AS (
            SELECT * FROM series WHERE k BETWEEN ? AND ?
        ), trail AS (
            SELECT c.subject, c.k, s.v AS h
            FROM cur c JOIN series s ON s.subject = c.subject AND s.i < c.i AND s.i >= c.i - ?
        ), med AS (
            SELECT subject, k, median(h) AS m, count(*) AS n FROM trail GROUP BY subject, k
        ), dev AS (
            SELECT t.subject, t.k, median(abs(t.h - med.m)) AS mad, avg(abs(t.h - med.m)) AS meanad
            FROM trail t JOIN med USING (subject, k) GROUP BY t.subject, t.k
        )
        SELECT cur.subject, cur.k, cur.v, cur.unit, cur.report, med.m, coalesce(med.n, 0) AS n, dev.mad, dev.meanad,
               CASE WHEN dev.mad > 0 THEN 0.6745 * (cur.v - med.m) / dev.mad
                    WHEN dev.meanad > 0 THEN (cur.v - med.m) / (1.2533 * dev.meanad) END AS z,
               CASE WHEN dev.mad > 0 THEN dev.mad / 0.6745 WHEN dev.meanad > 0 THEN 1.2533 * dev.meanad END AS scale
        FROM cur LEFT JOIN med USING (subject, k) LEFT JOIN dev USING (subject, k)
        ORDER BY cur.subject, cur.k
    """
    rows = _rows(con, sql, [*args, *scope_args, period.start, period.end, rule.window])
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_subject.setdefault(row["subject"], []).append(row)
    findings, missing = [], []
    for name, points in by_subject.items():
        tested = [p for p in points if p["n"] >= rule.min_history and p["z"] is not None]
        if not tested:
            most = max(p["n"] for p in points)
            missing.append(f"[{name}] has {most} point(s) of history before its points in this period, "
                           f"needs {rule.min_history}")
            continue

        def beyond(p: dict[str, Any]) -> float:
            z = float(p["z"])
            return {"up": z, "down": -z, "both": abs(z)}[rule.direction]

        worst = max(tested, key=beyond)
        z = float(worst["z"])
        holds = beyond(worst) >= rule.z
        sign = -1 if rule.direction == "down" or (rule.direction == "both" and z < 0) else 1
        limit = float(worst["m"]) + sign * rule.z * float(worst["scale"])
        when = worst["k"].isoformat() if hasattr(worst["k"], "isoformat") else str(worst["k"])
        unit = worst["unit"]
        message = (
            f"{about(rule, name)}: {value_or_na(worst['v'], unit)} on {when} against a median of "
            f"{value_or_na(worst['m'], unit)} over the {worst['n']} point(s) before it (robust z = {z:.1f}, "
            f"limit {rule.z:g}; {len(tested)} point(s) of this period tested)"
        )
        context = {"point": when, "median": worst["m"], "mad": worst["mad"], "z": z, "history": int(worst["n"]),
                   "tested_points": len(tested), "unit": unit}
        findings.append(Finding(rule, name, holds, float(worst["v"]), limit, message, worst["report"], context))
    if not findings:
        return Evaluation(rule, [], "; ".join(missing) or "no points in this period")
    return Evaluation(rule, findings)


def _driver(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str, subject: str) -> str | None:
    """Why the finding's KPI moved, as its report worded it (the `driver` tag), or None."""
    if rule.explained_by:
        clauses, args = "metric_name = ?", [rule.explained_by]
    else:
        where, args = _filters(rule)
        clauses = f"{where} AND {_subject(rule)} = ?"
        args = [*args, subject]
    rows = con.execute(
        f"SELECT json_extract_string(tags, '$.driver') FROM {TABLE} WHERE run_id = ? AND {clauses} "
        "AND json_extract_string(tags, '$.driver') IS NOT NULL ORDER BY CAST(tags AS VARCHAR) LIMIT 1",
        [run_id, *args]).fetchall()
    return rows[0][0] if rows else None


def _explained(con: duckdb.DuckDBPyConnection, evaluation: Evaluation, run_id: str) -> Evaluation:
    findings = []
    for finding in evaluation.findings:
        why = _driver(con, evaluation.rule, run_id, finding.subject)
        if why:
            finding = replace(finding, message=f"{finding.message}. Why: {why}",
                              context={**finding.context, "driver": why})
        findings.append(finding)
    return replace(evaluation, findings=findings)


def evaluate(con: duckdb.DuckDBPyConnection, rules: list[Rule], run_id: str, period: Period) -> list[Evaluation]:
    """Evaluate every rule against the run's published KPIs and the history before them.

    Args:
        con: a warehouse connection (read-only is enough).
        rules: the validated rules.
        run_id: the run just finished; its rows in monitoring_metrics are the current values.
        period: the period the run covered.

    Returns:
        One Evaluation per rule, in the rules' order.
    """
    out = []
    for rule in rules:
        why = _missing(con, rule, run_id)
        if why:
            out.append(Evaluation(rule, [], why))
        elif rule.kind == "threshold":
            out.append(_explained(con, _threshold(con, rule, run_id), run_id))
        elif rule.kind == "change":
            out.append(_explained(con, _change(con, rule, run_id, period), run_id))
        else:
            out.append(_explained(con, _anomaly(con, rule, run_id, period), run_id))
    return out


def context_json(finding: Finding) -> str:
    """The finding's context for monitoring_alerts.fastify_context (a JSON column)."""
    return json.dumps({"rule_kind": finding.rule.kind, "metric": finding.rule.metric, **finding.context},
                      default=str, sort_keys=True)
