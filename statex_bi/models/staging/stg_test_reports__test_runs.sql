-- One row per test-suite run from raw_test_reports.test_runs, renamed and typed; nothing is filtered here.
select
    cast(test_run_id as string) as test_run_id,
    'test-reports' as origin,
    lower(cast(runner as string)) as runner,
    cast(sha as string) as sha,
    cast(branch as string) as branch,
    cast(attempt as bigint) as attempt,
    cast(started_at as timestamp) as started_at,
    cast(exit_code as bigint) as exit_code,
    cast(wall_s as double) as wall_s,
    cast(tests_total as bigint) as tests_total,
    cast(tests_passed as bigint) as tests_passed,
    cast(tests_failed as bigint) as tests_failed,
    cast(tests_skipped as bigint) as tests_skipped,
    cast(tests_todo as bigint) as tests_todo,
    cast(test_files as bigint) as test_files,
    cast(suites_reported as bigint) as suites_reported,
    cast(has_coverage as boolean) as has_coverage
from {{ source('test_reports', 'test_runs') }}
