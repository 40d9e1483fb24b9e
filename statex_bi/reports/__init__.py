"""The report runner behind `statex-bi run PARAMS` (entry point: runner.run_params).

params   params files: notebooks, period, timeouts, parameters
pool     one child process per notebook (execute), N at a time, notebook timeout kills the tree
kernel   warm kernels: each a fork of its child, with the report libraries imported once per run
staging  the run's private staging folder; publishing what passed the secret scan
status   the runner's own verdict per notebook (succeeded, failed, timed_out, kernel_died)
export   self-contained stakeholder HTML (templates/statex), exported in the runner's process
metrics  published KPIs -> monitoring.monitoring_metrics, keyed by run id and report
secrets  secret parameters refused, secret values searched for in every file a run writes
manifest outputs/<run_id>/manifest.json;  index  outputs/index.html;  sentry  failures to Sentry
"""
