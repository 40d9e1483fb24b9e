{#- The AI-call columns (docs/raw_tables.md) shared by Sentry's gen_ai spans and the JSONL import of the
    same records: one typing for both staging models. -#}

{% macro gen_ai_call_columns() %}
    -- ids
    cast(span_id as string) as span_id,
    cast(trace_id as string) as trace_id,
    cast(prototype_id as string) as prototype_id,
    cast(project as string) as project,
    -- what was called
    lower(cast(ai_tier as string)) as tier,
    -- true when the connector took the tier from gen_ai.system (the span carried none)
    cast(ai_tier_inferred as boolean) as tier_inferred,
    lower(cast(system as string)) as gen_ai_system,
    cast(request_model as string) as model,
    cast(op as string) as op,
    lower(cast(status as string)) as status,
    -- numbers
    cast(duration_ms as double) as duration_ms,
    cast(input_tokens as bigint) as input_tokens,
    cast(cached_input_tokens as bigint) as cached_input_tokens,
    cast(output_tokens as bigint) as output_tokens,
    -- timestamps (UTC)
    cast(started_at as timestamp) as started_at
{%- endmacro %}
