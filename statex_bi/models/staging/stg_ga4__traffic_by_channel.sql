with source as (

    select * from {{ source('ga4', 'traffic_by_channel') }}

),

renamed as (

    select
        -- keys
        cast(date as date) as date_day,
        channel,

        -- counts
        cast(sessions as bigint) as sessions,
        cast(engaged_sessions as bigint) as engaged_sessions,
        cast(active_users as bigint) as active_users,
        cast(screen_page_views as bigint) as screen_page_views,

        -- durations (GA4 reports the mean over the day's sessions of this channel)
        cast(average_session_duration as double) as avg_session_duration_s

    from source

)

select * from renamed
