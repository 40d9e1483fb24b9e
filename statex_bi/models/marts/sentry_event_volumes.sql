-- Sentry events per UTC day, category (error, transaction, ...) and outcome (accepted, filtered, ...).
with volumes as (
    select * from {{ ref('stg_sentry__event_volumes') }}
)

select * from volumes
