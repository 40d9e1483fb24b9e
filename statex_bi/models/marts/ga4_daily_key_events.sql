-- GA4 key events per day, channel and event name (sign_up, prototype_request, ...).
with key_events as (

    select * from {{ ref('stg_ga4__key_events_by_channel') }}

),

final as (

    select
        date_day,
        channel,
        event_name,
        event_count,
        key_events
    from key_events

)

select * from final
