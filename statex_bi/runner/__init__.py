"""The report runner behind `statex-bi run PARAMS` (entry point: run.run_params) and `statex-bi backfill`.

params   params files: notebooks, period, timeouts, parameters
pool     one child process per notebook (execute), N at a time, notebook timeout kills the tree
kernel   warm kernels: each a fork of its child, with the report libraries imported once per run
staging  the run's private staging folder; publishing what passed the secret scan
status   the runner's own verdict per notebook (succeeded, failed, timed_out, kernel_died)
export   self-contained stakeholder HTML (templates/statex), exported in the runner's process
metrics  published KPIs -> monitoring.monitoring_metrics, keyed by run id and report
manifest outputs/<run_id>/manifest.json;  index  outputs/index.html;  sentry  failures to Sentry
kpi_page outputs/metrics.html;  lineage  the dbt docs site of the run;  pdf  report pages as PDFs
backfill `statex-bi backfill`: the same runs over earlier periods
crons    Sentry Crons check-ins around `statex-bi run`
"""
