-- Queue depth per BullMQ queue at the end of each UTC day: jobs published minus jobs processed, summed
-- from the first loaded day (an estimate: a queue is taken to be empty when the data starts).
with days as (
    select * from {{ ref('stg_sentry__queue_jobs') }}
    where grain = 'day'
),

depth as (
    select
        queue,
        period_start as day,
        published,
        processed,
        cast(sum(published - processed) over (
            partition by queue order by period_start rows between unbounded preceding and current row
        ) as bigint) as depth_end_of_day
    from days
)

select * from depth
