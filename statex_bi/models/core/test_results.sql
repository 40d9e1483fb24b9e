-- One row per test per run, with its run's runner, commit, attempt and start for period filters.
with results as (
    select * from {{ ref('stg_github__test_results') }}
    union all
    select * from {{ ref('stg_test_reports__test_results') }}
)

select
    results.test_result_id,
    results.test_run_id,
    runs.runner,
    runs.sha,
    runs.branch,
    runs.attempt,
    runs.started_at,
    results.position,
    results.file,
    results.full_name,
    results.test_key,
    results.status,
    results.runner_status,
    results.duration_ms,
    results.message
from results
inner join {{ ref('test_runs') }} as runs using (test_run_id)
