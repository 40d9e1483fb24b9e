-- Grain: one row per grain (day, ISO week, calendar month), period and route.
-- Sentry's aggregates of http.server spans per route and period (day, ISO week, calendar month), typed.
-- Each period's percentiles are Sentry's own over that whole period; `(all)` is the row over all routes.
with source as (
    select * from {{ source('sentry', 'route_performance') }}
)

select
    -- keys
    cast(grain as string) as grain,
    cast(period_start as date) as period_start,
    cast(period_end as date) as period_end,
    cast(route as string) as route,
    -- numbers
    cast(requests as bigint) as requests,
    cast(failure_rate as double) as failure_rate,
    cast(failure_rate as double) * cast(requests as bigint) as failed_requests,
    cast(p50_ms as double) as p50_ms,
    cast(p95_ms as double) as p95_ms,
    -- the p95's 95 % order-statistic interval, read off Sentry's quantiles by the connector (null: unbounded)
    cast(p95_low_ms as double) as p95_low_ms,
    cast(p95_high_ms as double) as p95_high_ms,
    cast(avg_ms as double) as avg_ms
from source
