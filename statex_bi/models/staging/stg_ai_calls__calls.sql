-- AI calls from the JSONL file import (the same records as the Sentry spans), renamed and typed.
with source as (
    select * from raw_ai_calls.calls
)

select
    -- ids
    cast(span_id as varchar) as span_id,
    cast(trace_id as varchar) as trace_id,
    cast(prototype_id as varchar) as prototype_id,
    cast(project as varchar) as project,
    -- what was called
    lower(cast(ai_tier as varchar)) as tier,
    lower(cast(system as varchar)) as gen_ai_system,
    cast(request_model as varchar) as model,
    cast(op as varchar) as op,
    lower(cast(status as varchar)) as status,
    -- numbers
    cast(duration_ms as double) as duration_ms,
    cast(input_tokens as bigint) as input_tokens,
    cast(cached_input_tokens as bigint) as cached_input_tokens,
    cast(output_tokens as bigint) as output_tokens,
    -- timestamps (UTC)
    cast(started_at as timestamp) as started_at,
    -- lineage
    cast(source_file as varchar) as source_file,
    cast(source_line as bigint) as source_line
from source
