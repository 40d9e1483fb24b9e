with source as (

    select * from {{ source('ga4', 'property') }}

),

renamed as (

    select
        cast(property_id as string) as property_id,
        -- the IANA time zone in which GA4 cuts the property's days
        cast(time_zone as string) as time_zone,
        cast(currency_code as string) as currency_code,
        cast(checked_at as timestamp) as checked_at

    from source

)

select * from renamed
