-- OpenAI organization usage (completions), daily buckets, renamed and typed.
with source as (
    select * from {{ source('openai', 'usage_completions') }}
)

select
    -- keys
    cast(bucket_start as date) as usage_date,
    cast(model as string) as model,
    cast(project_id as string) as project_id,
    cast(batch as boolean) as is_batch,
    cast(service_tier as string) as service_tier,
    -- numbers (input_cached_tokens are part of input_tokens)
    cast(input_tokens as bigint) as input_tokens,
    cast(input_cached_tokens as bigint) as cached_input_tokens,
    cast(output_tokens as bigint) as output_tokens,
    cast(num_model_requests as bigint) as requests,
    -- timestamps (UTC)
    cast(bucket_start as timestamp) as bucket_start,
    cast(bucket_end as timestamp) as bucket_end
from source
