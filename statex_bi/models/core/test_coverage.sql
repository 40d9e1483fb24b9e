-- One row per coverage metric per run that wrote a coverage summary, with its run's runner, commit and start.
with coverage as (
    select * from {{ ref('stg_github__coverage') }}
    union all
    select * from {{ ref('stg_test_reports__coverage') }}
)

select
    coverage.coverage_id,
    coverage.test_run_id,
    runs.runner,
    runs.sha,
    runs.started_at,
    coverage.metric,
    coverage.total,
    coverage.covered,
    coverage.pct
from coverage
inner join {{ ref('test_runs') }} as runs using (test_run_id)
