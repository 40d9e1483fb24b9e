-- User feedback, one row per submission, with its UTC day (the report's volumes and newest examples).
with feedback as (
    select * from {{ ref('stg_sentry__user_feedback') }}
)

select
    feedback_id,
    received_at,
    cast(received_at as date) as day,
    page,
    message,
    contact
from feedback
