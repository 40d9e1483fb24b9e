-- One row per AI call: Sentry spans and the JSONL import unioned and de-duplicated on span_id.
-- A call present in both sources counts once; its Sentry span is kept (the JSONL row fills in for
-- calls Sentry does not have, e.g. sampled out). The pricing provider is the tier (ollama / openai /
-- azure); when a record has no tier it is derived from gen_ai.system.
with sentry as (
    select
        span_id, trace_id, prototype_id, project, tier, tier_inferred, gen_ai_system, model, op, status,
        duration_ms, input_tokens, cached_input_tokens, output_tokens, started_at,
        'sentry' as record_source,
        1 as source_rank
    from {{ ref('stg_sentry__gen_ai_spans') }}
),

jsonl as (
    select
        span_id, trace_id, prototype_id, project, tier, tier_inferred, gen_ai_system, model, op, status,
        duration_ms, input_tokens, cached_input_tokens, output_tokens, started_at,
        'jsonl' as record_source,
        2 as source_rank
    from {{ ref('stg_ai_calls__calls') }}
),

unioned as (
    select * from sentry
    union all
    select * from jsonl
),

ranked as (
    select
        unioned.*,
        row_number() over (partition by span_id order by source_rank) as copy_rank,
        min(source_rank) over (partition by span_id) as first_source_rank,
        max(source_rank) over (partition by span_id) as last_source_rank
    from unioned
    where span_id is not null
),

calls as (
    select
        span_id,
        trace_id,
        prototype_id,
        project,
        coalesce(
            tier,
            case
                when gen_ai_system like '%azure%' or gen_ai_system like 'az.%' then 'azure'
                when gen_ai_system like '%ollama%' then 'ollama'
                when gen_ai_system like '%openai%' then 'openai'
                else gen_ai_system
            end
        ) as tier,
        -- the record carried no tier: the connector or this model took it from gen_ai.system
        coalesce(tier_inferred, false) or (tier is null and gen_ai_system is not null) as tier_inferred,
        -- the span reported token usage; without it (a timeout) a paid call's cost is unknown, not 0
        input_tokens is not null or output_tokens is not null as usage_reported,
        gen_ai_system,
        model,
        op,
        status,
        coalesce(status = 'ok', false) as is_success,
        duration_ms,
        coalesce(input_tokens, 0) as input_tokens,
        coalesce(cached_input_tokens, 0) as cached_input_tokens,
        coalesce(input_tokens, 0) - coalesce(cached_input_tokens, 0) as uncached_input_tokens,
        coalesce(output_tokens, 0) as output_tokens,
        started_at,
        cast(started_at as date) as day,
        record_source,
        case
            when first_source_rank = last_source_rank then record_source
            else 'both'
        end as seen_in
    from ranked
    where copy_rank = 1
)

select
    span_id,
    trace_id,
    prototype_id,
    project,
    tier,
    tier_inferred,
    usage_reported,
    tier as provider,
    gen_ai_system,
    model,
    op,
    status,
    is_success,
    duration_ms,
    input_tokens,
    cached_input_tokens,
    uncached_input_tokens,
    output_tokens,
    input_tokens + output_tokens as total_tokens,
    started_at,
    day,
    record_source,
    seen_in
from calls
