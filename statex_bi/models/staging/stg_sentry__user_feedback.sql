-- User feedback submissions (Sentry feedback issues), typed; the sender is a pseudonym, e-mails in messages too.
with source as (
    select * from {{ source('sentry', 'user_feedback') }}
)

select
    cast(feedback_id as string) as feedback_id,
    cast(received_at as timestamp) as received_at,
    coalesce(cast(page as string), '(unknown)') as page,
    cast(message as string) as message,
    cast(contact as string) as contact,
    cast(project as string) as project,
    lower(cast(status as string)) as status
from source
