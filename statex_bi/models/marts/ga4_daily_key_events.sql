-- GA4 key events per day, channel and event name (sign_up, prototype_request, ...), with the sessions
-- in which each event happened (the numerator of a session conversion rate).
with key_events as (

    select * from {{ ref('stg_ga4__key_events_by_channel') }}

),

event_sessions as (

    select * from {{ ref('stg_ga4__key_event_sessions_by_channel') }}

),

final as (

    select
        coalesce(key_events.date_day, event_sessions.date_day) as date_day,
        coalesce(key_events.channel, event_sessions.channel) as channel,
        coalesce(key_events.event_name, event_sessions.event_name) as event_name,
        coalesce(key_events.event_count, 0) as event_count,
        coalesce(key_events.key_events, 0) as key_events,
        -- NULL when the sessions report was not loaded for the day (a warehouse from before it)
        event_sessions.sessions as sessions_with_event
    from key_events
    full outer join event_sessions
        on key_events.date_day = event_sessions.date_day
        and key_events.channel = event_sessions.channel
        and key_events.event_name = event_sessions.event_name

)

select * from final
