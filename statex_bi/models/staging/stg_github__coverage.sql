-- One row per coverage metric per run from raw_github.coverage (pct NULL where the summary said "Unknown").
select
    cast(coverage_id as string) as coverage_id,
    cast(test_run_id as string) as test_run_id,
    cast(started_at as timestamp) as started_at,
    cast(metric as string) as metric,
    cast(total as bigint) as total,
    cast(covered as bigint) as covered,
    cast(pct as double) as pct
from {{ source('github', 'coverage') }}
