with source as (

    select * from {{ source('ga4', 'key_event_sessions_by_channel') }}

),

renamed as (

    select
        -- keys
        cast(date as date) as date_day,
        channel,
        event_name,

        -- the sessions in which the event happened at least once
        cast(sessions as bigint) as sessions

    from source

)

select * from renamed
