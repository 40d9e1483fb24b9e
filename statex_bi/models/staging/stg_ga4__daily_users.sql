with source as (

    select * from {{ source('ga4', 'daily_users') }}

),

renamed as (

    select
        -- keys
        cast(date as date) as date_day,

        -- counts (users de-duplicated across channels by GA4: they do not add up across days)
        cast(active_users as bigint) as active_users,
        cast(sessions as bigint) as sessions

    from source

)

select * from renamed
