-- Events Sentry received per UTC day, category and outcome (stats_v2 sum(quantity)), typed.
with source as (
    select * from {{ source('sentry', 'event_volumes') }}
)

select
    cast(day as date) as day,
    lower(cast(category as string)) as category,
    lower(cast(outcome as string)) as outcome,
    cast(quantity as bigint) as quantity
from source
