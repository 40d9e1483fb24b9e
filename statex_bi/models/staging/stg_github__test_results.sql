-- One row per test per run from raw_github.test_results, renamed and typed.
select
    cast(test_result_id as string) as test_result_id,
    cast(test_run_id as string) as test_run_id,
    cast(started_at as timestamp) as started_at,
    cast(position as bigint) as position,
    cast(file as string) as file,
    cast(full_name as string) as full_name,
    cast(status as string) as status,
    cast(duration_ms as double) as duration_ms
from {{ source('github', 'test_results') }}
