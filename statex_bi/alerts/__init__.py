"""Alerts on the KPIs every report publishes: rules, evaluation, life cycle, notifications.

    rules.py      params/alerts.yaml read and validated (rules and the severity routing)
    evaluate.py   each rule as SQL over monitoring.monitoring_metrics, for one run
    findings.py   what an evaluation produces, and the SQL pieces the rule kinds share
    anomaly.py    the anomaly rule: weekly-seasonal (STL) residuals over calendar days
    lifecycle.py  monitoring.monitoring_alerts: open, keep, resolve; never a duplicate open alert
    channels.py   Slack, e-mail (SMTP + STARTTLS), signed webhook, Sentry
    notify.py     routing by severity, retries with backoff, one channel's failure never stops another
    hook.py       `after_run`, which the report runner calls once the run's reports have published

The runner calls `hook.after_run` once the run's reports have published their KPIs into
monitoring.monitoring_metrics, before the notebooks that read alerts (the executive summary) run.
"""
