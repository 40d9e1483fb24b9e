-- Sentry issues, typed; the resolution time comes from the issue's last `set_resolved*` activity.
with source as (
    select * from {{ source('sentry', 'issues') }}
)

select
    -- ids
    cast(issue_id as string) as issue_id,
    cast(short_id as string) as short_id,
    cast(project as string) as project,
    -- what
    cast(title as string) as title,
    lower(cast(level as string)) as level,
    lower(cast(status as string)) as status,
    cast(resolved_by as string) as resolved_by,
    -- numbers
    cast(event_count as bigint) as event_count,
    cast(user_count as bigint) as user_count,
    -- timestamps (UTC)
    cast(first_seen as timestamp) as first_seen,
    cast(last_seen as timestamp) as last_seen,
    cast(resolved_at as timestamp) as resolved_at
from source
