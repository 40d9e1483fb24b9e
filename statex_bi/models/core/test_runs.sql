-- One row per run of the test suite: GitHub Actions artifacts and test-report folders unioned.
-- A run loaded from both (the same runner, sha, attempt and start) counts once, its GitHub copy kept.
with unioned as (
    select *, 1 as origin_rank from {{ ref('stg_github__test_runs') }}
    union all
    select *, 2 as origin_rank from {{ ref('stg_test_reports__test_runs') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by runner, sha, attempt, started_at order by origin_rank, test_run_id
        ) as copy_rank
    from unioned
)

select
    test_run_id, origin, runner, sha, branch, attempt, started_at, exit_code, wall_s, tests_total, tests_passed,
    tests_failed, tests_skipped, tests_todo, test_files, files_failed, suites_reported, has_coverage
from ranked
where copy_rank = 1
