-- GA4 active users per day, de-duplicated across channels by GA4 itself. User counts do not add up
-- across days: report their mean, never their sum.
with daily_users as (

    select * from {{ ref('stg_ga4__daily_users') }}

),

final as (

    select
        date_day,
        active_users,
        sessions
    from daily_users

)

select * from final
