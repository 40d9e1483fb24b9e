-- Background jobs per BullMQ queue and period: throughput, failures, retries, processing and waiting times,
-- and the backlog: published minus processed in the period, and the deepest and final queue depth of its days.
with jobs as (
    select * from {{ ref('stg_sentry__queue_jobs') }}
),

depth as (
    select * from {{ ref('queue_depth_daily') }}
),

depth_in_period as (
    select
        jobs.grain,
        jobs.period_start,
        jobs.queue,
        max(depth.depth_end_of_day) as peak_depth,
        max(case when depth.day = {{ dbt.dateadd('day', -1, 'jobs.period_end') }} then depth.depth_end_of_day end)
            as depth_at_end
    from jobs
    inner join depth
        on depth.queue = jobs.queue and depth.day >= jobs.period_start and depth.day < jobs.period_end
    group by jobs.grain, jobs.period_start, jobs.queue
)

select
    jobs.grain,
    jobs.period_start,
    jobs.period_end,
    jobs.queue,
    jobs.published,
    jobs.processed,
    jobs.published - jobs.processed as backlog_growth,
    depth_in_period.peak_depth,
    depth_in_period.depth_at_end,
    jobs.attempts,
    jobs.retries,
    jobs.failed_attempts,
    jobs.failure_rate,
    jobs.p50_ms,
    jobs.p95_ms,
    jobs.wait_p95_ms
from jobs
left join depth_in_period
    on depth_in_period.grain = jobs.grain
    and depth_in_period.period_start = jobs.period_start
    and depth_in_period.queue = jobs.queue
