-- One row per UTC day, category and outcome of what Sentry received (stats_v2), typed. sum(quantity) is
-- bytes for attachments and the event count for the other categories; sum(times_seen) counts attachments.
-- events = items received (attachments counted, not weighed); attachment_bytes only for attachments.
-- Rows loaded before times_seen was requested have none: their attachment count is unknown.
with source as (
    select * from {{ source('sentry', 'event_volumes') }}
)

select
    cast(day as date) as day,
    lower(cast(category as string)) as category,
    lower(cast(outcome as string)) as outcome,
    cast(quantity as bigint) as quantity,
    cast(times_seen as bigint) as times_seen,
    case
        when lower(cast(category as string)) = 'attachment' then cast(times_seen as bigint)
        else cast(quantity as bigint)
    end as events,
    case when lower(cast(category as string)) = 'attachment' then cast(quantity as bigint) end as attachment_bytes
from source
