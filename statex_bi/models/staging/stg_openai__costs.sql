-- OpenAI organization costs (the bill), daily buckets, renamed and typed. Amounts are in major units.
with source as (
    select * from {{ source('openai', 'costs') }}
)

select
    -- keys
    cast(bucket_start as date) as cost_date,
    cast(line_item as string) as line_item,
    cast(project_id as string) as project_id,
    -- money
    cast(amount as double) as amount,
    upper(cast(currency as string)) as currency,
    -- timestamps (UTC)
    cast(bucket_start as timestamp) as bucket_start,
    cast(bucket_end as timestamp) as bucket_end
from source
