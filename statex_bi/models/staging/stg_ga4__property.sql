with source as (

    select * from {{ source('ga4', 'property') }}

),

renamed as (

    select
        cast(property_id as varchar) as property_id,
        -- the IANA time zone in which GA4 cuts the property's days
        cast(time_zone as varchar) as time_zone,
        cast(currency_code as varchar) as currency_code,
        cast(checked_at as timestamp) as checked_at

    from source

)

select * from renamed
