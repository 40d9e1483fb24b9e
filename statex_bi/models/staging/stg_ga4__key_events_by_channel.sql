with source as (

    select * from {{ source('ga4', 'key_events_by_channel') }}

),

renamed as (

    select
        -- keys
        cast(date as date) as date_day,
        channel,
        event_name,

        -- counts: every firing of the event, and the firings GA4 counts as key events
        cast(event_count as bigint) as event_count,
        cast(key_events as bigint) as key_events

    from source

)

select * from renamed
