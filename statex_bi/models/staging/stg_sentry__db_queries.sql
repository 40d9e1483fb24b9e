-- Sentry's aggregates of db spans per normalised query, route and period (day, ISO week, calendar month), typed.
with source as (
    select * from {{ source('sentry', 'db_queries') }}
)

select
    -- keys
    cast(grain as string) as grain,
    cast(period_start as date) as period_start,
    cast(period_end as date) as period_end,
    cast(query_group as string) as query_group,
    cast(route as string) as route,
    -- what
    cast(query as string) as query,
    -- numbers
    cast(calls as bigint) as calls,
    cast(slow_calls as bigint) as slow_calls,
    cast(p95_ms as double) as p95_ms,
    cast(total_ms as double) as total_ms
from source
