-- One row per prototype that made at least one AI call, over all loaded time.
-- final_tier: the tier of the prototype's last successful call (the tier that served it).
with calls as (
    select * from {{ ref('ai_calls') }}
    where prototype_id is not null
),

last_success as (
    select prototype_id, tier as final_tier
    from (
        select
            prototype_id,
            tier,
            row_number() over (partition by prototype_id order by started_at desc, span_id desc) as success_rank
        from calls
        where is_success
    ) ranked
    where success_rank = 1
),

per_prototype as (
    select
        prototype_id,
        min(started_at) as first_call_at,
        max(started_at) as last_call_at,
        min(case when is_success then started_at end) as first_success_at,
        count(*) as calls,
        sum(case when is_success then 1 else 0 end) as successful_calls,
        count(distinct tier) as tiers_used,
        sum(input_tokens) as input_tokens,
        sum(cached_input_tokens) as cached_input_tokens,
        sum(output_tokens) as output_tokens
    from calls
    group by prototype_id
)

select
    p.prototype_id,
    p.first_call_at,
    cast(p.first_call_at as date) as first_call_day,
    p.last_call_at,
    p.first_success_at,
    p.successful_calls > 0 as has_success,
    s.final_tier,
    p.calls,
    p.successful_calls,
    p.calls - p.successful_calls as failed_calls,
    p.tiers_used,
    p.input_tokens,
    p.cached_input_tokens,
    p.output_tokens
from per_prototype p
left join last_success s on s.prototype_id = p.prototype_id
