-- Database queries per normalised query, route and period: calls, mean, p95 and total time, calls over 500 ms.
with queries as (
    select * from {{ ref('stg_sentry__db_queries') }}
)

select
    grain,
    period_start,
    period_end,
    query_group,
    query,
    route,
    calls,
    total_ms,
    total_ms / nullif(calls, 0) as avg_ms,
    p95_ms,
    slow_calls,
    cast(slow_calls as double) / nullif(calls, 0) as slow_share
from queries
