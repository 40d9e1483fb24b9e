-- Sentry issues with the hours from first seen to resolution (NULL when unresolved or no activity kept).
with issues as (
    select * from {{ ref('stg_sentry__issues') }}
),

timed as (
    select
        *,
        -- in double: `3600.0` is a decimal on Spark, whose division would round to 6 decimals
        cast({{ dbt.datediff('first_seen', 'resolved_at', 'second') }} as double) / 3600 as hours_to_resolve
    from issues
)

select * from timed
