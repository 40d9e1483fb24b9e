"""The raw tables and column types each connector declares, read from the connectors themselves.

tests/models/test_project.py compares them with the dbt sources (statex_bi/models/staging/_*__sources.yml),
which is what lets a source that is not loaded yet build as empty typed models.
"""

from __future__ import annotations

from statex_bi.sources.ai_calls import settings as ai_calls
from statex_bi.sources.billing import settings as billing
from statex_bi.sources.cloudflare import settings as cloudflare
from statex_bi.sources.coinbase import settings as coinbase
from statex_bi.sources.ga4 import settings as ga4
from statex_bi.sources.github import settings as github
from statex_bi.sources.openai import settings as openai
from statex_bi.sources.paypal import settings as paypal
from statex_bi.sources.sentry import settings as sentry
from statex_bi.sources.stripe import settings as stripe
from statex_bi.sources.test_reports import settings as test_reports

# dlt data type -> the SQL type the sources.yml states (portable: DuckDB and Spark both accept them).
SQL_TYPES = {"text": "string", "bigint": "bigint", "double": "double", "bool": "boolean", "timestamp": "timestamp",
             "date": "date"}
GA4_TYPES = {int: "bigint", float: "double"}


def _sql(columns: dict[str, dict]) -> dict[str, str]:
    return {name: _type(hints) for name, hints in columns.items()}


def _type(hints: dict) -> str:
    if hints["data_type"] == "decimal":
        return f"decimal({hints['precision']},{hints['scale']})"
    return SQL_TYPES[hints["data_type"]]


def _ga4(report: ga4.Report) -> dict[str, str]:
    dimensions = {column: "date" if column == "date" else "string" for _, column in report.dimensions}
    return {**dimensions, **{metric.column: GA4_TYPES[metric.kind] for metric in report.metrics}}


def connector_columns() -> dict[str, dict[str, dict[str, str]]]:
    """dbt source name -> table -> column -> SQL type, as the connectors declare them.

    The fx connector declares no column hints (its quarantine variant would inherit them): its columns
    are docs/raw_tables.md's, typed as its parser returns them (date, str, float).
    """
    return {
        "ga4": {**{report.table: _ga4(report) for report in ga4.REPORTS},
                ga4.PROPERTY_TABLE: _sql(ga4.PROPERTY_COLUMNS), ga4.FLAGS_TABLE: _sql(ga4.FLAG_COLUMNS)},
        "fx": {"eur_reference_rates": {"date": "date", "currency": "string", "rate": "double"}},
        "stripe": {table: _sql(columns) for table, columns in stripe.COLUMNS.items()},
        "paypal": {table: _sql(columns) for table, columns in paypal.COLUMNS.items()},
        "coinbase": {table: _sql(columns) for table, columns in coinbase.COLUMNS.items()},
        "sentry": {"gen_ai_spans": _sql(sentry.SPAN_COLUMNS), "route_performance": _sql(sentry.ROUTE_COLUMNS),
                   "web_vitals": _sql(sentry.VITALS_COLUMNS), "issues": _sql(sentry.ISSUE_COLUMNS),
                   "event_volumes": _sql(sentry.EVENT_VOLUME_COLUMNS), "queue_jobs": _sql(sentry.JOB_COLUMNS),
                   "db_queries": _sql(sentry.QUERY_COLUMNS), "user_feedback": _sql(sentry.FEEDBACK_COLUMNS)},
        "ai_calls": {ai_calls.TABLE: _sql(ai_calls.COLUMNS)},
        "openai": {"usage_completions": _sql(openai.USAGE_COLUMNS), "costs": _sql(openai.COSTS_COLUMNS)},
        "billing": {billing.TABLE: _sql(billing.CHARGE_COLUMNS), billing.FILES_TABLE: _sql(billing.FILE_COLUMNS),
                    billing.CORRECTIONS_TABLE: _sql(billing.CORRECTION_COLUMNS)},
        "cloudflare": {table: _sql(columns) for table, columns in cloudflare.COLUMNS.items()},
        "github": {table: _sql(columns) for table, columns in github.COLUMNS.items()},
        "test_reports": {table: _sql(columns) for table, columns in test_reports.COLUMNS.items()},
    }
