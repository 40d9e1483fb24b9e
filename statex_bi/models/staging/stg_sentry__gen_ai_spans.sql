-- Sentry gen_ai spans (one per AI call), renamed and typed; nothing is filtered or derived here.
with source as (
    select * from {{ source('sentry', 'gen_ai_spans') }}
)

select
    {{ gen_ai_call_columns() }}
from source
