-- One row per UTC day with an OpenAI usage or cost bucket: what OpenAI billed (USD) and the usage
-- it reported, over every project of the organisation.
with costs as (
    select
        cost_date as day,
        sum(case when currency = 'USD' then amount else 0 end) as billed_usd,
        sum(case when currency = 'USD' then 0 else 1 end) as non_usd_cost_lines
    from {{ ref('stg_openai__costs') }}
    group by cost_date
),

usage as (
    select
        usage_date as day,
        sum(input_tokens) as input_tokens,
        sum(cached_input_tokens) as cached_input_tokens,
        sum(output_tokens) as output_tokens,
        sum(requests) as requests
    from {{ ref('stg_openai__usage_completions') }}
    group by usage_date
)

select
    coalesce(c.day, u.day) as day,
    coalesce(c.billed_usd, 0) as billed_usd,
    coalesce(c.non_usd_cost_lines, 0) as non_usd_cost_lines,
    c.day is not null as has_cost_bucket,
    coalesce(u.input_tokens, 0) as input_tokens,
    coalesce(u.cached_input_tokens, 0) as cached_input_tokens,
    coalesce(u.output_tokens, 0) as output_tokens,
    coalesce(u.requests, 0) as requests
from costs c
full outer join usage u on u.day = c.day
