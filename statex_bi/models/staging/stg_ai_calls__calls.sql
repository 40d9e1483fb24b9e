-- AI calls from the JSONL file import (the same records as the Sentry spans), renamed and typed.
with source as (
    select * from {{ source('ai_calls', 'calls') }}
)

select
    {{ gen_ai_call_columns() }},
    -- lineage
    cast(source_file as string) as source_file,
    cast(source_line as bigint) as source_line
from source
