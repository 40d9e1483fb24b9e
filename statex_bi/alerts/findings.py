"""What evaluating a rule produces (`Finding`, `Evaluation`) and the SQL pieces every rule kind shares."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from statex_bi.alerts.rules import Rule

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


def filters(rule: Rule) -> tuple[str, list[Any]]:
    """The SQL condition (and its arguments) selecting the rule's KPI rows."""
    # Tag names are validated identifiers (rules.py), so they can sit in the JSON path literally.
    clauses, args = ["metric_name = ?"], [rule.metric]
    for key, value in rule.where.items():
        clauses.append(f"json_extract_string(tags, '$.{key}') = ?")
        args.append(value)
    return " AND ".join(clauses), args


def subject_sql(rule: Rule) -> str:
    """The SQL expression naming a row's subject ("route=GET /x"), or 'all' for a rule without one."""
    if not rule.subject:
        return "'all'"
    parts = [f"'{key}=' || coalesce(json_extract_string(tags, '$.{key}'), '(none)')" for key in rule.subject]
    return f"concat_ws(', ', {', '.join(parts)})"


def about(rule: Rule, subject: str) -> str:
    """The start of a finding's message: the rule's title and, unless it covers everything, its subject.

    People read these (mail, Slack, the executive summary), so the KPI's code name stays out of them.
    """
    return rule.title if subject in ("all", "") else f"{rule.title} ({subject})"


def rows_of(con: duckdb.DuckDBPyConnection, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    """The query's rows as dicts by column name."""
    cursor = con.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]



def context_json(finding: Finding) -> str:
    """The finding's context for monitoring_alerts.fastify_context (a JSON column)."""
    return json.dumps({"rule_kind": finding.rule.kind, "metric": finding.rule.metric, **finding.context},
                      default=str, sort_keys=True)
