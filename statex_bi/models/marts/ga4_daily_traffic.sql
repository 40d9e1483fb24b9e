-- GA4 traffic per day and channel, with the total session time so that averages over several days
-- or channels can be weighted by sessions (a mean of daily means would weight a quiet day like a busy one).
with traffic as (

    select * from {{ ref('stg_ga4__traffic_by_channel') }}

),

final as (

    select
        date_day,
        channel,
        sessions,
        engaged_sessions,
        active_users,
        screen_page_views,
        avg_session_duration_s,
        avg_session_duration_s * sessions as session_duration_s
    from traffic

)

select * from final
