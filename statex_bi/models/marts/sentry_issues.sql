-- Sentry issues with the hours from first seen to resolution (NULL when unresolved or no activity kept).
with issues as (
    select * from {{ ref('stg_sentry__issues') }}
),

timed as (
    select
        *,
        {{ dbt.datediff('first_seen', 'resolved_at', 'second') }} / 3600.0 as hours_to_resolve
    from issues
)

select * from timed
