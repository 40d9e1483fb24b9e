"""Evaluate alert rules as SQL over monitoring.monitoring_metrics, for one run.

Each rule gives one `Finding` per subject that the current run published (the condition holds or
not), or a "no data" reason: the metric is not published by this run (a report not installed yet,
or left out with --only), there is too little history to decide, or a subject's sample is below the
rule's minimum ("too little data"; reported beside the other subjects' findings). No data is never an
error and never resolves an open alert.

- threshold: the run's value of each subject against the limit (several rows of one subject: the
  worst one counts). A rate rule (`events_tag`) fires on an exact one-sided binomial test at `alpha`,
  Benjamini-Hochberg adjusted over the rule's subjects (`kpis.stats`). A rule with `bound_tag` compares
  the value's confidence bound (the KPI's interval) instead: it fires when the KPI's three-way verdict
  fails, and a row without the bound is too little data. With `series_tag`, every row of a subject is a
  point judged on its own (false discovery over all points); the subject holds when any point does.
- change: the run's `numerator`/`denominator` tags against the previous period's counts, which the
  report publishes as `previous_numerator`/`previous_denominator` (else the newest run whose period
  ends the day before this one starts and is as long, within 3 days): one-sided score test divided
  by the `dispersion` tag's square root, or Fisher's exact test for small counts; Benjamini-Hochberg
  over subjects; and the change must reach the rule's minimum.
- every finding whose KPI row of the run (or, with `explained_by`, that KPI's row) carries a `driver`
  tag (statex_bi.kpis.changes: the change's top driver in words) quotes it at the end of its message.
- forecast: a spend forecast's chance of exceeding its budget (tags of the row) against the rule's
  `probability`, or the spend so far against the budget.
- anomaly: each point of the run's period against its trailing history (alerts/anomaly.py: STL
  residuals over calendar days for a daily series), false discovery controlled over the points.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

import duckdb

from statex_bi.alerts.anomaly import anomaly
from statex_bi.alerts.findings import TABLE, Evaluation, Finding, about, filters, rows_of, subject_sql
from statex_bi.alerts.rules import Rule
from statex_bi.formatting import value_or_na
from statex_bi.kpis.stats import Exceedance, exceedance, false_discovery, rate_change
from statex_bi.periods import Period


def _missing(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str) -> str | None:
    """Why the run has no row for the rule's metric, or None when it has."""
    where, args = filters(rule)
    count = con.execute(f"SELECT count(*) FROM {TABLE} WHERE run_id = ? AND {where}", [run_id, *args]).fetchall()
    if count[0][0]:
        return None
    ever = con.execute(f"SELECT count(*) FROM {TABLE} WHERE metric_name = ?", [rule.metric]).fetchall()[0][0]
    tags = f" with {rule.where}" if rule.where else ""
    if ever:
        return f"{rule.metric}{tags} is not published by this run"
    return (f"{rule.metric} has never been published (its report is not installed or not in this run, "
            "or its source is not loaded)")


def _tag(key: str, alias: str) -> str:
    return f"TRY_CAST(json_extract_string(tags, '$.{key}') AS DOUBLE) AS {alias}"


def _sample(rule: Rule, row: dict[str, Any]) -> str | None:
    """Why the row's sample is too small to judge, or None (rules without `sample_tag` always judge)."""
    if rule.bound_tag is not None and row["bound"] is None:
        return f"[{row['label']}] no {rule.bound_tag} (its interval is unbounded on that side)"
    if rule.sample_tag is None:
        return None
    size = row["sample"]
    if size is None or size < rule.min_sample:
        have = "no" if size is None else f"{size:,.0f}"
        return f"[{row['label']}] {have} {rule.sample_tag}, needs {rule.min_sample:,}"
    return None


def _threshold(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str) -> Evaluation:
    where, args = filters(rule)
    if rule.above is not None or rule.below is not None:
        limit, limit_args = "CAST(? AS DOUBLE)", [rule.above if rule.above is not None else rule.below]
    else:
        limit, limit_args = f"TRY_CAST(json_extract_string(tags, '$.{rule.above_tag or rule.below_tag}') AS DOUBLE)", []
    upward = rule.above is not None or rule.above_tag is not None
    sample = _tag(rule.sample_tag, "sample") if rule.sample_tag else "NULL AS sample"
    events = _tag(rule.events_tag, "events") if rule.events_tag else "NULL AS events"
    bound = _tag(rule.bound_tag, "bound") if rule.bound_tag else "NULL AS bound"
    subject, order = subject_sql(rule), "DESC" if upward else "ASC"
    point = f"json_extract_string(tags, '$.{rule.series_tag}') AS point" if rule.series_tag else "NULL AS point"
    # several rows of one subject: the worst value counts, unless each is a point of a series (each judged)
    sql = f"""
        WITH cur AS (
            SELECT {subject} AS subject, {point}, CAST(value AS DOUBLE) AS value, {limit} AS threshold, unit, report,
                   {sample}, {events}, {bound}, row_number() OVER (PARTITION BY {subject} ORDER BY value {order}) AS rn
            FROM {TABLE} WHERE run_id = ? AND {where} AND value IS NOT NULL
        )
        SELECT * FROM cur WHERE {'TRUE' if rule.series_tag else 'rn = 1'} ORDER BY subject, point
    """
    rows = [row for row in rows_of(con, sql, [*limit_args, run_id, *args]) if row["threshold"] is not None]
    for row in rows:  # what messages name: the subject, and the point of a series
        row["label"] = row["subject"] if row["point"] is None else f"{row['subject']}, {rule.series_tag}={row['point']}"
    if not rows:
        return Evaluation(rule, [], f"{rule.metric} rows carry no '{rule.above_tag or rule.below_tag}' tag to compare")
    too_little = [why for why in (_sample(rule, row) for row in rows) if why]
    judged = [row for row in rows if _sample(rule, row) is None]
    tests = [_rate_test(rule, row, upward) for row in judged] if rule.events_tag else []
    adjusted = false_discovery([t.p_value for t in tests], rule.alpha) if tests else []
    findings = []
    for i, row in enumerate(judged):
        word = "above" if upward else "below"
        value, limit_text = value_or_na(row["value"], row["unit"]), value_or_na(row["threshold"], row["unit"])
        if value == limit_text and row["value"] != row["threshold"]:  # rounding hides the difference: show it
            value, limit_text = f"{row['value']:,.4f}", f"{row['threshold']:,.4f}"
        context: dict[str, Any] = {"unit": row["unit"]}
        if tests:
            test, p_adjusted = tests[i], adjusted[i]
            holds = p_adjusted < rule.alpha
            side = "lower" if upward else "upper"
            message = (
                f"{about(rule, row['label'])}: {value} ({row['events']:,.0f} of {row['sample']:,.0f} "
                f"{rule.sample_tag}), one-sided {1 - rule.alpha:.0%} {side} bound "
                f"{value_or_na(test.bound, row['unit'])}, "
                f"{'is' if holds else 'is not'} {word} the limit of {limit_text} (exact binomial test "
                f"p = {test.p_value:.4f}; false-discovery adjusted over {len(tests)} "
                f"{'point(s)' if rule.series_tag else 'subject(s)'} p = {p_adjusted:.4f}, alpha {rule.alpha:g})"
            )
            context |= {"events": row["events"], "sample": row["sample"], "bound": test.bound,
                        "p_value": test.p_value, "p_adjusted": p_adjusted, "subjects_tested": len(tests)}
        elif rule.bound_tag:
            holds = row["bound"] > row["threshold"] if upward else row["bound"] < row["threshold"]
            side = "lower" if upward else "upper"
            message = (f"{about(rule, row['label'])}: {value}, its 95% interval's {side} end "
                       f"{value_or_na(row['bound'], row['unit'])} {'is' if holds else 'is not'} {word} the limit of "
                       f"{limit_text}")
            context["bound"] = row["bound"]
        else:
            holds = row["value"] > row["threshold"] if upward else row["value"] < row["threshold"]
            state = f"is {word}" if holds else f"is not {word}"
            message = f"{about(rule, row['label'])}: {value}, {state} the limit of {limit_text}"
        if not tests and row["sample"] is not None:
            context["sample"] = row["sample"]
        if row["point"] is not None:
            context[rule.series_tag] = row["point"]
        findings.append(Finding(rule, row["subject"], bool(holds), row["value"], row["threshold"], message,
                                row["report"], context))
    if rule.series_tag:
        findings = _per_subject(findings, upward)
    return Evaluation(rule, findings, f"too little data: {'; '.join(too_little)}" if too_little else None)


def _per_subject(findings: list[Finding], upward: bool) -> list[Finding]:
    """One finding per subject from its points' (a series, judged each): the subject holds when any point
    does, and its finding is the strongest point's (smallest adjusted p, else the worst value), saying
    how many of the subject's points hold."""
    by_subject: dict[str, list[Finding]] = {}
    for finding in findings:
        by_subject.setdefault(finding.subject, []).append(finding)
    collapsed = []
    for points in by_subject.values():
        chosen = min(points, key=lambda f: (not f.holds, f.context.get("p_adjusted", 0.0),
                                            -f.current if upward else f.current))
        held = sum(f.holds for f in points)
        collapsed.append(replace(chosen, message=f"{chosen.message}; {held} of {len(points)} point(s) hold",
                                 context=chosen.context | {"points": len(points), "points_holding": held}))
    return collapsed


def _rate_test(rule: Rule, row: dict[str, Any], upward: bool) -> Exceedance:
    """The exact test of a rate row: its events (the `events_tag`, else value x sample) of its sample."""
    trials = int(round(row["sample"]))
    events = row["events"] if row["events"] is not None else row["value"] * trials
    row["events"] = min(max(int(round(events)), 0), trials)
    return exceedance(row["events"], trials, row["threshold"], "above" if upward else "below", 1 - rule.alpha)


def _change(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str, period: Period) -> Evaluation:
    where, args = filters(rule)
    subject = subject_sql(rule)
    counts = f"{_tag('numerator', 'x')}, {_tag('denominator', 'n')}"
    # The report publishes the previous period's counts, read from the warehouse with this period's; the
    # previous run's row is the fallback for KPIs that do not.
    previous_tags = (f"{_tag('previous_numerator', 'px')}, {_tag('previous_denominator', 'pn')}, "
                     f"{_tag('dispersion', 'dispersion')}")
    sql = f"""
        WITH cur AS (
            SELECT {subject} AS subject, {counts}, {previous_tags}, report, unit
            FROM {TABLE} WHERE run_id = ? AND {where}
        ), prev AS (
            SELECT {subject} AS subject, {counts}, run_id,
                   row_number() OVER (PARTITION BY {subject} ORDER BY recorded_at DESC, run_id DESC) AS rn
            FROM {TABLE}
            WHERE {where} AND run_id <> ? AND period_end = ? AND abs(datediff('day', period_start, period_end) - ?) <= 3
        )
        SELECT cur.subject, cur.report, cur.unit, cur.x AS x1, cur.n AS n1, cur.dispersion,
               CASE WHEN cur.pn IS NOT NULL THEN cur.px ELSE prev.x END AS x0,
               CASE WHEN cur.pn IS NOT NULL THEN cur.pn ELSE prev.n END AS n0,
               CASE WHEN cur.pn IS NULL THEN prev.run_id END AS previous_run_id
        FROM cur LEFT JOIN prev ON prev.subject = cur.subject AND prev.rn = 1
        ORDER BY subject
    """
    length = (period.end - period.start).days
    rows = rows_of(con, sql, [run_id, *args, *args, run_id, period.start - timedelta(days=1), length])
    tested, missing = [], []
    for row in rows:
        if not row["n1"] or row["x1"] is None:
            missing.append(f"[{row['subject']}] has no numerator/denominator tags")
            continue
        if row["n0"] is None or row["x0"] is None or not row["n0"]:
            missing.append(f"[{row['subject']}] has no previous period ({period.previous()}) in the history")
            continue
        x1, n1, x0, n0 = (int(round(row[k])) for k in ("x1", "n1", "x0", "n0"))
        test = rate_change(x1, n1, x0, n0, dispersion=row["dispersion"] or 1.0,
                           alternative="smaller" if rule.direction == "down" else "larger")
        if math.isnan(test.p_value):
            missing.append(f"[{row['subject']}] both periods are all or nothing: no test possible")
            continue
        tested.append((row, test))
    adjusted = false_discovery([test.p_value for _, test in tested], rule.alpha)
    findings = []
    for (row, test), p_adjusted in zip(tested, adjusted, strict=True):
        p1, p0 = row["x1"] / row["n1"], row["x0"] / row["n0"]
        change = p1 - p0 if rule.direction == "up" else p0 - p1
        relative = change / p0 if p0 else math.inf
        large = change >= rule.min_change and relative >= rule.min_relative_change
        holds = p_adjusted < rule.alpha and large
        verdict = "significant" if p_adjusted < rule.alpha else "not significant"
        if p_adjusted < rule.alpha and not large:
            verdict += f", but smaller than the minimum change ({_change_floor(rule)})"
        p_text = "< 0.0001" if test.p_value < 0.0001 else f"= {test.p_value:.4f}"
        message = (
            f"{about(rule, row['subject'])}: went from {p0:.2%} ({row['x0']:,.0f} of {row['n0']:,.0f}) in the "
            f"previous period to {p1:.2%} ({row['x1']:,.0f} of {row['n1']:,.0f}); one-sided {test.method}: "
            f"z = {test.statistic:.2f}, p {p_text}"
            + (f" (false-discovery adjusted over {len(tested)} subjects: {p_adjusted:.4f})" if len(tested) > 1 else "")
            + f", {verdict} at alpha {rule.alpha:g}"
        )
        context = {"x1": row["x1"], "n1": row["n1"], "x0": row["x0"], "n0": row["n0"], "z": test.statistic,
                   "p_value": test.p_value, "p_adjusted": p_adjusted, "test": test.method,
                   "dispersion": test.dispersion, "previous_run_id": row["previous_run_id"], "unit": row["unit"]}
        findings.append(Finding(rule, row["subject"], holds, p1, p0, message, row["report"], context))
    if not findings:
        return Evaluation(rule, [], "; ".join(missing) or "no rows")
    return Evaluation(rule, findings)


def _change_floor(rule: Rule) -> str:
    parts = []
    if rule.min_change:
        parts.append(f"{rule.min_change * 100:g} pt")
    if rule.min_relative_change:
        parts.append(f"{rule.min_relative_change:.0%} of the previous rate")
    return " and ".join(parts)


def _driver(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str, subject: str) -> str | None:
    """Why the finding's KPI moved, as its report worded it (the `driver` tag), or None."""
    if rule.explained_by:
        clauses, args = "metric_name = ?", [rule.explained_by]
    else:
        where, args = filters(rule)
        clauses = f"{where} AND {subject_sql(rule)} = ?"
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


def _forecast(con: duckdb.DuckDBPyConnection, rule: Rule, run_id: str) -> Evaluation:
    where, args = filters(rule)
    tags = ", ".join(_tag(key, key) for key in ("budget_usd", "mtd_cost_usd", "exceed_probability",
                                                 "forecast_low_usd", "forecast_high_usd"))
    sql = f"""
        SELECT {subject_sql(rule)} AS subject, CAST(value AS DOUBLE) AS value, unit, report, {tags}
        FROM {TABLE} WHERE run_id = ? AND {where} ORDER BY subject
    """
    findings, missing = [], []
    for row in rows_of(con, sql, [run_id, *args]):
        if row["budget_usd"] is None or row["mtd_cost_usd"] is None or row["exceed_probability"] is None:
            missing.append(f"[{row['subject']}] carries no budget_usd, mtd_cost_usd and exceed_probability tags")
            continue
        unit, budget, spent = row["unit"], row["budget_usd"], row["mtd_cost_usd"]
        chance = row["exceed_probability"]
        holds = spent >= budget or chance >= rule.probability
        interval = (f" (90% prediction interval {value_or_na(row['forecast_low_usd'], unit)} to "
                    f"{value_or_na(row['forecast_high_usd'], unit)})" if row["forecast_low_usd"] is not None else "")
        message = (
            f"{about(rule, row['subject'])}: {value_or_na(spent, unit)} spent of a {value_or_na(budget, unit)} "
            f"budget{' (already over it)' if spent >= budget else ''}; month-end forecast "
            f"{value_or_na(row['value'], unit)}{interval}, a {chance:.0%} chance of exceeding the budget "
            f"(alert at {rule.probability:.0%})"
        )
        context = {"unit": unit, "budget_usd": budget, "mtd_cost_usd": spent, "exceed_probability": chance,
                   "forecast_low_usd": row["forecast_low_usd"], "forecast_high_usd": row["forecast_high_usd"]}
        findings.append(Finding(rule, row["subject"], bool(holds), row["value"], budget, message, row["report"],
                                context))
    if not findings:
        return Evaluation(rule, [], "; ".join(missing) or "no rows")
    return Evaluation(rule, findings)


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
        elif rule.kind == "forecast":
            out.append(_explained(con, _forecast(con, rule, run_id), run_id))
        else:
            out.append(_explained(con, anomaly(con, rule, run_id, period), run_id))
    return out
