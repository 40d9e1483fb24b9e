-- Sentry's aggregates of BullMQ queue spans per queue and period (day, ISO week, calendar month), typed.
-- Each period's percentiles are Sentry's own over that whole period.
with source as (
    select * from {{ source('sentry', 'queue_jobs') }}
)

select
    -- keys
    cast(grain as string) as grain,
    cast(period_start as date) as period_start,
    cast(period_end as date) as period_end,
    cast(queue as string) as queue,
    -- counts
    cast(published as bigint) as published,
    cast(processed as bigint) as processed,
    cast(attempts as bigint) as attempts,
    cast(retries as bigint) as retries,
    cast(failure_rate as double) * cast(attempts as bigint) as failed_attempts,
    -- rates and times
    cast(failure_rate as double) as failure_rate,
    cast(p50_ms as double) as p50_ms,
    cast(p95_ms as double) as p95_ms,
    cast(wait_p95_ms as double) as wait_p95_ms
from source
